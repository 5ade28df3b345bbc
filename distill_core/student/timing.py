"""How long a training job will take, said before it starts: a few real steps of ``train()``
itself (forward, backward and optimiser step on the job's own first batches, with its settings
and base model, on this machine) are timed, then projected over every training the job runs.

A step's time grows with the tokens in its batch (batch size × the longest text in it, after
padding), so the measured seconds per padded token are multiplied by each training's own
batches, built as ``train()`` builds them (same filters, split, max length and length-grouped
batches). Predictions (each epoch's validation, the held-out texts) cost
:data:`INFERENCE_SHARE` of a training step per token; each training also loads and saves the
model (:data:`RELOAD_SHARE`). With early stopping the figure is the most it can take: training usually ends sooner.

torch and transformers load inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import math
import random
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from distill_core.clock import fmt_duration
from distill_core.student.args import TrainingArgs, TrainingCancelled, TrainingError

#: What a prediction costs per padded token, as a share of a training step's cost (forward
#: only, no gradients, batches of 64): measured 0.07–0.26 with the bundled MiniLM on 2 cores
#: under load (load average 3.5), so 0.3 errs long.
INFERENCE_SHARE = 0.3
#: Steps timed after the first one (which warms up: allocations, the optimiser's state).
MAX_TIMED_STEPS = 4
#: Seconds of timed steps after which timing stops (after at least one timed step).
TIMING_BUDGET_S = 1.5
#: Loading and saving each training's model, as a share of the first load's time (which also
#: pays one-time imports and cold files: a later load in the same process is faster).
RELOAD_SHARE = 0.5
#: Batch size of predictions (``train``'s validation and ``Predictor``'s default).
PREDICT_BATCH = 64
#: The stored form's version.
ESTIMATE_VERSION = 1


@dataclass(frozen=True)
class Plan:
    """One training as ``train()`` runs it: its rows after the filters and the validation
    split, and its steps: ``epochs × steps_per_epoch``, the most (early stopping may end it
    sooner, when ``early_stopping``)."""

    n_train: int
    n_val: int
    steps_per_epoch: int
    epochs: int
    early_stopping: bool

    @property
    def steps(self) -> int:
        return self.steps_per_epoch * self.epochs


@dataclass
class Training:
    """One training a job runs: the progress phase it reports as, its data and settings (as
    given to ``train()``), and the texts its model predicts afterwards."""

    phase: str
    texts: Sequence[str]
    labels: Sequence[str]
    args: TrainingArgs
    label_names: Sequence[str] | None = None
    confidences: Sequence[float | None] | None = None
    consistencies: Sequence[float | None] | None = None
    predicts: Sequence[str] = ()

    def _prepared(self):
        from distill_core.student.train import _prepare

        return _prepare(
            self.texts,
            self.labels,
            self.args,
            self.label_names,
            self.confidences,
            self.consistencies,
        )

    def _split(self, prep) -> tuple[list[int], list[int]]:
        from distill_core.student.train import stratified_split

        names = {name: i for i, name in enumerate(prep.label_names)}
        args = self.args
        seed = args.seed if args.split_seed is None else args.split_seed
        train_idx, val_idx = stratified_split([names[y] for y in prep.labels], args.val_share, seed)
        if len(train_idx) < 2:
            raise TrainingError("Too few examples are left for training after the split.")
        return train_idx, val_idx

    def split(self):
        """``train()``'s prepared rows (its filters applied) and its training and validation
        indices into them; raises TrainingError where ``train()`` would refuse."""
        prep = self._prepared()
        return (prep, *self._split(prep))

    def plan(self) -> Plan:
        """The training's shape; raises TrainingError where ``train()`` would refuse."""
        _, train_idx, val_idx = self.split()
        return Plan(
            n_train=len(train_idx),
            n_val=len(val_idx),
            steps_per_epoch=math.ceil(len(train_idx) / self.args.batch_size),
            epochs=self.args.epochs,
            early_stopping=bool(val_idx) and self.args.early_stopping_patience > 0,
        )

    def steps(self) -> int:
        """Its most steps; 0 when ``train()`` would refuse it (the job reports it untrained)."""
        try:
            return self.plan().steps
        except TrainingError:
            return 0


@dataclass(frozen=True)
class PhaseEstimate:
    """One phase of a job: its training steps (0: no training) and its projected seconds."""

    phase: str
    steps: int
    seconds: float


@dataclass(frozen=True)
class JobEstimate:
    """A job's projected time, phase by phase, from ``s_per_step`` measured on ``where``
    (``steps_timed`` real steps of the first training, with ``threads`` CPU threads)."""

    phases: tuple[PhaseEstimate, ...]
    s_per_step: float
    steps_timed: int
    device: str
    threads: int | None
    early_stopping: bool
    where: str = "this machine"
    measured_seconds: float = 0.0
    version: int = ESTIMATE_VERSION

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.phases)

    @property
    def steps(self) -> int:
        return sum(p.steps for p in self.phases)

    def sentence(self) -> str:
        """E.g. 'About 6 min (measured 0.31 s/step on this machine); at most: early stopping
        usually ends sooner.'"""
        text = (
            f"About {fmt_duration(self.seconds)} (measured {self.s_per_step:.2f} s/step on "
            f"{self.where})"
        )
        if self.early_stopping:
            text += "; at most: early stopping usually ends sooner"
        return text + "."

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "phases": [vars(p).copy() for p in self.phases],
            "s_per_step": self.s_per_step,
            "steps_timed": self.steps_timed,
            "device": self.device,
            "threads": self.threads,
            "early_stopping": self.early_stopping,
            "where": self.where,
            "measured_seconds": self.measured_seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobEstimate:
        return cls(
            phases=tuple(PhaseEstimate(**p) for p in data.get("phases") or []),
            s_per_step=float(data["s_per_step"]),
            steps_timed=int(data.get("steps_timed") or 0),
            device=str(data.get("device") or "cpu"),
            threads=data.get("threads"),
            early_stopping=bool(data.get("early_stopping")),
            where=str(data.get("where") or "this machine"),
            measured_seconds=float(data.get("measured_seconds") or 0.0),
            version=int(data.get("version") or 1),
        )


@dataclass
class _Stamps:
    """``train()``'s ``should_stop``, called once before it starts and then before each batch:
    stamps every call and stops once enough steps are timed. Step i runs between calls i and
    i + 1 (call 0 is before loading); the last step of an epoch ends after its validation, so
    only steps 1 … steps_per_epoch − 1 are clean (step 1 warms up)."""

    steps_per_epoch: int
    times: list[float] = field(default_factory=list)

    def __call__(self) -> bool:
        self.times.append(time.perf_counter())
        done = len(self.times) - 2  # steps finished
        if done < 1:
            return False
        timed = self.times[-1] - self.times[2] if done >= 2 else 0.0
        return (
            done >= self.steps_per_epoch - 1
            or done >= 1 + MAX_TIMED_STEPS
            or (done >= 2 and timed >= TIMING_BUDGET_S)
        )

    def steps(self) -> tuple[list[int], list[float]]:
        """(0-based batch indices, seconds) of the steps to count: 2 … done, else step 1."""
        durations = [b - a for a, b in zip(self.times[1:], self.times[2:], strict=False)]
        if len(durations) >= 2:
            return list(range(1, len(durations))), durations[1:]
        return [0], durations[:1]


def _padded(lengths: Sequence[int]) -> int:
    return len(lengths) * max(lengths) if lengths else 0


def _predict_tokens(lengths: Sequence[int]) -> int:
    """Padded tokens of predicting rows of these lengths: sorted, in batches of 64."""
    ordered = sorted(lengths)
    return sum(
        _padded(ordered[s : s + PREDICT_BATCH]) for s in range(0, len(ordered), PREDICT_BATCH)
    )


@dataclass
class _Shape:
    """A training's padded tokens: per batch of its first epoch, its validation, its
    predictions."""

    plan: Plan
    batch_tokens: list[int]
    val_tokens: int
    predict_tokens: int


def _shape(t: Training, tokenizer: Any, config: Any, on_cuda: bool) -> _Shape:
    """The tokens of ``t``'s batches, as ``train()`` builds them."""
    from distill_core.student.train import (
        _model_limit,
        choose_max_length,
        length_grouped_batches,
    )

    prep, train_idx, val_idx = t.split()
    limit = _model_limit(SimpleNamespace(config=config), tokenizer)
    if t.args.max_length is None:
        full = tokenizer(prep.texts, add_special_tokens=True, truncation=False)["input_ids"]
        max_length = choose_max_length([len(x) for x in full], limit, on_cuda)
    else:
        max_length = min(int(t.args.max_length), limit)
    lengths = [min(len(x), max_length) for x in tokenizer(prep.texts)["input_ids"]]
    tr_len = [lengths[i] for i in train_idx]
    batches = length_grouped_batches(tr_len, t.args.batch_size, random.Random(t.args.seed))
    predicted = [str(x) for x in t.predicts]
    pred_len = (
        [min(len(x), max_length) for x in tokenizer(predicted)["input_ids"]] if predicted else []
    )
    return _Shape(
        plan=Plan(
            n_train=len(train_idx),
            n_val=len(val_idx),
            steps_per_epoch=len(batches),
            epochs=t.args.epochs,
            early_stopping=bool(val_idx) and t.args.early_stopping_patience > 0,
        ),
        batch_tokens=[_padded([tr_len[i] for i in b]) for b in batches],
        val_tokens=_predict_tokens([lengths[i] for i in val_idx]),
        predict_tokens=_predict_tokens(pred_len),
    )


def estimate(
    trainings: Sequence[Training],
    *,
    extra: Sequence[PhaseEstimate] = (),
    where: str = "this machine",
) -> JobEstimate:
    """Time a few real steps of the first training and project every one of ``trainings``
    (plus the ``extra`` phases, measured by the caller). Takes the model's loading time plus
    a few seconds; raises TrainingError in one sentence where the first training would."""
    from transformers import AutoConfig, AutoTokenizer

    from distill_core.bundled import resolve_model
    from distill_core.student.threads import choose_threads
    from distill_core.student.train import device, train

    if not trainings:
        raise TrainingError("There is nothing to train.")
    first = trainings[0]
    started = time.perf_counter()
    plan = first.plan()  # refuses in one sentence before anything loads
    stamps = _Stamps(plan.steps_per_epoch)
    with (
        tempfile.TemporaryDirectory(prefix="distill-estimate-") as tmp,
        contextlib.suppress(TrainingCancelled),  # stamps stops it once the steps are timed
    ):
        train(
            first.texts,
            first.labels,
            Path(tmp) / "model",
            first.args,
            label_names=first.label_names,
            confidences=first.confidences,
            consistencies=first.consistencies,
            should_stop=stamps,
        )

    dev = device()
    threads = choose_threads().threads if dev == "cpu" else None  # train()'s choice, reused
    load_s = stamps.times[1] - stamps.times[0] if len(stamps.times) > 1 else 0.0

    shapes: dict[int, _Shape] = {}
    tokenizers: dict[str | None, tuple[Any, Any]] = {}
    for i, t in enumerate(trainings):
        if t.args.base_model not in tokenizers:
            try:
                resolved = resolve_model(t.args.base_model)
            except FileNotFoundError as exc:
                raise TrainingError(str(exc)) from exc
            tokenizers[t.args.base_model] = (
                AutoTokenizer.from_pretrained(resolved),
                AutoConfig.from_pretrained(resolved),
            )
        try:
            shapes[i] = _shape(t, *tokenizers[t.args.base_model], dev == "cuda")
        except TrainingError:
            continue  # the job reports it untrained: no time

    batches, seconds = stamps.steps()
    tokens = sum(shapes[0].batch_tokens[b] for b in batches)
    per_token = sum(seconds) / max(1, tokens)
    phases = []
    for i, t in enumerate(trainings):
        shape = shapes.get(i)
        if shape is None:
            phases.append(PhaseEstimate(t.phase, 0, 0.0))
            continue
        epochs = shape.plan.epochs
        work = epochs * (sum(shape.batch_tokens) + INFERENCE_SHARE * shape.val_tokens)
        work += INFERENCE_SHARE * shape.predict_tokens
        overhead = load_s * RELOAD_SHARE * (2 if t.predicts else 1)
        phases.append(PhaseEstimate(t.phase, shape.plan.steps, per_token * work + overhead))
    main = shapes[0]
    return JobEstimate(
        phases=tuple(phases) + tuple(extra),
        s_per_step=per_token * sum(main.batch_tokens) / max(1, main.plan.steps_per_epoch),
        steps_timed=len(seconds),
        device=dev,
        threads=threads,
        early_stopping=any(s.plan.early_stopping for s in shapes.values()),
        where=where,
        measured_seconds=round(time.perf_counter() - started, 2),
    )
