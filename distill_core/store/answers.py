"""The answer cache in the store: ``llm_responses`` rows behind ``llm.cache.AnswerCache``.

An answer's raw text and error are masked (``keys.mask``) before they are stored: a server
may repeat the request's key in what it sends back."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from distill_core.keys import mask
from distill_core.llm.base import Answer
from distill_core.llm.cache import FINAL, AnswerCache
from distill_core.store.bulk import insert_many
from distill_core.store.db import Store, retry_lost
from distill_core.store.limits import fit
from distill_core.store.models import LLMResponse

#: Hashes per ``IN (...)`` query.
CHUNK = 500
_KEY_COLUMNS = ("run_key", "text_hash", "repeat_index")


class StoreAnswerCache(AnswerCache):
    """Answers kept in the project's database, shared by every run, job and command."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def answered(
        self, key: str, hashes: Sequence[str], statuses: Sequence[str] = FINAL
    ) -> set[tuple[str, int]]:
        found: set[tuple[str, int]] = set()
        hashes = list(hashes)
        with self.store.session() as s:
            for start in range(0, len(hashes), CHUNK):
                stmt = select(LLMResponse.text_hash, LLMResponse.repeat_index).where(
                    LLMResponse.run_key == key,
                    LLMResponse.text_hash.in_(hashes[start : start + CHUNK]),
                    LLMResponse.status.in_(list(statuses)),
                )
                found.update(s.execute(stmt).tuples())
        return found

    def lookup(self, key: str, hashes: Sequence[str]) -> dict[str, dict[int, Answer]]:
        out: dict[str, dict[int, Answer]] = defaultdict(dict)
        hashes = list(hashes)
        with self.store.session() as s:
            for start in range(0, len(hashes), CHUNK):
                stmt = select(
                    LLMResponse.text_hash,
                    LLMResponse.repeat_index,
                    LLMResponse.label,
                    LLMResponse.status,
                    LLMResponse.confidence,
                ).where(
                    LLMResponse.run_key == key,
                    LLMResponse.text_hash.in_(hashes[start : start + CHUNK]),
                )
                for h, r, label, status, confidence in s.execute(stmt):
                    out[h][r] = Answer(label=label, status=status, confidence=confidence)
        return out

    def update(self, rows: list[dict[str, Any]]) -> None:
        rows = [_masked(row) for row in rows]

        def write() -> None:
            with self.store.session() as s:
                insert_many(s, LLMResponse.__table__, rows, conflict=_KEY_COLUMNS)

        retry_lost(write)  # an upsert: a dropped connection mid-commit loses no paid answer


def _masked(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its raw answer and error masked, and made storable (``limits.fit``: a paid
    answer with a NUL or an over-long label is kept, not refused)."""
    return fit(
        LLMResponse.__table__, {**row, "raw": mask(row.get("raw")), "error": mask(row.get("error"))}
    )
