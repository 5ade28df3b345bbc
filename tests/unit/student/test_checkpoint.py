"""Full fine-tuning resumes from its last completed epoch after its process died: the same
batches, dropout and result as an uninterrupted training; a checkpoint of other settings is
not used; a cancelled or finished training leaves none behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from distill_core.student import checkpoint
from distill_core.student.args import TrainingArgs, TrainingCancelled
from distill_core.student.predict import Predictor
from distill_core.student.train import train
from tests.unit.student.test_train import easy_set

ARGS = TrainingArgs(
    recipe="full", epochs=3, batch_size=16, max_length=32, seed=3, early_stopping_patience=0
)


class _Killed(Exception):
    """Stands for the process dying: neither a cancel nor a refusal."""


def _die_at(message: str):
    def on_progress(p) -> None:
        if p.message.startswith(message):
            raise _Killed(p.message)

    return on_progress


def test_a_training_killed_after_an_epoch_resumes_from_it_with_the_same_result(
    tmp_path: Path,
) -> None:
    texts, labels = easy_set()
    whole = train(texts, labels, tmp_path / "whole", ARGS)
    out = tmp_path / "resumed"
    with pytest.raises(_Killed):
        train(texts, labels, out, ARGS, on_progress=_die_at("Epoch 2/3 done"))
    saved = checkpoint.folder_for(out)
    assert (saved / checkpoint.STATE_FILE).is_file() and not out.exists()
    seen: list[str] = []
    again = train(texts, labels, out, ARGS, on_progress=lambda p: seen.append(p.message))
    assert seen[0].startswith("Resuming from epoch 2 of 3 (its checkpoint)")
    assert not any(m.startswith(("Epoch 1/3", "Epoch 2/3")) for m in seen)  # not again
    assert [h["epoch"] for h in again.history] == [1, 2, 3]
    for a, b in zip(whole.history, again.history, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=1e-5)
        assert b["val_macro_f1"] == pytest.approx(a["val_macro_f1"], abs=1e-6)
    assert again.best_epoch == whole.best_epoch
    probe = [*texts[:10], "snow and thunder tonight"]
    p_whole, p_again = Predictor(whole.output_dir).predict(probe), Predictor(out).predict(probe)
    assert p_whole.labels == p_again.labels
    assert abs(p_whole.probabilities - p_again.probabilities).max() < 1e-4
    assert not saved.exists()  # removed once the model is saved


def test_a_checkpoint_of_other_settings_or_texts_is_not_used(tmp_path: Path) -> None:
    texts, labels = easy_set()
    out = tmp_path / "m"
    with pytest.raises(_Killed):
        train(texts, labels, out, ARGS, on_progress=_die_at("Epoch 2/3 done"))
    seen: list[str] = []
    other = TrainingArgs(**{**ARGS.to_dict(), "seed": 4})
    train(texts, labels, out, other, on_progress=lambda p: seen.append(p.message))
    assert not any(m.startswith("Resuming") for m in seen)
    assert seen[0].startswith("Training on")
    assert not checkpoint.folder_for(out).exists()
    # a torn file is not read either
    torn = checkpoint.folder_for(tmp_path / "t")
    torn.mkdir()
    (torn / checkpoint.STATE_FILE).write_bytes(b"not a checkpoint")
    assert checkpoint.load(torn, "anything") is None and not torn.exists()


def test_a_cancelled_training_leaves_no_checkpoint(tmp_path: Path) -> None:
    texts, labels = easy_set()
    out = tmp_path / "m"
    epochs_done: list[int] = []

    def on_progress(p) -> None:
        if "done" in p.message:
            epochs_done.append(p.epoch)

    with pytest.raises(TrainingCancelled):
        train(
            texts, labels, out, ARGS, on_progress=on_progress, should_stop=lambda: bool(epochs_done)
        )
    assert not checkpoint.folder_for(out).exists() and not out.exists()


@pytest.mark.faults
def test_kill_9_during_training_resumes_from_the_last_epoch(tmp_path: Path) -> None:
    """The command line's training, SIGKILLed once its first epoch's checkpoint is on disk,
    run again into the same folder: it resumes (its progress says so) and saves a model."""
    texts, labels = easy_set(n_per_class=40)
    data = tmp_path / "t.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(data, index=False)
    out = tmp_path / "m"
    cmd = [
        sys.executable,
        "-m",
        "distill_core",
        "train",
        str(data),
        "--label-column",
        "label",
        "--output",
        str(out),
        "--recipe",
        "full",
        "--epochs",
        "4",
        "--max-length",
        "32",
        "--seed",
        "3",
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = checkpoint.folder_for(out) / checkpoint.STATE_FILE
    deadline = time.monotonic() + 600
    while not state.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.is_file() and not out.exists()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Resuming from epoch" in done.stderr
    assert (out / "config.json").is_file() and not checkpoint.folder_for(out).exists()
