"""Teachers: the LLM (any OpenAI-compatible endpoint) and the offline local baseline.

``Teacher.ask`` labels one text and returns an ``Answer`` record; ``run_items`` asks about many
texts concurrently; ``aggregate`` turns repeated answers into a modal label and a consistency
score; ``cost.estimate`` prices a run offline. This layer keeps no state on disk: storing
answers and caching them is the caller's job. The openai client and torch are imported only
when a teacher that needs them is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from distill_core.llm.base import Answer, Endpoint, Status, Teacher, aggregate
from distill_core.llm.runner import Progress, run_items, run_items_sync

if TYPE_CHECKING:
    from distill_core.llm.errors import describe_error
    from distill_core.llm.local import LocalTeacher
    from distill_core.llm.openai_teacher import (
        ConnectionResult,
        OpenAITeacher,
        RetryPolicy,
        test_connection,
    )

__all__ = [
    "Answer",
    "ConnectionResult",
    "Endpoint",
    "LocalTeacher",
    "OpenAITeacher",
    "RetryPolicy",
    "Progress",
    "Status",
    "Teacher",
    "aggregate",
    "describe_error",
    "make_teacher",
    "run_items",
    "run_items_sync",
    "test_connection",
]

_LAZY = {
    "LocalTeacher": "distill_core.llm.local",
    "OpenAITeacher": "distill_core.llm.openai_teacher",
    "RetryPolicy": "distill_core.llm.openai_teacher",
    "ConnectionResult": "distill_core.llm.openai_teacher",
    "describe_error": "distill_core.llm.errors",
    "test_connection": "distill_core.llm.openai_teacher",
}


def __getattr__(name: str) -> Any:
    """Import the openai- and torch-backed parts on first use (the app starts faster)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def make_teacher(provider: str, endpoint: Endpoint | None = None, **options: Any) -> Teacher:
    """The teacher for ``provider``: "openai" (any compatible endpoint) or "local" (baseline)."""
    if provider == "local":
        from distill_core.llm.local import LocalTeacher

        return LocalTeacher(**options)
    if provider == "openai":
        from distill_core.llm.openai_teacher import OpenAITeacher

        return OpenAITeacher(endpoint or Endpoint.from_env(), **options)
    raise ValueError(f"Unknown teacher '{provider}': use 'openai' or 'local'.")
