"""The time estimate before training: its step count is the count ``train()`` runs, its
seconds per step are within 3× of the observed ones on a tiny run, it projects a second
training from that training's own batches, and a training ``train()`` would refuse is refused
in one sentence before anything loads."""

from __future__ import annotations

import pytest

from distill_core.student.timing import (
    JobEstimate,
    PhaseEstimate,
    Training,
    _Stamps,
    estimate,
)
from distill_core.student.train import TrainingArgs, TrainingError, train
from tests.unit.student.test_train import easy_set


def test_the_plan_counts_what_train_runs_after_filters_and_split() -> None:
    texts, labels = easy_set(10)  # 30 rows
    t = Training("s", texts, labels, TrainingArgs(epochs=3, batch_size=4, val_share=0.2))
    plan = t.plan()
    assert (plan.n_train, plan.n_val) == (24, 6)
    assert plan.steps_per_epoch == 6 and plan.steps == 18 and plan.early_stopping
    floor = TrainingArgs(epochs=1, min_confidence=0.5, val_share=0.0, batch_size=10)
    conf = [0.9] * 20 + [0.1] * 10
    assert Training("s", texts, labels, floor, confidences=conf).plan().n_train == 20
    assert not Training("s", texts, labels, TrainingArgs(val_share=0.0)).plan().early_stopping


def test_a_training_train_would_refuse_is_one_sentence_and_zero_steps() -> None:
    few = Training("s", ["a", "b", "c"], ["x", "y", "x"], TrainingArgs())
    assert few.steps() == 0
    with pytest.raises(TrainingError, match="at least 10"):
        estimate([few])


def test_the_stamps_time_clean_steps_and_stop_early() -> None:
    stamps = _Stamps(steps_per_epoch=100)
    stamps.times = [0.0, 2.0, 3.0, 3.5, 4.0]  # loaded at 2 s; step 1 warms up
    assert stamps.steps() == ([1, 2], [0.5, 0.5])
    one = _Stamps(steps_per_epoch=1)
    assert [one() for _ in range(3)] == [False, False, True]  # the epoch's only step
    assert one.steps()[0] == [0]


def test_the_estimate_round_trips_and_says_where_it_was_measured() -> None:
    found = JobEstimate(
        phases=(PhaseEstimate("a", 100, 300.0), PhaseEstimate("b", 0, 60.0)),
        s_per_step=0.31,
        steps_timed=4,
        device="cpu",
        threads=2,
        early_stopping=True,
    )
    assert found.steps == 100 and found.seconds == 360.0
    assert found.sentence() == (
        "About 6 min (measured 0.31 s/step on this machine); at most: early stopping usually "
        "ends sooner."
    )
    assert JobEstimate.from_dict(found.to_dict()) == found


@pytest.mark.slow
def test_the_estimate_matches_a_tiny_run(tmp_path) -> None:
    """Projected steps are the steps run; per-step seconds within 3× of the observed ones
    (both measured on this machine now, so the load on it cancels out)."""
    texts, labels = easy_set(30)  # 90 rows: 81 to train on, 11 steps an epoch at batch 8
    args = TrainingArgs(epochs=2, batch_size=8, max_length=32, early_stopping_patience=0, seed=5)
    other_texts, other_labels = easy_set(12, seed=1)
    found = estimate(
        [
            Training("student", texts, labels, args, predicts=texts[:20]),
            Training("fold", other_texts, other_labels, args),
        ]
    )
    steps: list[int] = []
    result = train(texts, labels, tmp_path / "m", args, on_progress=lambda p: steps.append(p.step))
    ran = max(steps)
    assert found.phases[0].steps == ran == 2 * 11
    assert found.phases[1].steps == Training("fold", other_texts, other_labels, args).plan().steps
    assert found.phases[1].steps < found.phases[0].steps
    observed = sum(h["seconds"] for h in result.history) / ran  # the loop, validation included
    assert observed / 3 <= found.s_per_step <= observed * 3, (found.s_per_step, observed)
    assert 1 <= found.steps_timed <= 5 and found.measured_seconds < 60
    assert not (tmp_path / "estimate").exists()
