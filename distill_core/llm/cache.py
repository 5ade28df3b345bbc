"""The answer cache every teacher's answers go through: what makes two answers interchangeable
(``run_key``, ``text_hash``), the small ``lookup``/``update`` interface a store implements, and
the writer that stores answers as they arrive.

Identical texts are asked once (answers are keyed by the SHA-256 of the text); answers are keyed
by ``run_key`` = hash(teacher model and parameters, codebook fingerprint), the text's hash and
the repeat index, so re-running the same labelling sends no request and a run killed half-way
asks only for what is missing. The API key never reaches a key or a row: teachers report
``params()`` without it.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from distill_core.clock import utcnow
from distill_core.codebook import Codebook
from distill_core.llm.base import Answer
from distill_core.llm.runner import Progress

#: Answers that count as done (an ``error`` is asked again on the next run).
FINAL = ("ok", "invalid")
#: The writer stores answers as they arrive, in batches of at most this many.
WRITE_BATCH = 256
#: Pause between commits (seconds): the most a killed run can lose of what it was paid for.
WRITE_PAUSE = 0.05
#: Progress is reported at most this often (seconds), and once at the end.
PROGRESS_EVERY = 0.3


def text_hash(text: str) -> str:
    """SHA-256 of the text: identical texts share answers."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_key(teacher_params: dict, codebook: Codebook) -> str:
    """What makes two answers interchangeable: the same teacher settings and the same codebook."""
    payload = json.dumps(
        {"teacher": teacher_params, "codebook": codebook.fingerprint()},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class AnswerCache(ABC):
    """Where answers are kept (the store implements it: ``store.answers.StoreAnswerCache``)."""

    @abstractmethod
    def answered(
        self, key: str, hashes: Sequence[str], statuses: Sequence[str] = FINAL
    ) -> set[tuple[str, int]]:
        """(text hash, repeat) pairs with an answer of ``statuses`` (the final ones, ``FINAL``,
        unless asked) for ``key``."""

    @abstractmethod
    def lookup(self, key: str, hashes: Sequence[str]) -> dict[str, dict[int, Answer]]:
        """The stored answers for ``key``: text hash → repeat → answer (label, status,
        confidence)."""

    @abstractmethod
    def update(self, rows: list[dict[str, Any]]) -> None:
        """Store answer rows (``answer_row``); a row for the same key replaces an earlier one."""


def answer_row(key: str, h: str, r: int, teacher: str, model: str, answer: Answer) -> dict:
    """One answer as the cache stores it."""
    return {
        "run_key": key,
        "text_hash": h,
        "repeat_index": r,
        "teacher": teacher,
        "model": model,
        "request": answer.request,
        "raw": answer.raw,
        "label": answer.label,
        "status": answer.status,
        "confidence": answer.confidence,
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "attempts": answer.attempts,
        "structured": answer.structured,
        "error": answer.error,
        "started_at": answer.started_at or utcnow(),
        "finished_at": answer.finished_at or utcnow(),
    }


class CacheWriter:
    """Stores answers from the event loop in a thread, each within milliseconds of arriving.

    An answer counts towards ``progress.done`` only once its row is stored. Batches form by
    themselves under load (everything waiting is written in one update), so the event loop
    never waits for the database and a killed run loses at most the answers of one commit.
    """

    def __init__(
        self,
        cache: AnswerCache,
        progress: Progress,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self.cache, self.progress, self.on_progress = cache, progress, on_progress
        self.queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="distill-answers", daemon=True)
        self.error: BaseException | None = None
        self.last_report = 0.0

    def start(self) -> None:
        self.thread.start()

    def put(self, row: dict) -> None:
        if self.error is not None:
            raise RuntimeError("Answers could not be stored; the run stops.") from self.error
        self.queue.put(row)

    def close(self) -> None:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        if self.on_progress is not None:
            self.on_progress(self.progress)
        if self.error is not None:
            raise self.error

    def _loop(self) -> None:
        done = False
        while not done:
            rows = [self.queue.get()]
            while len(rows) < WRITE_BATCH:
                try:
                    rows.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            if rows[-1] is None:
                rows.pop()
                done = True
            if not rows or self.error is not None:
                continue
            try:
                self.cache.update(rows)
            except BaseException as exc:  # surfaced in put() and close()
                self.error = exc
                continue
            self.progress.done += sum(1 for row in rows if row["status"] in FINAL)
            now = time.monotonic()
            if self.on_progress is not None and now - self.last_report >= PROGRESS_EVERY:
                self.last_report = now
                self.on_progress(self.progress)
            if not done:
                time.sleep(WRITE_PAUSE)  # let answers gather: fewer, larger commits
