"""torch's thread count follows the free cores: a pure rule of cores and other processes' use,
a setting that fixes it, a measurement that sees a busy process, and both training and
prediction apply the choice (recorded with the model) and put the previous count back."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from distill_core.student import threads
from distill_core.student.threads import CpuProbe, ThreadChoice, threads_for
from distill_core.student.train import TrainingArgs, train
from tests.unit.student.test_train import easy_set


@pytest.mark.parametrize(
    ("cores", "others", "expected"),
    [
        (2, 0.0, 2),
        (2, 0.15, 2),  # daemons, a terminal: still idle
        (2, 0.4, 1),  # a core taken 40% of the time: one thread, not a pair that stalls
        (2, 1.0, 1),
        (2, 1.9, 1),  # never below one
        (2, 7.5, 1),
        (1, 0.0, 1),
        (8, 2.2, 6),  # 5.8 free: within the slack of 6
        (8, 2.5, 5),  # 5.5 free: rounded down
        (64, 0.0, 16),  # capped
        (4, -1.0, 4),  # a negative reading counts as idle
    ],
)
def test_the_thread_count_is_the_free_cores(cores, others, expected) -> None:
    assert threads_for(cores, others) == expected


def test_the_setting_fixes_the_count_and_a_bad_one_is_one_sentence() -> None:
    assert threads.setting({}) is None
    assert threads.setting({threads.ENV: "auto"}) is None
    assert threads.setting({threads.ENV: " 3 "}) == 3
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(ValueError, match="whole number of threads"):
            threads.setting({threads.ENV: bad})


def test_the_sentence_says_why() -> None:
    assert ThreadChoice(1, 2, 1.04).sentence() == (
        "1 thread: 2 cores, 1.0 of them busy with other processes"
    )
    assert ThreadChoice(3, 2, setting=True).sentence() == f"3 threads: set by {threads.ENV}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")
def test_the_probe_sees_a_process_that_keeps_a_core_busy() -> None:
    """Relative, not absolute: whatever else runs here, a busy loop adds about one core."""
    before = CpuProbe().others()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        probe = CpuProbe()
        time.sleep(0.5)
        during = probe.others()
    finally:
        busy.kill()
        busy.wait()
    cores = threads.usable_cores()
    assert 0.0 <= before <= cores and 0.0 <= during <= cores
    if cores >= 2 and before < cores - 1.2:  # room to see the loop (not a saturated machine)
        assert during >= before + 0.5


def test_training_and_prediction_apply_the_choice_and_restore_the_count(
    tmp_path, monkeypatch
) -> None:
    import torch

    from distill_core.student.card import ModelMeta
    from distill_core.student.predict import Predictor

    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(CpuProbe, "others", lambda self: 1.0)  # one of two cores taken
    monkeypatch.setattr(threads, "_last", None)
    set_to: list[int] = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (set_to.append(n), real(n)))
    before = torch.get_num_threads()
    texts, labels = easy_set(4)
    args = TrainingArgs(epochs=1, batch_size=8, max_length=16, seed=1)
    result = train(texts, labels, tmp_path / "m", args)
    meta = ModelMeta.from_dict(result.metadata.to_dict())
    assert meta.threads == 1
    assert meta.threads_rule == "1 thread: 2 cores, 1.0 of them busy with other processes"
    assert "1.0 of them busy" in (tmp_path / "m" / "README.md").read_text(encoding="utf-8")
    assert set_to[0] == 1 and torch.get_num_threads() == before

    set_to.clear()
    monkeypatch.setenv(threads.ENV, "1")
    Predictor(tmp_path / "m").predict(texts[:5])
    assert set_to[0] == 1 and torch.get_num_threads() == before
