"""What the teacher says about its own certainty, as training targets: soft target
distributions and per-text weights for a cross-entropy loss (knowledge distillation from a
noisy teacher). Pure numpy; the torch loss is :func:`soft_cross_entropy`.

A text's *certainty* t is the product of what the label run stored for it: the probability the
LLM gave its answer (``confidence``, from token log-probabilities) and the share of repeated
answers that agree with the modal one (``consistency``, 1.0 with one answer). A text without
either has no certainty and is treated as certain (t = 1), like a plain hard label.

Modes (``TrainingArgs.certainty``):

- ``off``: one-hot targets, every text weighted 1 (optionally label-smoothed: (1 − ε)·onehot
  + ε/k).
- ``weight``: one-hot targets; each text's loss weighted by t (normalised to mean 1), so a
  label the teacher was unsure of pulls less.
- ``soft``: the target puts t on the teacher's label and (1 − t)/(k − 1) on each other label
  (t is clipped to at least 1/k, so the teacher's label stays the most likely one). The
  endpoint gives the probability of the answered label only, not of every label, so the rest
  is spread evenly: a per-text label smoothing whose strength is the teacher's doubt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from distill_core.student.args import CERTAINTY_MODES

#: Lowest weight a text gets in ``weight`` mode (before normalising): a text the teacher was
#: very unsure of still counts a little.
MIN_WEIGHT = 0.05


def certainties(
    confidences: Sequence[float | None] | None,
    consistencies: Sequence[float | None] | None,
    n: int,
) -> list[float | None]:
    """Per text: confidence × consistency over those given (each clipped to [0, 1]); None
    when a text has neither."""
    out: list[float | None] = []
    for i in range(n):
        values = [
            min(1.0, max(0.0, float(v)))
            for v in (
                confidences[i] if confidences is not None else None,
                consistencies[i] if consistencies is not None else None,
            )
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        ]
        out.append(float(np.prod(values)) if values else None)
    return out


def teacher_targets(
    y: Sequence[int],
    k: int,
    certainty: Sequence[float | None] | None = None,
    mode: str = "off",
    smoothing: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(targets n × k, weights n) for class ids ``y`` under ``mode`` (see the module's
    docstring); ``smoothing`` ε mixes every target with the uniform distribution. Rows sum
    to 1; weights have mean 1."""
    if mode not in CERTAINTY_MODES:
        raise ValueError(f"Unknown certainty mode {mode!r}: one of {', '.join(CERTAINTY_MODES)}.")
    n = len(y)
    y_arr = np.asarray(y, dtype=int)
    t = np.ones(n, dtype=np.float64)
    if certainty is not None and mode != "off":
        t = np.array([1.0 if c is None else float(c) for c in certainty], dtype=np.float64)
    q = np.zeros((n, k), dtype=np.float64)
    w = np.ones(n, dtype=np.float64)
    if mode == "soft" and k > 1:
        t = np.clip(t, 1.0 / k, 1.0)
        q[:] = ((1.0 - t) / (k - 1))[:, None]
        q[np.arange(n), y_arr] = t
    else:
        q[np.arange(n), y_arr] = 1.0
        if mode == "weight":
            w = np.clip(t, MIN_WEIGHT, 1.0)
    if smoothing:
        q = (1.0 - smoothing) * q + smoothing / k
    if n:
        w = w / w.mean()
    return q.astype(np.float32), w.astype(np.float32)


def uses_targets(mode: str, smoothing: float) -> bool:
    """Whether training needs :func:`soft_cross_entropy` rather than plain cross-entropy."""
    return mode != "off" or bool(smoothing)


def soft_cross_entropy(
    logits: Any, targets: Any, weights: Any | None = None, class_weight: Any | None = None
) -> Any:
    """Mean over the batch of w_i · Σ_c −q_ic log softmax(z_i)_c (torch tensors: logits and
    targets b × k, weights b). ``class_weight`` (k) scales each row by its target's weight
    (Σ_c q_ic·cw_c), as ``CrossEntropyLoss(weight=…)`` does for hard labels, and the mean is
    taken over the summed weights, as there."""
    import torch

    per_row = -(targets * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
    w = torch.ones_like(per_row) if weights is None else weights.to(per_row.dtype)
    if class_weight is not None:
        w = w * (targets @ class_weight.to(per_row.dtype))
    return (w * per_row).sum() / w.sum().clamp(min=1e-12)
