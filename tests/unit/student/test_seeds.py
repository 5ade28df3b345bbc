"""Seed variability in the student package: the seeds setting and its checks, the settings of
each seed (identical rows and validation split), training the other seeds in folders that do not
outlive their scoring, the SeedRuns record (spread, sentence, stored form) and the model card;
and the command line's ``train --seeds``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from distill_core.student import train as train_module
from distill_core.student.args import MAX_SEEDS, TrainingArgs, TrainingError
from distill_core.student.card import ModelMeta, SeedRuns, SeedScore, model_card
from distill_core.student.train import train, train_other_seeds
from tests.unit.student.test_train import easy_set

REPO = Path(__file__).resolve().parents[3]
TINY = TrainingArgs(epochs=1, batch_size=8, max_length=32, seed=7)


def test_seeds_are_checked_and_default_to_one() -> None:
    assert TrainingArgs().seeds == 1
    assert TrainingArgs(seeds=MAX_SEEDS).seeds == MAX_SEEDS
    for bad in (0, -1, MAX_SEEDS + 1):
        with pytest.raises(TrainingError, match=f"from 1 to {MAX_SEEDS} seeds"):
            TrainingArgs(seeds=bad)
    assert 5 <= MAX_SEEDS <= 20  # enough for a spread, not a day of CPU training
    # settings stored before seeds existed read as one seed, and round-trip
    assert TrainingArgs.from_dict({"epochs": 3}).seeds == 1
    args = TrainingArgs(seeds=3, seed=11)
    assert TrainingArgs.from_dict(args.to_dict()) == args


def test_each_seed_keeps_the_first_ones_validation_split() -> None:
    args = TrainingArgs(seeds=3, seed=11, epochs=2)
    first, *others = args.seed_settings()
    assert first is args  # the kept model trains exactly as with one seed
    assert [(a.seed, a.split_seed, a.seeds) for a in others] == [(12, 11, 1), (13, 11, 1)]
    assert all(a.epochs == 2 for a in others)
    assert TrainingArgs(seed=4).seed_settings() == [TrainingArgs(seed=4)]


@pytest.mark.slow
def test_other_seeds_train_on_the_same_split_and_leave_no_folder(tmp_path, monkeypatch) -> None:
    texts, labels = easy_set(8)
    splits = []
    split = train_module.stratified_split

    def spy(y, share, seed):
        splits.append((seed, split(y, share, seed)))
        return splits[-1][1]

    monkeypatch.setattr(train_module, "stratified_split", spy)
    args = TrainingArgs(**{**TINY.to_dict(), "seeds": 3})
    kept = train(texts, labels, tmp_path / "kept", args)
    folders, phases = [], []

    def score(folder: Path, result) -> SeedScore:
        assert (folder / "config.json").is_file()  # still there while it is scored
        folders.append(folder)
        return SeedScore(int(result.metadata.args["seed"]), result.val_macro_f1, None)

    def on_progress(i, n):
        phases.append((i, n))
        return None

    scores = train_other_seeds(texts, labels, args, score, on_progress=on_progress)
    assert [s.seed for s in scores] == [8, 9]
    assert phases == [(2, 3), (3, 3)]
    assert not any(f.exists() for f in folders)
    # one split for all three: the same validation rows, only the training seed differs
    assert [seed for seed, _ in splits] == [7, 7, 7]
    assert splits[0][1] == splits[1][1] == splits[2][1]
    assert kept.metadata.args["seed"] == 7 and kept.val_accuracy is not None


def test_seed_runs_give_mean_range_and_the_kept_seed() -> None:
    runs = SeedRuns(
        [
            SeedScore(42, 0.71, 0.80, ["a", "b"]),
            SeedScore(43, 0.69, 0.78, ["a", "a"]),
            SeedScore(44, 0.73, 0.82, ["b", "b"]),
        ],
        n=2,
    )
    spread = runs.spread("macro_f1")
    assert spread.mean == pytest.approx(0.71) and (spread.low, spread.high) == (0.69, 0.73)
    assert runs.sentence().startswith(
        "Across 3 seeds: macro-F1 0.710 (range 0.690–0.730), accuracy 0.800 (range 0.780–0.820)"
    )
    assert "first seed's (seed 42)" in runs.sentence() and "not the best" in runs.sentence()
    assert SeedRuns.from_dict(json.loads(json.dumps(runs.to_dict()))) == runs
    bare = runs.without_predictions()
    assert all(s.predictions == [] for s in bare.scores)
    assert "predictions" not in json.dumps(bare.to_dict())
    # an unmeasured seed is left out of the spread, never counted as 0
    partial = SeedRuns([SeedScore(1, 0.5, None), SeedScore(2, None, None)], n=10)
    assert partial.spread("macro_f1").low == 0.5 and partial.spread("accuracy") is None
    assert "accuracy n/a" in partial.sentence()


def test_the_model_card_shows_the_spread_and_old_metadata_reads() -> None:
    meta = ModelMeta(labels=["a", "b"], n_train=20)
    assert "Seed variability" not in model_card(meta)
    meta.seeds = SeedRuns([SeedScore(3, 0.6, 0.7), SeedScore(4, 0.8, 0.9)], n=40)
    card = model_card(meta)
    assert "## Seed variability" in card and meta.seeds.sentence() in card
    assert "seed 3: 0.600, seed 4: 0.800" in card
    again = ModelMeta.from_dict(json.loads(json.dumps(meta.to_dict())))
    assert again.seeds == meta.seeds and "seeds" not in again.other
    assert ModelMeta.from_dict({"labels": ["a"]}).seeds is None


@pytest.mark.slow
def test_the_command_line_trains_n_seeds_and_keeps_the_first(tmp_path) -> None:
    texts, labels = easy_set(8)
    pd.DataFrame({"text": texts, "label": labels}).to_csv(tmp_path / "t.csv", index=False)
    out = subprocess.run(
        [sys.executable, "-m", "distill_core", "train", str(tmp_path / "t.csv")]
        + ["--label-column", "label", "--output", str(tmp_path / "m")]
        + ["--epochs", "1", "--batch-size", "8", "--max-length", "32", "--seed", "5"]
        + ["--seeds", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "Across 2 seeds: macro-F1" in out.stderr and "seed 5" in out.stderr
    saved = json.loads((tmp_path / "m" / "distill.json").read_text(encoding="utf-8"))
    assert saved["args"]["seed"] == 5 and saved["args"]["seeds"] == 2
    assert [s["seed"] for s in saved["seeds"]["scores"]] == [5, 6]
    assert saved["seeds"]["scored_on"].startswith("validation texts")
    assert "## Seed variability" in (tmp_path / "m" / "README.md").read_text("utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "t.csv"]
    bad = subprocess.run(
        [sys.executable, "-m", "distill_core", "train", str(tmp_path / "t.csv")]
        + ["--label-column", "label", "--output", str(tmp_path / "n"), "--seeds", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "from 1 to" in bad.stderr and "Traceback" not in bad.stderr
