import ui

ctx = ui.context()
ui.coming_next(
    "LLM labels",
    "Here an LLM (any OpenAI-compatible endpoint, or an offline baseline) will label your texts "
    "with the codebook: concurrent, cached, resumable, with a cost estimate before each run.",
)
ui.require_step(ctx, "Codebook", "a saved codebook")
