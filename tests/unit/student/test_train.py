"""Student fine-tuning on a tiny, easy synthetic set with the bundled MiniLM: end to end,
reproducibility, cancel, filters, errors, metadata and model card, and the TF-IDF baseline."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from distill_core.student.baseline import fit_baseline
from distill_core.student.train import (
    TrainingArgs,
    TrainingCancelled,
    TrainingError,
    choose_max_length,
    length_grouped_batches,
    stratified_split,
    train,
)

WORDS = {
    "sport": ["football", "goal", "match", "team", "score", "league", "striker"],
    "food": ["pizza", "pasta", "bread", "cheese", "soup", "salad", "cake"],
    "weather": ["rain", "snow", "storm", "sunny", "wind", "cloudy", "thunder"],
}
TINY = TrainingArgs(epochs=1, batch_size=8, max_length=32, lr=1e-4, seed=7)


def easy_set(n_per_class: int = 16, seed: int = 0) -> tuple[list[str], list[str]]:
    """Short texts whose class is given away by its topic words."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n_per_class):
        for label, words in WORDS.items():
            texts.append(f"{rng.choice(words)} {rng.choice(words)} today {i}")
            labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """One model trained for a few epochs on the easy set, shared by the tests below."""
    texts, labels = easy_set()
    out = tmp_path_factory.mktemp("student") / "model"
    progress = []
    args = TrainingArgs(epochs=4, batch_size=8, max_length=32, lr=2e-4, seed=7)
    result = train(
        texts,
        labels,
        out,
        args,
        label_names=["food", "sport", "weather"],
        on_progress=progress.append,
        extra_metadata={"run_id": 123},
    )
    return result, texts, labels, progress


def test_training_end_to_end_saves_a_loadable_model_that_learned(trained) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    result, texts, labels, progress = trained
    out = result.output_dir
    assert out.is_dir() and (out / "config.json").is_file()
    model = AutoModelForSequenceClassification.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.id2label == {0: "food", 1: "sport", 2: "weather"}
    assert model.config.label2id == {"food": 0, "sport": 1, "weather": 2}
    import torch

    with torch.inference_mode():
        enc = tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
        pred = model(**enc).logits.argmax(-1).tolist()
    accuracy = sum(model.config.id2label[p] == y for p, y in zip(pred, labels, strict=True))
    assert accuracy / len(labels) >= 0.8  # chance is 1/3
    assert result.labels == ["food", "sport", "weather"]
    assert result.n_train + result.n_val == len(texts) and result.n_val > 0
    assert 1 <= result.best_epoch <= 4 and len(result.history) >= result.best_epoch
    assert progress and progress[-1].message == "Saved."
    assert all(p.total_steps == progress[0].total_steps for p in progress)
    # nothing but the model folder was written beside it
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_metadata_and_model_card(trained) -> None:
    result, texts, _, _ = trained
    meta = json.loads((result.output_dir / "distill.json").read_text())
    assert meta["labels"] == ["food", "sport", "weather"]
    assert meta["n_train"] == result.n_train and meta["n_val"] == result.n_val
    assert meta["args"]["lr"] == 2e-4 and meta["max_length"] == 32
    assert meta["filters"]["n_input"] == len(texts)
    assert meta["best_epoch"] == result.best_epoch
    assert [h["epoch"] for h in meta["history"]] == list(range(1, len(meta["history"]) + 1))
    assert {"torch", "transformers", "python"} <= set(meta["versions"])
    assert meta["device"] == "cpu" and meta["created_at"] and meta["run_id"] == 123
    card = (result.output_dir / "README.md").read_text()
    assert "AutoModelForSequenceClassification" in card
    assert "weather" in card and "LLM" in card and "limitations" in card.lower()


def test_same_seed_gives_identical_predictions(tmp_path: Path) -> None:
    from distill_core.student.predict import Predictor

    texts, labels = easy_set(8)
    a = train(texts, labels, tmp_path / "a", TINY)
    b = train(texts, labels, tmp_path / "b", TINY)
    pa = Predictor(a.output_dir).predict(texts).probabilities
    pb = Predictor(b.output_dir).predict(texts).probabilities
    assert abs(pa - pb).max() < 1e-6
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]


def test_should_stop_cancels_and_leaves_no_folder(tmp_path: Path) -> None:
    texts, labels = easy_set(8)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 3  # stop during the first epoch

    with pytest.raises(TrainingCancelled):
        train(texts, labels, tmp_path / "model", TINY, should_stop=stop)
    assert list(tmp_path.iterdir()) == []


def test_min_confidence_drops_rows_and_reports_counts(tmp_path: Path) -> None:
    texts, labels = easy_set(8)
    conf = [0.2 if i % 4 == 0 else 0.9 for i in range(len(texts))]
    conf[1] = None
    labels = labels[:]
    labels[2] = ""
    args = TrainingArgs(**{**TINY.__dict__, "min_confidence": 0.5, "val_share": 0.0})
    result = train(texts, labels, tmp_path / "m", args, confidences=conf)
    f = result.metadata.filters
    n_low = sum(1 for i, c in enumerate(conf) if c is not None and c < 0.5 and i != 2)
    assert f["dropped_low_confidence"] == n_low
    assert f["dropped_no_label"] == 1 and f["kept_missing_confidence"] == 1
    assert result.n_train == len(texts) - n_low - 1 == f["n_kept"]
    assert json.loads((tmp_path / "m" / "distill.json").read_text())["filters"] == f


@pytest.mark.parametrize(
    ("texts", "labels", "args", "words"),
    [
        (["a text"] * 20, ["x"] * 20, TINY, "at least 2"),
        (["a", "b", "c", "d"], ["x", "y", "x", "y"], TINY, "at least 10"),
        (
            ["t"] * 20,
            ["x", "y"] * 10,
            TrainingArgs(base_model="/nonexistent/model"),
            "Could not load",
        ),
        (["t"] * 20, ["x", "y"] * 10, TrainingArgs(min_confidence=0.5), "no confidences"),
    ],
)
def test_errors_are_one_sentence(tmp_path, texts, labels, args, words) -> None:
    with pytest.raises(TrainingError) as info:
        train(texts, labels, tmp_path / "m", args)
    message = str(info.value)
    assert words in message and message.endswith(".") and "\n" not in message
    assert not (tmp_path / "m").exists()


def test_filter_to_one_class_is_an_error(tmp_path: Path) -> None:
    texts, labels = easy_set(16)
    conf = [0.9 if y == "sport" else 0.1 for y in labels]
    args = TrainingArgs(min_confidence=0.5)
    with pytest.raises(TrainingError, match="1 class"):
        train(texts, labels, tmp_path / "m", args, confidences=conf)


def test_non_empty_output_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("x")
    texts, labels = easy_set(8)
    with pytest.raises(TrainingError, match="not empty"):
        train(texts, labels, tmp_path / "m", TINY)
    assert (tmp_path / "m" / "keep.txt").read_text() == "x"


def test_stratified_split_keeps_every_class_in_training() -> None:
    labels = [0] * 50 + [1] * 30 + [2] * 1
    tr, va = stratified_split(labels, 0.1, seed=3)
    assert sorted(tr + va) == list(range(81))
    assert [labels[i] for i in va].count(0) == 5 and [labels[i] for i in va].count(1) == 3
    assert 80 in tr
    assert stratified_split(labels, 0.1, seed=3) == (tr, va)


def test_length_grouped_batches_cover_all_rows_once() -> None:
    lengths = [random.Random(1).randint(3, 60) for _ in range(103)]
    batches = length_grouped_batches(lengths, 8, random.Random(0), bucket_batches=4)
    rows = [i for b in batches for i in b]
    assert sorted(rows) == list(range(103)) and max(len(b) for b in batches) == 8
    batch = batches[0]
    assert [lengths[i] for i in batch] == sorted((lengths[i] for i in batch), reverse=True)


def test_choose_max_length_rule() -> None:
    assert choose_max_length([10] * 100, 512, on_cuda=False) == 32
    assert choose_max_length(list(range(1, 101)), 512, on_cuda=False) == 96
    assert choose_max_length([900] * 10, 512, on_cuda=False) == 256
    assert choose_max_length([900] * 10, 512, on_cuda=True) == 512
    assert choose_max_length([900] * 10, 128, on_cuda=True) == 128


def test_baseline_learns_the_easy_set() -> None:
    texts, labels = easy_set(16)
    model = fit_baseline(texts, labels, seed=1)
    test_texts, test_labels = easy_set(5, seed=99)
    pred, conf = model.predict(test_texts)
    assert sum(p == y for p, y in zip(pred, test_labels, strict=True)) / len(pred) >= 0.9
    assert all(0 < c <= 1 for c in conf) and model.labels == ["food", "sport", "weather"]
    assert model.predict([]) == ([], [])
