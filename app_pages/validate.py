import ui

ctx = ui.context()
ui.coming_next(
    "Validate",
    "Here experts will code a random sample blind in the browser, and the LLM's labels will be "
    "scored against them: accuracy, F1, Cohen's kappa and Krippendorff's alpha with confidence "
    "intervals, on a development part and a held-out test part.",
)
ui.require_step(ctx, "Codebook", "a saved codebook")
