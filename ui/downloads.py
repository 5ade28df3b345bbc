"""Downloads built on click: Streamlit calls the builder in a worker thread only when the user
clicks, so a large corpus never stalls the page."""

from __future__ import annotations

import io
from collections.abc import Callable

import streamlit as st

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


def project_slug(ctx: Context) -> str:
    """The project's name as part of a file name: lower case, other characters as hyphens."""
    return "".join(c if c.isalnum() else "-" for c in (ctx.project_name or "project").lower())


def sample_downloads(ctx: Context) -> None:
    """The validation sample for coders who work outside Distill: an Excel workbook (the
    texts with an empty code column, the codebook, how to fill it in), or the texts and the
    codebook as two CSV files. A filled file imports back on the Import codes tab."""
    st.markdown(
        "**For coders outside Distill:** the sample's ids and texts with an empty `code` "
        "column, and the codebook. A filled file imports back on the Import codes tab."
    )
    files = [
        ("Sample and codebook (Excel)", "sample-xlsx", "sample"),
        ("Sample (CSV)", "sample-csv", "sample"),
        ("Codebook (CSV)", "codebook-csv", "codebook"),
    ]
    for col, (label, kind, name) in zip(st.columns(len(files)), files, strict=True):
        mime, ext = export.FORMATS[kind]
        col.download_button(
            label,
            data=export_file(ctx, kind),
            file_name=f"distill-{project_slug(ctx)}-{name}{ext}",
            mime=mime,
            on_click="ignore",
            key=f"dl_{kind}",
        )
