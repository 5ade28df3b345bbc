"""The UI layer: what pages are made of. Pages import ``ui`` and call these; the modules are
``context`` (who, which project, the menu, "needs X first"), ``jobs`` (start a job, its live
panel), ``forms`` (a step's inputs as typed requests), ``pickers``, ``views`` (result views and
charts), ``agreement`` (the agreement panel), ``coding`` (the blind-coding panel), ``training``
(the Fine-tune step's time estimate and start), ``curve`` (its learning curve) and
``downloads``. Nothing here computes a result: that is the core's job."""

from ui import admin, agreement, codebook, coding, curve, forms, members, training
from ui.auth import mode_sentence
from ui.context import (
    PAGES,
    STEPS_OF_ROLE,
    Context,
    choose_project,
    context,
    for_step,
    go_to,
    navigation,
    project_corpus,
    require_project,
    require_step,
    secret,
    sidebar,
)
from ui.downloads import export_file, project_slug, sample_downloads
from ui.jobs import job_panel, start_job, submit_job
from ui.pickers import label_run_picker, model_picker
from ui.views import (
    chart,
    image_format_picker,
    kept_figure,
    model_label,
    model_summary,
    model_zip_label,
    shares_table,
    show_agreement,
    show_comparison,
    show_intercoder,
    show_sample,
)

__all__ = [
    "PAGES",
    "STEPS_OF_ROLE",
    "Context",
    "admin",
    "agreement",
    "chart",
    "kept_figure",
    "choose_project",
    "codebook",
    "coding",
    "curve",
    "members",
    "mode_sentence",
    "context",
    "export_file",
    "for_step",
    "forms",
    "go_to",
    "image_format_picker",
    "job_panel",
    "label_run_picker",
    "model_label",
    "model_picker",
    "model_summary",
    "model_zip_label",
    "navigation",
    "project_slug",
    "project_corpus",
    "require_project",
    "require_step",
    "sample_downloads",
    "secret",
    "show_agreement",
    "show_comparison",
    "show_intercoder",
    "show_sample",
    "shares_table",
    "sidebar",
    "start_job",
    "submit_job",
    "training",
]
