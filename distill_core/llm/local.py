"""The offline teacher: zero-shot labels from the bundled MiniLM sentence embeddings.

This is a weak baseline, not an LLM. It lets a study be set up and tried end to end without any
endpoint (and it is what the app uses when none is configured), but its labels are only as
good as the cosine similarity between a text and the label descriptions.

How it labels: each label is described by "name: definition" and embedded; when the codebook
has few-shot examples for that label, the label vector is the normalised sum of the unit
description embedding and the unit mean embedding of its examples. A text's label is the
argmax of cosine similarity; its confidence is ``softmax(similarities / temperature)`` at the
chosen label with ``temperature = 0.05`` (similarities of MiniLM lie in a narrow band, so a
low temperature spreads them; 0.05 turns a 0.1 lead into e² ≈ 7.4 times the weight).
Embeddings: mean pooling of the last hidden state over the attention mask, L2-normalised
(the sentence-transformers recipe of all-MiniLM-L6-v2), max 256 tokens, batches of 64, CPU,
no gradients. Nothing is downloaded: the model is loaded from the installed package.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from distill_core.clock import utcnow
from distill_core.llm.base import Answer, Teacher

if TYPE_CHECKING:
    import numpy as np

    from distill_core.codebook import Codebook

BATCH_SIZE = 64
MAX_LENGTH = 256
TEMPERATURE = 0.05


class MiniLMEmbedder:
    """Sentence embeddings from a local sentence-transformers folder (thread-safe, lazy)."""

    def __init__(self, model_path: str | None = None, *, batch_size: int = BATCH_SIZE) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._model: Any = None

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModel, AutoTokenizer

        from distill_core.bundled import bundled_model_path

        path = self.model_path or str(bundled_model_path())
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True)
        model.eval()
        self._model = model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, shape (len(texts), 384), float32."""
        import numpy as np
        import torch

        with self._lock:
            self._load()
            out: list[np.ndarray] = []
            with torch.inference_mode():
                for i in range(0, len(texts), self.batch_size):
                    batch = [t if t.strip() else " " for t in texts[i : i + self.batch_size]]
                    enc = self._tokenizer(
                        batch,
                        padding=True,
                        truncation=True,
                        max_length=MAX_LENGTH,
                        return_tensors="pt",
                    )
                    hidden = self._model(**enc).last_hidden_state
                    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                    out.append(pooled.cpu().numpy().astype(np.float32))
            if not out:
                return np.zeros((0, 384), dtype=np.float32)
            return np.concatenate(out, axis=0)


def label_matrix(codebook: Codebook, embed: Any) -> np.ndarray:
    """Unit vectors, one row per label (codebook order): description + examples (see module doc)."""
    import numpy as np

    descriptions = [
        f"{lab.name}: {lab.definition}" if lab.definition.strip() else lab.name
        for lab in codebook.labels
    ]
    vectors = embed(descriptions)
    if codebook.examples:
        example_vecs = embed([ex.text for ex in codebook.examples])
        for row, lab in enumerate(codebook.labels):
            idx = [i for i, ex in enumerate(codebook.examples) if ex.label == lab.name]
            if idx:
                mean = example_vecs[idx].mean(axis=0)
                mean /= max(float(np.linalg.norm(mean)), 1e-9)
                vectors[row] = vectors[row] + mean
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-9)


def scores(text_vectors: np.ndarray, labels: np.ndarray, temperature: float = TEMPERATURE):
    """(argmax index, softmax confidence) per text from cosine similarities (unit vectors)."""
    import numpy as np

    sims = text_vectors @ labels.T
    z = sims / temperature
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p = p / p.sum(axis=1, keepdims=True)
    best = sims.argmax(axis=1)
    return best, p[np.arange(len(best)), best]


class LocalTeacher(Teacher):
    """Local zero-shot baseline (MiniLM embeddings, weak): no network, no key, no tokens.

    ``ask`` batches concurrent questions (up to 64) into one forward pass in a worker thread;
    ``label_texts`` labels a list directly. Answers are deterministic, so repeats agree.
    """

    name = "local"
    display_name = "Local zero-shot baseline (MiniLM embeddings, weak)"

    def __init__(
        self,
        model_path: str | None = None,
        *,
        temperature: float = TEMPERATURE,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.model_path = model_path
        self.temperature = temperature
        self.batch_size = batch_size
        self.embedder = MiniLMEmbedder(model_path, batch_size=batch_size)
        self._label_cache: dict[str, Any] = {}
        self._pending: list[tuple[Codebook, str, asyncio.Future[Answer]]] = []
        self._flushing = False
        self._flush_task: asyncio.Task[None] | None = None

    def params(self) -> dict[str, Any]:
        return {
            "model": "all-MiniLM-L6-v2 (bundled)" if self.model_path is None else self.model_path,
            "method": "zero-shot cosine similarity to label descriptions",
            "temperature": self.temperature,
        }

    def _labels_for(self, codebook: Codebook) -> Any:
        key = codebook.fingerprint()
        if key not in self._label_cache:
            self._label_cache[key] = label_matrix(codebook, self.embedder.embed)
        return self._label_cache[key]

    def label_texts(self, codebook: Codebook, texts: Sequence[str]) -> list[Answer]:
        """Label many texts at once (blocking; batches of ``batch_size``)."""
        started = utcnow()
        if not texts:
            return []
        labels = self._labels_for(codebook)
        best, conf = scores(self.embedder.embed(list(texts)), labels, self.temperature)
        names = codebook.label_names
        finished = utcnow()
        return [
            Answer(
                label=names[int(b)],
                status="ok",
                raw=names[int(b)],
                confidence=float(c),
                attempts=1,
                started_at=started,
                finished_at=finished,
                request={"text": text, **self.params()},
            )
            for text, b, c in zip(texts, best, conf, strict=True)
        ]

    async def ask(self, codebook: Codebook, text: str, *, repeat_index: int = 0) -> Answer:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        self._pending.append((codebook, text, future))
        if not self._flushing:
            self._flushing = True
            self._flush_task = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        """Embed what is pending in batches (in a thread) until nothing is left."""
        try:
            while self._pending:
                batch, self._pending = (
                    self._pending[: self.batch_size],
                    self._pending[self.batch_size :],
                )
                by_codebook: dict[int, list[int]] = {}
                for i, (cb, _, _) in enumerate(batch):
                    by_codebook.setdefault(id(cb), []).append(i)
                for idx in by_codebook.values():
                    cb = batch[idx[0]][0]
                    texts = [batch[i][1] for i in idx]
                    try:
                        answers = await asyncio.to_thread(self.label_texts, cb, texts)
                    except Exception as exc:  # e.g. the model files are missing
                        message = f"The local model failed: {type(exc).__name__}: {exc}"
                        answers = [
                            Answer(label=None, status="error", error=message, attempts=1)
                            for _ in texts
                        ]
                    for i, answer in zip(idx, answers, strict=True):
                        future = batch[i][2]
                        if not future.done():
                            future.set_result(answer)
        finally:
            self._flushing = False
