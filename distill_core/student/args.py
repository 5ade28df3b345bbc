"""The settings of one fine-tuning run, with their defaults, checks and stored form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

#: Most students one training may train with different seeds (each one a full training).
MAX_SEEDS = 10
#: How a student is trained (``TrainingArgs.recipe``; student/recipes.py says what each is):
#: "auto" picks "full" or "head" by the job's estimated time against ``time_budget_s``.
RECIPES = ("auto", "full", "head")
#: How the teacher's certainty enters the loss (student/targets.py).
CERTAINTY_MODES = ("off", "weight", "soft")
#: The time budget "auto" holds a training job to by default (seconds).
DEFAULT_TIME_BUDGET_S = 600.0


class TrainingError(ValueError):
    """A problem with the inputs or the base model, told in one sentence."""


class TrainingCancelled(Exception):
    """Training stopped because ``should_stop()`` said so; no output folder was left behind."""


@dataclass
class TrainingArgs:
    """Settings of one fine-tuning run, with defaults meant to work untuned on tweets and on
    longer documents. lr 1e-4 (a 6-layer, 384-wide MiniLM wants more than BERT-base's 2e-5–5e-5),
    ≤ 10 epochs stopped early on validation macro-F1, and an automatic max_length keep both
    short and long texts cheap. Measured (benchmarks/distill_quality.py, four human-coded
    sets, 500–1,000 texts labelled by a simulated 80%-accurate teacher): the student beats
    TF-IDF on the same labels on all four and a naive 3-epoch lr-5e-5 loop by 0.04–0.33
    macro-F1; lr 2e-4 was no consistent gain (better in 5 of 8 runs, mean +0.008)."""

    base_model: str | None = None  # None = bundled all-MiniLM-L6-v2
    epochs: int = 10  # an upper bound: early stopping usually ends earlier
    lr: float = 1e-4
    batch_size: int = 16
    #: None = automatic: the 95th percentile of the training texts' token lengths, rounded up
    #: to a multiple of 8, within [32, 256] on CPU ([32, 512] on CUDA) and the model's limit.
    max_length: int | None = None
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42
    val_share: float = 0.1
    early_stopping_patience: int = 2  # epochs without a better validation macro-F1 (0: off)
    class_weights: bool = False  # inverse-frequency weights in the loss
    min_confidence: float | None = None  # drop rows whose teacher confidence is below
    min_consistency: float | None = None  # drop rows whose teacher consistency is below
    #: Students trained for the seed spread (seeds seed, seed + 1, …; the first one is kept):
    #: see :meth:`seed_settings`. Each is a full training, so 1 (no spread) is the default.
    seeds: int = 1
    split_seed: int | None = None  # seed of the validation split (None: ``seed``)
    #: "full" fine-tunes every weight; "head" trains a classifier on the frozen encoder's
    #: sentence embeddings (seconds on a CPU); "auto" (the default) picks full fine-tuning on
    #: a GPU or when the job's estimated time fits ``time_budget_s``, else "head"
    #: (student/recipes.py). Settings stored before recipes existed read as "full".
    recipe: str = "auto"
    time_budget_s: float = DEFAULT_TIME_BUDGET_S
    #: The teacher's certainty in the loss: "off", "weight" (loss weighted by confidence ×
    #: consistency) or "soft" (soft targets); see student/targets.py.
    certainty: str = "off"
    label_smoothing: float = 0.0
    #: The head recipe sets aside the training texts whose label its own cross-validated
    #: predictions find unlikely (the probability of the label below this share of that
    #: label's mean; 0: off) before its final fit: likely teacher mistakes (student/head.py).
    #: Measured the best of the noisy-teacher variants (benchmarks/README.md). Settings
    #: stored before it existed read as 0.
    noise_filter: float = 0.5

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append("at least 1 epoch")
        if self.batch_size < 1:
            problems.append("a batch size of at least 1")
        if not self.lr > 0:
            problems.append("a learning rate above 0")
        if not 0 <= self.warmup_ratio < 1:
            problems.append("a warm-up share from 0 to below 1")
        if not 0 <= self.val_share < 1:
            problems.append("a validation share from 0 to below 1")
        if self.weight_decay < 0:
            problems.append("a weight decay of at least 0")
        if self.max_length is not None and self.max_length < 8:
            problems.append("a max length of at least 8 tokens (or automatic)")
        if not 1 <= self.seeds <= MAX_SEEDS:
            problems.append(f"from 1 to {MAX_SEEDS} seeds")
        if self.recipe not in RECIPES:
            problems.append(f"a recipe among {', '.join(RECIPES)}")
        if not self.time_budget_s > 0:
            problems.append("a time budget above 0 seconds")
        if self.certainty not in CERTAINTY_MODES:
            problems.append(f"a certainty mode among {', '.join(CERTAINTY_MODES)}")
        if not 0 <= self.label_smoothing < 1:
            problems.append("a label smoothing from 0 to below 1")
        if not 0 <= self.noise_filter < 1:
            problems.append("a mistake filter from 0 to below 1")
        if self.early_stopping_patience < 0:
            problems.append("a patience of at least 0 epochs (0: no early stopping)")
        for name in ("min_confidence", "min_consistency"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                problems.append(f"a {name.replace('_', ' ')} floor between 0 and 1")
        if problems:
            raise TrainingError("Training needs " + ", ".join(problems) + ".")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def seed_settings(self) -> list[TrainingArgs]:
        """The settings of the ``seeds`` students of a seed spread: this one (the kept model's),
        then seeds ``seed + 1``, ``seed + 2``, … that keep its validation split, so every student
        learns from the identical rows and only the initialisation, the order of the batches and
        dropout differ."""
        split = self.seed if self.split_seed is None else self.split_seed
        others = [
            replace(self, seed=self.seed + i, split_seed=split, seeds=1)
            for i in range(1, self.seeds)
        ]
        return [self, *others]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingArgs:
        """Settings as stored with a model; keys this version does not know are ignored, and
        settings stored before recipes existed read as full fine-tuning, and before the
        mistake filter existed as no filter."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values.setdefault("recipe", "full")
        values.setdefault("noise_filter", 0.0)
        return cls(**values)
