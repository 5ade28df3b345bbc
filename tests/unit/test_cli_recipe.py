"""`train --recipe head`: the fast recipe from the command line, its choice on stderr and in
the model's metadata, and `predict` with the folder it saves."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.unit.student.test_train import easy_set
from tests.unit.test_cli import run


@pytest.mark.slow
def test_train_with_the_head_recipe_and_predict_with_it(tmp_path) -> None:
    texts, labels = easy_set(8)
    conf = [0.3 if i % 3 == 0 else 0.95 for i in range(len(texts))]
    frame = pd.DataFrame({"text": texts, "label": labels, "llm_confidence": conf})
    frame.to_csv(tmp_path / "t.csv", index=False)
    out = run(
        "train",
        str(tmp_path / "t.csv"),
        "--label-column",
        "label",
        "--output",
        str(tmp_path / "m"),
        "--recipe",
        "head",
        "--certainty",
        "weight",
        "--mistake-filter",
        "0.3",
    )
    assert out.returncode == 0, out.stderr
    assert "Recipe: fast: frozen encoder + trained classifier head — set in the settings" in (
        out.stderr
    )
    meta = json.loads((tmp_path / "m" / "distill.json").read_text(encoding="utf-8"))
    assert meta["recipe"] == "head" and meta["args"]["certainty"] == "weight"
    assert meta["args"]["noise_filter"] == 0.3 and "set_aside_likely_mistakes" in meta["filters"]
    assert meta["recipe_choice"]["requested"] == "head"
    pred = run(
        "predict", str(tmp_path / "m"), str(tmp_path / "t.csv"), "--output", str(tmp_path / "p.csv")
    )
    assert pred.returncode == 0, pred.stderr
    got = pd.read_csv(tmp_path / "p.csv")
    assert (got["pred_label"] == frame["label"]).mean() >= 0.9
