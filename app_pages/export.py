import ui

ctx = ui.context()
ui.coming_next(
    "Export",
    "Here the labelled corpus will download as CSV, Excel, Parquet or Stata, with the human codes, "
    "the LLM audit log, the model and a methods appendix.",
)
ui.require_step(ctx, "Data", "a corpus")
