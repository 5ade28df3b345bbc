"""Downloads built on click: Streamlit calls the builder in a worker thread only when the user
clicks, so a large corpus never stalls the page."""

from __future__ import annotations

import io
from collections.abc import Callable

from distill_core.reports import export
from ui.context import Context


def export_file(ctx: Context, fmt: str, **options) -> Callable[[], bytes]:
    """A function building one of the project's exports (``export.FORMATS``) as bytes, for a
    download button's data."""

    def build() -> bytes:
        buffer = io.BytesIO()
        ctx.act(export.export_project, ctx.project_id, fmt, buffer, **options)
        return buffer.getvalue()

    return build
