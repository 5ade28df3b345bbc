"""Sentence embeddings from a frozen encoder (the fast recipe's features): mean of the last
hidden states over the real tokens, L2-normalised, as sentence-transformers computes them for
all-MiniLM-L6-v2. Each text is embedded once per (encoder, max_length): vectors are kept in
memory for the process (the seeds, folds and learning-curve points of one job reuse them) and,
given a cache folder, in a SQLite file per encoder, so training again costs no encoding.

torch and transformers are imported inside functions so that importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Vectors kept in memory per process, over all encoders (384 floats: 1.5 kB each).
MEMORY_CACHE_SIZE = 60_000

_memory: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_memory_lock = threading.Lock()


def text_key(text: str) -> str:
    """The cache key of a text: SHA-1 of its UTF-8 bytes."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def mean_pool(hidden: Any, mask: Any) -> Any:
    """(batch × dim) mean of ``hidden`` (batch × tokens × dim) over the tokens where
    ``mask`` is 1, then scaled to unit length."""
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * m).sum(dim=1)
    pooled = summed / m.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled.float(), p=2, dim=-1)


def fingerprint(resolved: str, max_length: int) -> str:
    """What identifies an encoder's vectors: its resolved name or folder (with the weights
    file's size and time for a folder, so a retrained folder is not confused) and max_length."""
    path = Path(resolved)
    stamp = ""
    if path.is_dir():
        weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
        if weights:
            st = weights[0].stat()
            stamp = f"{st.st_size}:{int(st.st_mtime)}"
    return hashlib.sha1(
        f"{path.resolve() if path.exists() else resolved}|{stamp}|{max_length}".encode()
    ).hexdigest()[:16]


class Embedder:
    """A frozen encoder and its tokenizer, in eval mode; :meth:`encode` gives one unit vector
    per text, from the caches where it can."""

    def __init__(
        self,
        encoder: Any,
        tokenizer: Any,
        resolved: str,
        max_length: int,
        *,
        cache_dir: Path | None = None,
        device: str = "cpu",
    ) -> None:
        self.encoder = encoder.to(device).eval()
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.device = device
        self.key = fingerprint(resolved, self.max_length)
        self.db = Path(cache_dir) / f"{self.key}.sqlite" if cache_dir is not None else None
        self.encoded_now = 0  # texts this embedder had to encode (not found in a cache)

    @property
    def dim(self) -> int:
        return int(self.encoder.config.hidden_size)

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """(n × dim) float32 unit vectors in input order; ``on_progress(done, total)`` after
        each encoded batch; ``should_stop()`` before each batch raises TrainingCancelled."""
        clean = ["" if t is None else str(t) for t in texts]
        keys = [text_key(t) for t in clean]
        found = self._from_memory(keys)
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing and self.db is not None:
            found.update(self._from_disk(missing))
            missing = [k for k in missing if k not in found]
        if missing:
            first = {}
            for k, t in zip(keys, clean, strict=True):
                first.setdefault(k, t)
            todo = [first[k] for k in missing]
            vectors = self._run(todo, batch_size, on_progress, should_stop)
            new = dict(zip(missing, vectors, strict=True))
            found.update(new)
            self.encoded_now += len(new)
            if self.db is not None:
                self._to_disk(new)
        self._to_memory(found)
        out = np.zeros((len(clean), self.dim), dtype=np.float32)
        for i, k in enumerate(keys):
            out[i] = found[k]
        return out

    def _run(self, texts, batch_size, on_progress, should_stop) -> list[np.ndarray]:
        import torch

        from distill_core.student.args import TrainingCancelled

        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)[
            "input_ids"
        ]
        order = np.argsort([len(e) for e in encoded], kind="stable")
        out = np.zeros((len(encoded), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                if should_stop is not None and should_stop():
                    raise TrainingCancelled("Training was cancelled.")
                rows = order[start : start + batch_size]
                batch = self.tokenizer.pad(
                    {"input_ids": [encoded[i] for i in rows]}, return_tensors="pt"
                )
                ids = batch["input_ids"].to(self.device)
                mask = batch["attention_mask"].to(self.device)
                hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                out[rows] = mean_pool(hidden, mask).cpu().numpy()
                if on_progress is not None:
                    on_progress(min(start + batch_size, len(order)), len(order))
        return list(out)

    # ------------------------------------------------------------------ caches

    def _from_memory(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        with _memory_lock:
            hits = {}
            for k in keys:
                v = _memory.get((self.key, k))
                if v is not None:
                    hits[k] = v
            return hits

    def _to_memory(self, vectors: dict[str, np.ndarray]) -> None:
        with _memory_lock:
            for k, v in vectors.items():
                _memory[(self.key, k)] = v
                _memory.move_to_end((self.key, k))
            while len(_memory) > MEMORY_CACHE_SIZE:
                _memory.popitem(last=False)

    def _connect(self) -> sqlite3.Connection:
        self.db.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.db, timeout=30)
        conn.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB)")
        return conn

    def _from_disk(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        try:
            conn = self._connect()
        except sqlite3.Error:
            return {}
        hits: dict[str, np.ndarray] = {}
        try:
            for start in range(0, len(keys), 500):
                part = list(keys[start : start + 500])
                marks = ",".join("?" * len(part))
                for k, blob in conn.execute(
                    f"SELECT key, vec FROM vectors WHERE key IN ({marks})", part
                ):
                    v = np.frombuffer(blob, dtype=np.float32)
                    if v.shape[0] == self.dim:
                        hits[k] = v
        except sqlite3.Error:
            return hits
        finally:
            conn.close()
        return hits

    def _to_disk(self, vectors: dict[str, np.ndarray]) -> None:
        """Store new vectors; a cache that cannot be written (read-only, locked) is skipped:
        it only saves time."""
        try:
            conn = self._connect()
            with conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                    [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in vectors.items()],
                )
            conn.close()
        except sqlite3.Error:
            pass


def clear_memory_cache() -> None:
    """Forget every vector kept in memory (tests, and measuring encoding time)."""
    with _memory_lock:
        _memory.clear()
