"""Fast batch inference with a trained student: texts sorted by length, dynamic padding,
``torch.inference_mode``, results back in the input order. torch loads lazily."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distill_core.student.args import TrainingCancelled
from distill_core.student.card import METADATA_FILE
from distill_core.student.head import is_head_model, load_head_model
from distill_core.student.threads import cuda_half, device_threads
from distill_core.student.train import pad_batch

#: Longest input used when a model folder has no distill.json to say its training max_length.
DEFAULT_MAX_LENGTH = 512


class PredictionCancelled(TrainingCancelled):
    """Prediction stopped because ``should_stop()`` said so."""


@dataclass
class Predictions:
    """One predicted label and its probability per text (input order), and all probabilities
    (n × k, columns in the order of ``Predictor.labels``)."""

    labels: list[str]
    confidence: list[float]
    probabilities: np.ndarray


class Predictor:
    """A loaded model and tokenizer in eval mode on the best device; use :func:`load`."""

    def __init__(self, model_dir: str | Path) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from distill_core.student.train import device

        self.model_dir = Path(model_dir).expanduser().resolve()
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(f"No trained model in {self.model_dir} (config.json missing).")
        self.device = device()
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        if is_head_model(self.model_dir):  # the fast recipe: frozen encoder + head
            model = load_head_model(self.model_dir)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(
                self.model_dir, local_files_only=True
            )
        self.model = model.to(self.device).eval()
        id2label = model.config.id2label
        self.labels: list[str] = [str(id2label[i]) for i in range(len(id2label))]
        meta_path = self.model_dir / METADATA_FILE
        self.metadata: dict = (
            json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        )
        limit = getattr(self.tokenizer, "model_max_length", DEFAULT_MAX_LENGTH)
        limit = limit if isinstance(limit, int) and 0 < limit < 1_000_000 else DEFAULT_MAX_LENGTH
        self.max_length: int = int(
            self.metadata.get("max_length") or min(limit, DEFAULT_MAX_LENGTH)
        )
        self.pad_id: int = self.tokenizer.pad_token_id or 0
        self.padding_side: str = getattr(self.tokenizer, "padding_side", "right")
        self._half = cuda_half()[0] if self.device == "cuda" else None

    def predict(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Predictions:
        """Classify texts (None counts as ""; an empty text still gets a prediction).

        ``on_progress(done, total)`` is called after each batch; ``should_stop()`` is checked
        before each batch and raises PredictionCancelled.
        """
        import torch

        k = len(self.labels)
        clean = ["" if t is None else str(t) for t in texts]
        n = len(clean)
        probs = np.zeros((n, k), dtype=np.float32)
        if n:
            encoded = self.tokenizer(clean, truncation=True, max_length=self.max_length)[
                "input_ids"
            ]
            order = np.argsort([len(e) for e in encoded], kind="stable")
            with device_threads(self.device), torch.inference_mode():
                for start in range(0, n, batch_size):
                    if should_stop is not None and should_stop():
                        raise PredictionCancelled("Prediction was cancelled.")
                    rows = order[start : start + batch_size]
                    ids, mask = pad_batch(
                        [encoded[i] for i in rows], self.pad_id, self.padding_side
                    )
                    ids, mask = ids.to(self.device), mask.to(self.device)
                    if self._half is not None:
                        with torch.autocast("cuda", dtype=self._half):
                            logits = self.model(input_ids=ids, attention_mask=mask).logits
                    else:
                        logits = self.model(input_ids=ids, attention_mask=mask).logits
                    probs[rows] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
                    if on_progress is not None:
                        on_progress(min(start + batch_size, n), n)
        best = probs.argmax(axis=1) if n else np.zeros(0, dtype=int)
        return Predictions(
            labels=[self.labels[i] for i in best],
            confidence=[float(probs[r, i]) for r, i in enumerate(best)],
            probabilities=probs,
        )


_cache: dict[tuple[str, float], Predictor] = {}
_cache_lock = threading.Lock()
_CACHE_SIZE = 2


def load(model_dir: str | Path) -> Predictor:
    """A cached Predictor for a model folder (reloaded when its config.json changes)."""
    path = Path(model_dir).expanduser().resolve()
    config = path / "config.json"
    key = (str(path), config.stat().st_mtime if config.is_file() else 0.0)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit
    predictor = Predictor(path)
    with _cache_lock:
        for old in [k for k in _cache if k[0] == key[0]]:
            del _cache[old]
        while len(_cache) >= _CACHE_SIZE:
            del _cache[next(iter(_cache))]
        _cache[key] = predictor
    return predictor


def predict_texts(model_dir: str | Path, texts: Sequence[str], **kw: Any) -> Predictions:
    """Classify texts with the model in ``model_dir`` (see :meth:`Predictor.predict`)."""
    return load(model_dir).predict(texts, **kw)
