"""Batch inference with a trained student: input order kept, empty texts predicted,
probabilities consistent, cache, progress and cancel."""

from __future__ import annotations

import numpy as np
import pytest

from distill_core.student.args import TrainingArgs
from distill_core.student.predict import PredictionCancelled, Predictor, load, predict_texts
from distill_core.student.train import train
from tests.unit.student.test_train import easy_set


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory):
    texts, labels = easy_set(8)
    out = tmp_path_factory.mktemp("pred") / "model"
    train(texts, labels, out, TrainingArgs(epochs=1, batch_size=8, max_length=32, seed=3))
    return out


def test_predictions_keep_input_order_and_handle_empty_text(model_dir) -> None:
    texts = [
        "a much longer text about the football match and the goal scored by the striker",
        "",
        "rain",
        "pizza and pasta with cheese",
        None,
    ]
    p = predict_texts(model_dir, texts, batch_size=2)
    assert len(p.labels) == len(texts) == len(p.confidence) == p.probabilities.shape[0]
    predictor = load(model_dir)
    assert p.probabilities.shape[1] == len(predictor.labels) == 3
    np.testing.assert_allclose(p.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert p.labels == [predictor.labels[i] for i in p.probabilities.argmax(axis=1)]
    assert p.confidence == pytest.approx(p.probabilities.max(axis=1).tolist())
    # each row is the same as predicting that text alone: order was restored after sorting
    for i, text in enumerate(texts):
        alone = predictor.predict([text]).probabilities[0]
        np.testing.assert_allclose(alone, p.probabilities[i], atol=1e-5)


def test_load_is_cached_and_labels_come_from_config(model_dir) -> None:
    assert load(model_dir) is load(str(model_dir))
    assert load(model_dir).labels == ["food", "sport", "weather"]
    assert load(model_dir).max_length == 32


def test_progress_and_cancel(model_dir) -> None:
    seen = []
    predict_texts(model_dir, ["rain"] * 10, batch_size=4, on_progress=lambda d, n: seen.append(d))
    assert seen == [4, 8, 10]
    with pytest.raises(PredictionCancelled):
        predict_texts(model_dir, ["rain"] * 10, batch_size=4, should_stop=lambda: True)


def test_no_texts_and_missing_folder(model_dir, tmp_path) -> None:
    p = load(model_dir).predict([])
    assert p.labels == [] and p.probabilities.shape == (0, 3)
    with pytest.raises(FileNotFoundError):
        Predictor(tmp_path / "missing")
