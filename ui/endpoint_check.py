"""What Test connection found, as the LLM labels page shows it: the one sentence (with the
server's own reason on failure), the answer, the features in use and further notes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:
    from distill_core.llm.base import Capabilities
    from distill_core.llm.openai_teacher import ConnectionResult


def show_connection(result: ConnectionResult) -> None:
    """``st.success`` with the answer and the features in use, or ``st.error``; each note
    (what the server rejected, logprobs turned off, a model name ignored) below it."""
    if result.ok:
        answer = f" Answer: `{result.raw}` → label **{result.label}**." if result.label else ""
        st.success(f"{result.message}{answer}")
        if result.features:
            st.caption(f"In use: {result.features}.")
    else:
        st.error(result.message)
    for note in result.notes:
        st.info(note)


def capabilities_caption(capabilities: Capabilities | None) -> str:
    """One line for a saved endpoint: what its last Test connection settled."""
    if capabilities is None:
        return "Not tested yet: Test connection settles what the server accepts."
    when = (
        f" (tested {capabilities.checked_at:%Y-%m-%d %H:%M} UTC)" if capabilities.checked_at else ""
    )
    per = (
        f", {capabilities.seconds_per_answer:.1f} s per answer"
        if capabilities.seconds_per_answer is not None
        else ""
    )
    return f"{capabilities.describe().capitalize()}{per}{when}."
