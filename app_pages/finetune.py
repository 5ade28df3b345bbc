import ui

ctx = ui.context()
ui.coming_next(
    "Fine-tune",
    "Here a small transformer (all-MiniLM-L6-v2 by default, on CPU) will be fine-tuned on the LLM "
    "labels and compared on held-out human codes with the LLM itself, a model trained on human "
    "codes and a TF-IDF baseline.",
)
ui.require_step(ctx, "Data", "a corpus")
