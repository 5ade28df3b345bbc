"""`train --dry-run`: times a few real steps, prints the estimate (each seed's steps and
time) and exits 0 without creating the model folder; a training it would refuse is refused in
one line with exit 2, as the real training does."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from tests.unit.student.test_train import easy_set
from tests.unit.test_cli import run


@pytest.mark.slow
def test_train_dry_run_prints_an_estimate_and_trains_nothing(tmp_path) -> None:
    texts, labels = easy_set(12)  # 36 rows: 33 to train on, 5 steps an epoch at batch 8
    pd.DataFrame({"text": texts, "label": labels}).to_csv(tmp_path / "t.csv", index=False)
    out = run(
        "train",
        str(tmp_path / "t.csv"),
        "--label-column",
        "label",
        "--output",
        str(tmp_path / "m"),
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--max-length",
        "32",
        "--seeds",
        "2",
        "--dry-run",
    )
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "m").exists()
    first, *phases = out.stdout.strip().splitlines()
    assert re.fullmatch(
        r"About \d+ (s|min) \(measured \d+\.\d\d s/step on this machine\); at most: early "
        r"stopping usually ends sooner\.",
        first,
    ), first
    assert [p.split(":")[0].strip() for p in phases] == [
        "Student, seed 1 of 2",
        "Student, seed 2 of 2",
    ]
    assert all(": 15 steps, about " in p for p in phases)  # 3 epochs × 5 steps
    assert "nothing was trained (--dry-run)" in out.stderr and "Traceback" not in out.stderr


def test_train_dry_run_refuses_too_few_rows_in_one_line(tmp_path) -> None:
    pd.DataFrame({"text": ["a", "b", "c"], "label": ["x", "y", "x"]}).to_csv(
        tmp_path / "t.csv", index=False
    )
    out = run(
        "train", str(tmp_path / "t.csv"), "--label-column", "label", "--output", "m", "--dry-run"
    )
    assert out.returncode == 2 and "at least 10" in out.stderr and "Traceback" not in out.stderr
