"""How a student is trained, and which way "auto" picks.

- ``full``: every weight of the base model fine-tuned (student/train.py): the strongest on a
  GPU; on a laptop's CPU minutes to an hour.
- ``head``: the base model frozen; each text's mean-pooled sentence embedding computed once
  (cached per text, student/embed.py) and a softmax classifier trained on them, its L2
  strength chosen by cross-validation (student/head.py): seconds on a CPU.

``auto`` (the default) keeps full fine-tuning on a GPU, and on a CPU when the job's estimated
time (a few real training steps timed, student/timing.py) fits the time budget; otherwise it
picks ``head``. Measured on four human-coded tasks with 1,000 teacher labels
(benchmarks/README.md): the head recipe, with its mistake filter, beats TF-IDF on the same
labels on all four and is 0.027 macro-F1 behind itself trained on the human labels on
average; without the filter it was within 0.01 of full fine-tuning (one seed) on three tasks
and 0.09 behind on the fourth (Davidson), at a third to a twenty-fifth of the time on 2 busy
cores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from distill_core.clock import fmt_duration
from distill_core.student.args import TrainingArgs

#: What each recipe is called where a person reads it.
RECIPE_NAMES = {
    "auto": "automatic (fits the time budget)",
    "full": "full fine-tuning",
    "head": "fast: frozen encoder + trained classifier head",
}
#: The stored form's version of :class:`RecipeChoice`.
CHOICE_VERSION = 1
#: What the head recipe's mistake filter (``TrainingArgs.noise_filter``) was measured to do,
#: where a person chooses it (benchmarks/README.md has the tables).
MISTAKE_FILTER_MEASURED = (
    "Measured on four human-coded tasks with 1,000 labels from a simulated 80%-accurate "
    "teacher (benchmarks/README.md, 3 seeds): +0.009 macro-F1 on average (+0.038 on "
    "offensive tweets, +0.017 on emotions, −0.005 on hate speech, −0.013 on 20 bill topics), "
    "so 0.5 is the default."
)
#: The head recipe's fixed cost beyond encoding (loading and saving the encoder, the
#: cross-validated fits of the head): measured 5–15 s on 2 busy cores for 1,000 texts.
HEAD_FIXED_S = 15.0
#: A CPU training step is taken to cost at most this (seconds; the slowest measured: about
#: 3.3 s with one of 2 cores busy, issue 14), so a job whose steps fit the budget even at
#: this rate keeps full fine-tuning without being timed.
SLOW_STEP_S = 10.0
#: Encoding a text costs about this share of one text's training step (forward only, no
#: gradients, larger batches): the timing module's inference share.
ENCODE_SHARE = 0.3


@dataclass(frozen=True)
class RecipeChoice:
    """Which recipe a training used and why: the requested setting, the one used, the
    estimates it was chosen by (seconds; None: not estimated) and the budget."""

    requested: str
    recipe: str
    reason: str
    budget_s: float | None = None
    full_s: float | None = None
    head_s: float | None = None
    device: str = "cpu"
    version: int = CHOICE_VERSION

    def sentence(self) -> str:
        """E.g. 'Recipe: fast: frozen encoder + trained classifier head — chosen
        automatically: …'."""
        how = "chosen automatically" if self.requested == "auto" else "set in the settings"
        return f"Recipe: {RECIPE_NAMES.get(self.recipe, self.recipe)} — {how}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecipeChoice:
        names = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in names}
        values.setdefault("requested", values.get("recipe", "full"))
        values.setdefault("recipe", "full")
        values.setdefault("reason", "")
        return cls(**values)


def choose_recipe(
    requested: str,
    *,
    on_cuda: bool,
    budget_s: float,
    full_s: float | None,
    head_s: float | None = None,
) -> RecipeChoice:
    """The recipe for a training job (a pure function). A set recipe is kept. ``auto``: full
    fine-tuning on a GPU; on a CPU full fine-tuning when its estimate ``full_s`` fits
    ``budget_s`` (or cannot be estimated), else the head recipe, whose estimate ``head_s`` is
    said when known."""
    device = "cuda" if on_cuda else "cpu"
    common = dict(budget_s=budget_s, full_s=full_s, head_s=head_s, device=device)
    if requested != "auto":
        return RecipeChoice(requested, requested, "as set.", **common)
    if on_cuda:
        return RecipeChoice(
            "auto", "full", "on a GPU full fine-tuning is quick and the strongest.", **common
        )
    budget = fmt_duration(budget_s)
    if full_s is None:
        return RecipeChoice(
            "auto", "full", "its time could not be estimated, so the default is kept.", **common
        )
    if full_s <= budget_s:
        return RecipeChoice(
            "auto",
            "full",
            f"full fine-tuning is estimated at {fmt_duration(full_s)} on this CPU, within the "
            f"time budget of {budget}.",
            **common,
        )
    fast = f" (about {fmt_duration(head_s)})" if head_s is not None else ""
    return RecipeChoice(
        "auto",
        "head",
        f"full fine-tuning is estimated at {fmt_duration(full_s)} on this CPU, above the time "
        f"budget of {budget}, so the fast recipe is used{fast}. Raise the budget or choose full "
        "fine-tuning in the settings to fine-tune anyway.",
        **common,
    )


def head_seconds(n_texts: int, s_per_step: float, batch_size: int, trainings: int = 1) -> float:
    """The head recipe's estimated time: encoding ``n_texts`` distinct texts at
    :data:`ENCODE_SHARE` of a measured training step per text, plus :data:`HEAD_FIXED_S`
    per training (``trainings``: the student and the students on human codes, whose texts are
    encoded once)."""
    per_text = s_per_step / max(1, batch_size)
    return n_texts * per_text * ENCODE_SHARE + HEAD_FIXED_S * max(1, trainings)


def as_full(args: TrainingArgs) -> TrainingArgs:
    """The same settings with full fine-tuning (what a time estimate of it is measured with)."""
    return replace(args, recipe="full")


def concrete(args: TrainingArgs, choice: RecipeChoice) -> TrainingArgs:
    """The settings with the chosen recipe in place of "auto" (every training of a job then
    uses the same recipe: the seeds and the students on human codes too)."""
    return replace(args, recipe=choice.recipe)


def resolve(
    args: TrainingArgs,
    estimate_full: Callable[[TrainingArgs], Any],
    *,
    n_texts: int,
    trainings: int = 1,
    steps: int | None = None,
    on_cuda: bool | None = None,
) -> tuple[TrainingArgs, RecipeChoice]:
    """(the settings with a concrete recipe, why): "auto" on a CPU times full fine-tuning
    with ``estimate_full(settings)`` (a ``timing.JobEstimate``: ``seconds`` and
    ``s_per_step``; a few real steps, a few seconds) and picks by :func:`choose_recipe`; a set
    recipe, or a GPU, needs no measurement. ``n_texts`` distinct texts the head recipe would
    encode over ``trainings`` trainings (for its estimate); ``steps``, the job's training
    steps at most: a job that fits the budget even at :data:`SLOW_STEP_S` a step is not
    timed."""
    if on_cuda is None:
        import torch

        on_cuda = torch.cuda.is_available()
    quick = steps is not None and steps * SLOW_STEP_S <= args.time_budget_s
    if args.recipe == "auto" and not on_cuda and quick:
        choice = RecipeChoice(
            "auto",
            "full",
            f"its {steps:,} training steps fit the time budget of "
            f"{fmt_duration(args.time_budget_s)} even at {SLOW_STEP_S:g} s a step.",
            budget_s=args.time_budget_s,
        )
        return concrete(args, choice), choice
    full_s = head_s = None
    if args.recipe == "auto" and not on_cuda:
        from distill_core.student.args import TrainingError

        try:
            found = estimate_full(as_full(args))
        except TrainingError:
            found = None  # train() will say why, in its own sentence
        if found is not None:
            full_s = float(found.seconds)
            head_s = head_seconds(n_texts, float(found.s_per_step), args.batch_size, trainings)
    choice = choose_recipe(
        args.recipe, on_cuda=on_cuda, budget_s=args.time_budget_s, full_s=full_s, head_s=head_s
    )
    return concrete(args, choice), choice


def estimate_sentence(args: TrainingArgs, full: Any) -> str:
    """What the time estimate of a job's full fine-tuning (a ``timing.JobEstimate``) means for
    these settings: its own sentence for full fine-tuning; for the head recipe its estimate
    (texts from the first training's steps); for "auto" which recipe it would pick and why."""
    if args.recipe == "full":
        return full.sentence()
    trained = [p for p in full.phases if p.steps]
    n_texts = trained[0].steps // max(1, args.epochs) * args.batch_size if trained else 0
    head_s = head_seconds(n_texts, full.s_per_step, args.batch_size, max(1, len(trained)))
    if args.recipe == "head":
        return (
            f"The fast recipe: about {fmt_duration(head_s)} (full fine-tuning: "
            f"{full.sentence()[0].lower()}{full.sentence()[1:]})"
        )
    choice = choose_recipe(
        "auto",
        on_cuda=full.device == "cuda",
        budget_s=args.time_budget_s,
        full_s=full.seconds,
        head_s=head_s,
    )
    if choice.recipe == "head":
        return f"{choice.sentence()} (Measured {full.s_per_step:.2f} s a step on {full.where}.)"
    return f"{full.sentence()} {choice.sentence()}"
