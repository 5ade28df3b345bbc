"""What a trained student says about itself: its metadata (``distill.json`` and the model
record's ``meta``, one typed record read back through ``ModelMeta.from_dict``) and its model
card (``README.md``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from distill_core.student.recipes import RecipeChoice

METADATA_FILE = "distill.json"
#: The metadata's format (its version). Older folders without one read as this version.
META_FORMAT = "distill-student/1"


@dataclass
class HeldOutRow:
    """One classifier's score on the held-out human codes, as the model card lists it."""

    key: str
    name: str
    macro_f1: float | None
    macro_f1_ci: list[float | None]
    accuracy: float | None
    accuracy_ci: list[float | None]
    #: The texts its model fitted on (None: not trained, as the LLM; or not recorded) and what
    #: they were, in a sentence (the comparison row's note; empty when it has none).
    n_train: int | None = None
    note: str = ""


@dataclass
class HeldOut:
    """The fair comparison's headline figures, kept with the model."""

    n: int
    rows: list[HeldOutRow]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeldOut:
        rows = [  # rows stored before n_train and note were kept read without them
            HeldOutRow(
                **{f.name: r.get(f.name) for f in fields(HeldOutRow) if f.name != "note"},
                note=str(r.get("note") or ""),
            )
            for r in data.get("rows", [])
        ]
        return cls(n=int(data.get("n") or 0), rows=rows)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "rows": [vars(r).copy() for r in self.rows]}


#: The stored form's version of :class:`SeedRuns`.
SEED_RUNS_VERSION = 1


@dataclass
class SeedScore:
    """One seed's student scored: macro-F1 and accuracy (None: not measured) and, in the
    comparison, its predictions in the order of the texts scored (a model's metadata keeps none)."""

    seed: int
    macro_f1: float | None
    accuracy: float | None
    predictions: list[str | None] = field(default_factory=list)


@dataclass(frozen=True)
class Spread:
    """Mean, lowest and highest of one metric over the seeds that have it."""

    mean: float
    low: float
    high: float

    def text(self) -> str:
        return f"{self.mean:.3f} (range {self.low:.3f}–{self.high:.3f})"


@dataclass
class SeedRuns:
    """Seed variability of a student: the same recipe trained with one seed per entry of
    ``scores`` (in training order) on the identical training rows and validation split, each
    scored on the identical ``n`` texts (``scored_on`` names them). The kept model is always
    the first seed's (``kept_seed``), fixed before any score was seen: picking the best of
    several on held-out texts would be tuning on the test set."""

    scores: list[SeedScore]
    n: int
    scored_on: str = "held-out human-coded texts"
    version: int = SEED_RUNS_VERSION

    @property
    def n_seeds(self) -> int:
        return len(self.scores)

    @property
    def kept_seed(self) -> int | None:
        return self.scores[0].seed if self.scores else None

    def spread(self, metric: str) -> Spread | None:
        """``metric`` ("macro_f1" or "accuracy") over the seeds; None when no seed has it."""
        values = [v for s in self.scores if (v := getattr(s, metric)) is not None and v == v]
        if not values:
            return None
        return Spread(sum(values) / len(values), min(values), max(values))

    def sentence(self) -> str:
        """``Across 3 seeds: macro-F1 0.710 (range 0.690–0.730), accuracy …``, what each was
        scored on, and which model is kept."""
        figures = [
            f"{name} {spread.text() if (spread := self.spread(key)) else 'n/a'}"
            for key, name in (("macro_f1", "macro-F1"), ("accuracy", "accuracy"))
        ]
        return (
            f"Across {self.n_seeds} seeds: {', '.join(figures)}; each student was trained on the "
            f"same texts and scored on the same {self.n:,} {self.scored_on}. The kept model is "
            f"the first seed's (seed {self.kept_seed}), fixed before any score was seen, not the "
            "best one: choosing by these scores would tune on them."
        )

    def without_predictions(self) -> SeedRuns:
        scores = [SeedScore(s.seed, s.macro_f1, s.accuracy) for s in self.scores]
        return SeedRuns(scores, self.n, self.scored_on, self.version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "n": self.n,
            "scored_on": self.scored_on,
            "scores": [
                {k: v for k, v in vars(s).items() if k != "predictions" or v} for s in self.scores
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SeedRuns:
        scores = [
            SeedScore(
                seed=int(s["seed"]),
                macro_f1=s.get("macro_f1"),
                accuracy=s.get("accuracy"),
                predictions=list(s.get("predictions") or []),
            )
            for s in data.get("scores") or []
        ]
        return cls(
            scores=scores,
            n=int(data.get("n") or 0),
            scored_on=str(data.get("scored_on") or cls.scored_on),
            version=int(data.get("version") or 1),
        )


@dataclass
class ModelMeta:
    """A trained student's metadata: its labels (in the classifier's output order), what it
    was trained on and how, how long it took where, and its held-out scores. Keys this version
    does not know (a newer Distill's, or ``extra`` metadata merged in) are kept in ``other``
    and written back unchanged."""

    labels: list[str]
    format: str = META_FORMAT
    label_counts: dict[str, int] = field(default_factory=dict)
    base_model: str | None = None
    base_model_resolved: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    max_length: int | None = None
    max_length_rule: str | None = None
    n_train: int = 0
    n_val: int = 0
    filters: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    val_macro_f1: float | None = None
    device: str | None = None
    precision: str | None = None
    threads: int | None = None
    threads_rule: str | None = None  # why that many (student/threads.py: the free cores)
    train_seconds: float | None = None
    created_at: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    heldout: HeldOut | None = None
    seeds: SeedRuns | None = None  # the spread over seeds, when more than one was trained
    #: "full" (fine-tuned) or "head" (frozen encoder + classifier head); a model stored
    #: before recipes existed was fine-tuned. ``recipe_choice`` says why (student/recipes.py).
    recipe: str = "full"
    recipe_choice: RecipeChoice | None = None
    #: TF-IDF + logistic regression fitted on the same training rows and scored on the same
    #: validation rows as the student (None: no validation rows, or not measured).
    tfidf_val_macro_f1: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    other: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ModelMeta:
        """The record from its stored form (an empty one for a model with no metadata yet)."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)} - {"other", "heldout", "seeds", "recipe_choice"}
        values = {k: data.pop(k) for k in list(data) if k in known and data[k] is not None}
        heldout = data.pop("heldout", None)
        seeds = data.pop("seeds", None)
        choice = data.pop("recipe_choice", None)
        values.setdefault("labels", [])
        return cls(
            **values,
            heldout=HeldOut.from_dict(heldout) if heldout else None,
            seeds=SeedRuns.from_dict(seeds) if seeds else None,
            recipe_choice=RecipeChoice.from_dict(choice) if choice else None,
            other=data,
        )

    @property
    def below_tfidf(self) -> bool:
        """Whether the student ends below the TF-IDF baseline on its own validation texts."""
        return (
            self.val_macro_f1 is not None
            and self.tfidf_val_macro_f1 is not None
            and self.val_macro_f1 < self.tfidf_val_macro_f1
        )

    def below_tfidf_sentence(self) -> str | None:
        """The warning a student below its TF-IDF baseline gets (None when it is not)."""
        if not self.below_tfidf:
            return None
        other = (
            "full fine-tuning (on a GPU, or with a larger time budget)"
            if self.recipe == "head"
            else "the fast recipe (frozen encoder + head)"
        )
        return (
            "This student scores below a TF-IDF baseline on its validation texts "
            f"({self.val_macro_f1:.2f} vs {self.tfidf_val_macro_f1:.2f}, macro-F1 against the "
            f"LLM's labels): consider {other} or more labels."
        )

    def mistakes_sentence(self) -> str | None:
        """What the head recipe's mistake filter did (None when it was off or is not recorded)."""
        share = (self.args or {}).get("noise_filter")
        aside = self.filters.get("set_aside_likely_mistakes")
        if self.recipe != "head" or not share or aside is None:
            return None
        return (
            f"Of the {self.n_train:,} training texts, {int(aside):,} were set aside before the "
            "final fit as likely mislabelled: texts whose label the head's own 5-fold "
            f"cross-validated probability put below {share:g} of that label's mean."
        )

    def head_fit_sentence(self) -> str | None:
        """How the head recipe's classifier was regularised, in place of an epoch curve (the
        recipe has no epochs): the C its cross-validation chose with every C's score (None
        for a fine-tuned student or a head whose description is not recorded)."""
        head = self.other.get("head")
        if self.recipe != "head" or not isinstance(head, Mapping) or head.get("c") is None:
            return None
        c, table = float(head["c"]), list(head.get("cv") or [])
        aside = int(self.filters.get("set_aside_likely_mistakes") or 0)
        n = f"{self.n_train - aside:,} training texts" + (
            " kept after the likely mistakes were set aside" if aside else ""
        )
        if not table:
            return (
                f"The classifier head was fitted once, with L2 strength C = {c:g} (too few "
                f"training texts per label to cross-validate the choice of C: {n})."
            )
        best = next((r for r in table if float(r["c"]) == c), None)
        tried = ", ".join(f"C = {float(r['c']):g}: {float(r['macro_f1']):.3f}" for r in table)
        score = f" (cross-validated macro-F1 {float(best['macro_f1']):.3f})" if best else ""
        return (
            f"The classifier head was fitted once, its L2 strength chosen by stratified "
            f"cross-validation on the {n}: C = {c:g}{score}, against the LLM's labels. Every C "
            f"tried: {tried}."
        )

    def to_dict(self) -> dict[str, Any]:
        out = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("other", "heldout", "seeds", "extra", "recipe_choice")
        }
        out["heldout"] = self.heldout.to_dict() if self.heldout else None
        if self.recipe_choice is not None:
            out["recipe_choice"] = self.recipe_choice.to_dict()
        if self.seeds is not None:
            out["seeds"] = self.seeds.to_dict()
        if self.extra:
            out["extra"] = self.extra
        if out["heldout"] is None:
            del out["heldout"]
        return out | {k: v for k, v in self.other.items() if k not in out}


def _threads(meta: Mapping[str, Any]) -> str:
    """ ", 1 thread: 2 cores, 1.0 of them busy with other processes" (CPU runs that say why)."""
    return f", {meta['threads_rule']}" if meta.get("threads_rule") else ""


def model_card(model: ModelMeta) -> str:
    """A Hugging Face style README.md for a trained student, from its metadata."""
    meta = model.to_dict()
    labels = meta["labels"]
    counts = meta.get("label_counts", {})
    hist = meta.get("history", [])
    rows = "\n".join(
        f"| {h['epoch']} | {h['train_loss']:.4f} | "
        f"{'' if h['val_macro_f1'] is None else format(h['val_macro_f1'], '.3f')} |"
        for h in hist
    )
    label_rows = "\n".join(
        f"| {i} | {lab} | {counts.get(lab, 0)} |" for i, lab in enumerate(labels)
    )
    f1 = meta.get("val_macro_f1")
    f = meta.get("filters", {})
    a = meta.get("args", {})
    return f"""---
library_name: transformers
pipeline_tag: text-classification
base_model: {meta.get("base_model")}
tags: [distill, knowledge-distillation, llm-labels]
---

# Distill student classifier

A text classifier fine-tuned from **{meta.get("base_model")}** on labels produced by a large
language model (knowledge distillation, Pangakis & Wolken 2024), trained with Distill.

## Labels

| id | label | training rows |
|---|---|---|
{label_rows}

## Training

- Examples: {meta.get("n_train")} for training, {meta.get("n_val")} for validation (stratified,
  seed {a.get("seed")}); rows given {f.get("n_input")}, without a label {f.get("dropped_no_label")},
  below the confidence floor {f.get("dropped_low_confidence")}, below the consistency floor
  {f.get("dropped_low_consistency")}.
- Settings: epochs ≤ {a.get("epochs")} (early stopping, patience {a.get("early_stopping_patience")}),
  learning rate {a.get("lr")}, batch size {a.get("batch_size")}, max length {meta.get("max_length")}
  tokens, warm-up ratio {a.get("warmup_ratio")}, weight decay {a.get("weight_decay")},
  class weights {a.get("class_weights")}.
- Device: {meta.get("device")} ({meta.get("precision")}{_threads(meta)}), {meta.get("train_seconds")} s;
  created {meta.get("created_at")}.

{_fit_section(model, rows)}validation macro-F1
{"n/a" if f1 is None else f"{f1:.3f}"} — measured against the **LLM's labels**, not against human
codes: it says how well the student imitates its teacher. Report agreement with held-out human
codes (Distill's evaluate step) as the quality of the classifier.

{_heldout_section(meta.get("heldout"))}{_seeds_section(model.seeds)}{_recipe_section(model)}## Use

{_use_section(model)} Texts longer than
{meta.get("max_length")} tokens were truncated in training; predict with the same limit.

## Intended use and limitations

Meant for classifying texts like the training texts, with the codebook the LLM was given, in
research where its agreement with human codes has been checked. It inherits the teacher LLM's
errors and biases and adds its own; it has not seen texts from other sources, periods or
languages, and its confidence scores are not calibrated probabilities. Do not use it to make
decisions about individuals.

Full settings and versions: `distill.json`.
"""


def _fit_section(model: ModelMeta, rows: str) -> str:
    """The model card's account of the fit: the epoch table and the best epoch of a fine-tuned
    student; the head recipe's choice of C instead (it has no epochs: one fit)."""
    head = model.head_fit_sentence()
    if head is not None:
        return f"{head}\n\nThe head's "
    return (
        "| epoch | training loss | validation macro-F1 |\n|---|---|---|\n"
        f"{rows}\n\nBest epoch: {model.best_epoch}; "
    )


def _recipe_section(model: ModelMeta) -> str:
    """The model card's paragraph on the recipe and the TF-IDF check on validation texts."""
    lines = []
    if model.recipe_choice is not None:
        lines.append(model.recipe_choice.sentence())
    elif model.recipe == "head":
        lines.append("Recipe: frozen encoder + trained classifier head.")
    if model.mistakes_sentence():
        lines.append(model.mistakes_sentence())
    if model.tfidf_val_macro_f1 is not None:
        lines.append(
            f"TF-IDF + logistic regression on the same training and validation rows: validation "
            f"macro-F1 {model.tfidf_val_macro_f1:.3f}."
        )
    warning = model.below_tfidf_sentence()
    if warning:
        lines.append(f"**{warning}**")
    return "## Recipe\n\n" + "\n\n".join(lines) + "\n\n" if lines else ""


def _use_section(model: ModelMeta) -> str:
    """How to load the folder: a fine-tuned student with transformers, a head student with
    Distill (its classifier works on mean-pooled embeddings, which transformers' heads do not)."""
    if model.recipe == "head":
        return """The encoder is stored as a plain transformers model (`AutoModel`) and the classifier
in `head.safetensors` (`weight` k × d, `bias` k; `head.json` describes it): the logits are
`weight @ normalize(mean_pool(last_hidden_state)) + bias`. Load both with
`distill_core.student.predict.load("path/to/this/folder").predict(texts)`;
`AutoModelForSequenceClassification` would add an untrained head instead."""
    return """```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer
model = AutoModelForSequenceClassification.from_pretrained("path/to/this/folder")
tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")
```

or `distill_core.student.predict.load("path/to/this/folder").predict(texts)`."""


def _heldout_section(heldout: dict | None) -> str:
    """The model card's table of scores on held-out human codes (when Distill measured them)."""
    if not heldout or not heldout.get("rows"):
        return ""
    lines = [
        "## Scores on held-out human codes",
        "",
        f"Scored on {heldout['n']} human-coded texts that no model was trained on "
        "(95% bootstrap intervals).",
        "",
        "| classifier | trained on | macro-F1 | 95% CI | accuracy |",
        "|---|---|---|---|---|",
    ]
    notes = []
    for r in heldout["rows"]:
        low, high = r["macro_f1_ci"]
        n = r.get("n_train")
        trained = f"{n:,} texts" if n else "–"
        lines.append(
            f"| {r['name']} | {trained} | {r['macro_f1']:.3f} | {low:.3f}–{high:.3f} | "
            f"{r['accuracy']:.3f} |"
        )
        if r.get("note"):
            notes.append(f"- {r['name']}: {r['note']}")
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n\n"


def _seeds_section(seeds: SeedRuns | None) -> str:
    """The model card's paragraph on the spread over seeds (when several were trained)."""
    if seeds is None or seeds.n_seeds < 2:
        return ""
    each = ", ".join(
        f"seed {s.seed}: {'n/a' if s.macro_f1 is None else format(s.macro_f1, '.3f')}"
        for s in seeds.scores
    )
    return f"## Seed variability\n\n{seeds.sentence()} Macro-F1 per seed: {each}.\n\n"


def write_metadata(folder: Path, meta: ModelMeta) -> None:
    """Rewrite a model folder's ``distill.json`` and model card from ``meta``, each file
    replaced whole (a reader never sees half of one)."""
    for target, text in (
        (
            folder / METADATA_FILE,
            json.dumps(meta.to_dict(), indent=2, ensure_ascii=False, default=str),
        ),
        (folder / "README.md", model_card(meta)),
    ):
        partial = target.with_suffix(target.suffix + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(target)
