import ui

ctx = ui.context()
ui.coming_next(
    "Results",
    "Here the figures a study reports from will appear: F1 with confidence intervals, confusion "
    "matrices, corrected category shares for the whole corpus, cost and time.",
)
ui.require_step(ctx, "Data", "a corpus")
