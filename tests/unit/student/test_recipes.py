"""The fast recipe (frozen encoder + classifier head), the choice of recipe, the teacher's
certainty in the loss and the TF-IDF check on the student's validation texts."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from distill_core.student import head as head_mod
from distill_core.student import recipes, targets
from distill_core.student.args import TrainingArgs, TrainingError
from distill_core.student.card import METADATA_FILE, ModelMeta, model_card
from distill_core.student.head import fit_linear
from distill_core.student.predict import Predictor
from distill_core.student.recipes import RecipeChoice, choose_recipe
from distill_core.student.train import train
from tests.unit.student.test_train import easy_set

NAMES = ["food", "sport", "weather"]


@pytest.fixture(scope="module")
def head_model(tmp_path_factory: pytest.TempPathFactory):
    """One head student on the easy set, with confidences and the certainty-weighted loss;
    the weights reaching the head's fit are recorded."""
    texts, labels = easy_set()
    conf = [0.2 if i % 4 == 0 else 0.9 for i in range(len(texts))]
    seen: list[np.ndarray] = []
    real = head_mod.fit_linear

    def spy(x, q, w, c, **kw):
        seen.append(np.asarray(w).copy())
        return real(x, q, w, c, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(head_mod, "fit_linear", spy)
    out = tmp_path_factory.mktemp("head") / "model"
    progress = []
    try:
        result = train(
            texts,
            labels,
            out,
            TrainingArgs(recipe="head", seed=3, certainty="weight"),
            label_names=NAMES,
            confidences=conf,
            on_progress=progress.append,
            extra_metadata={"recipe_choice": RecipeChoice("auto", "head", "a test.").to_dict()},
        )
    finally:
        mp.undo()
    return result, texts, labels, conf, seen, progress


def test_the_head_recipe_saves_a_folder_predictor_loads(head_model) -> None:
    result, texts, labels, _, _, progress = head_model
    out = result.output_dir
    assert {"config.json", "head.safetensors", "head.json", METADATA_FILE} <= {
        p.name for p in out.iterdir()
    }
    predictor = Predictor(out)
    assert predictor.labels == NAMES
    got = predictor.predict([*texts, "", "snow and thunder tonight"])
    assert np.allclose(got.probabilities.sum(axis=1), 1.0, atol=1e-5)
    right = sum(p == y for p, y in zip(got.labels, labels, strict=False))
    assert right / len(labels) >= 0.9
    assert got.labels[-1] == "weather"
    # one progress unit with train(): epochs × batches, ending full
    assert progress[-1].step == progress[-1].total_steps
    assert all(p.total_steps == progress[0].total_steps for p in progress)


def test_the_head_recipes_metadata_reads_back(head_model) -> None:
    result, *_ = head_model
    stored = json.loads((result.output_dir / METADATA_FILE).read_text(encoding="utf-8"))
    meta = ModelMeta.from_dict(stored)
    assert meta.recipe == "head" and meta.args["recipe"] == "head"
    assert meta.recipe_choice == RecipeChoice("auto", "head", "a test.")
    assert meta.labels == NAMES and meta.n_train + meta.n_val == 48
    assert meta.val_macro_f1 is not None and meta.tfidf_val_macro_f1 is not None
    assert len(meta.history) == 1 and meta.best_epoch == 1
    assert stored["head"]["c"] in head_mod.C_GRID
    assert ModelMeta.from_dict(meta.to_dict()).to_dict() == meta.to_dict()
    card = model_card(meta)
    assert "head.safetensors" in card and "chosen automatically: a test." in card


def test_the_teachers_certainty_reaches_the_heads_loss(head_model) -> None:
    """The weights the head is fitted with follow the confidences (a head that ignored
    them would be fitted with equal weights)."""
    result, texts, _, conf, seen, _ = head_model
    final = seen[-1]  # the fit on the training rows, after the cross-validation's fits
    assert len(final) == result.n_train
    assert final.min() < 0.5 < final.max()  # 0.2 and 0.9, normalised to mean 1
    ratio = final.max() / final.min()
    assert ratio == pytest.approx(0.9 / 0.2, rel=1e-4)


def test_weights_change_what_the_head_learns() -> None:
    """The same points labelled 0 (weight 1) and, twice as often, 1 (weight 0.01): weighted,
    the head says 0; unweighted it would say 1."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    y = np.array([0] * 20 + [1] * 40)
    x[20:40] = x[:20]
    x[40:] = x[:20]
    q = np.eye(2, dtype=np.float32)[y]
    w = np.where(y == 0, 1.0, 0.01).astype(np.float32)
    weighted_w, weighted_b = fit_linear(x, q, w, 10.0)
    plain_w, plain_b = fit_linear(x, q, None, 10.0)
    assert ((x[:20] @ weighted_w.T + weighted_b).argmax(1) == 0).all()
    assert ((x[:20] @ plain_w.T + plain_b).argmax(1) == 1).all()


def test_the_head_fits_sparse_features_as_it_fits_the_same_dense_ones() -> None:
    """fit_linear and fit_head take a scipy sparse matrix (embeddings beside TF-IDF columns,
    benchmarks/distill_quality.py --screen hybrid1): same objective, same head."""
    from scipy import sparse

    x, y, _ = _clusters(seed=3)
    x = np.hstack([x, np.where(np.random.default_rng(3).random((len(y), 6)) < 0.8, 0.0, 1.0)])
    q, w = np.eye(3)[y], np.ones(len(y))
    dense_w, dense_b = fit_linear(x, q, w, 10.0)
    sparse_w, sparse_b = fit_linear(sparse.csr_matrix(x), q, w, 10.0)
    np.testing.assert_allclose(sparse_w, dense_w, atol=1e-4)
    np.testing.assert_allclose(sparse_b, dense_b, atol=1e-4)
    dense = head_mod.fit_head(x, y.tolist(), q, w, seed=1, noise_filter=0.5)
    thin = head_mod.fit_head(sparse.csr_matrix(x), y.tolist(), q, w, seed=1, noise_filter=0.5)
    assert dense.set_aside.any() and (thin.set_aside == dense.set_aside).all()
    assert thin.c == dense.c
    np.testing.assert_allclose(thin.weight, dense.weight, atol=1e-4)


def test_soft_cross_entropy_uses_targets_and_weights() -> None:
    import torch

    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    hard = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    plain = targets.soft_cross_entropy(logits, hard)
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 0]))
    assert plain.item() == pytest.approx(expected.item())
    # all the weight on the right row: the loss is that row's alone
    weighted = targets.soft_cross_entropy(logits, hard, torch.tensor([1.0, 0.0]))
    only_first = torch.nn.functional.cross_entropy(logits[:1], torch.tensor([0]))
    assert weighted.item() == pytest.approx(only_first.item())
    assert weighted.item() < plain.item()


def test_teacher_targets_per_mode() -> None:
    cert = targets.certainties([0.9, None, 0.5], [1.0, 0.5, None], 3)
    assert cert == [pytest.approx(0.9), pytest.approx(0.5), pytest.approx(0.5)]
    assert targets.certainties(None, None, 2) == [None, None]
    y = [0, 1, 2]
    q, w = targets.teacher_targets(y, 3, cert, "off")
    assert (q == np.eye(3)).all() and (w == 1).all()
    q, w = targets.teacher_targets(y, 3, cert, "soft")
    assert np.allclose(q.sum(axis=1), 1) and q[0, 0] == pytest.approx(0.9)
    assert q[1, 0] == pytest.approx(0.25) and (w == 1).all()
    q, w = targets.teacher_targets(y, 3, cert, "weight")
    assert (q == np.eye(3)).all() and w.mean() == pytest.approx(1)
    assert w[0] / w[1] == pytest.approx(0.9 / 0.5)
    q, _ = targets.teacher_targets(y, 3, None, "off", smoothing=0.3)
    assert q[0, 0] == pytest.approx(0.8) and q[0, 1] == pytest.approx(0.1)


def test_full_fine_tuning_passes_the_weights_to_its_loss(tmp_path: Path, monkeypatch) -> None:
    """With certainty="weight", every training batch's loss gets the normalised confidences
    of its rows (a loss that ignored them would see none)."""
    texts, labels = easy_set(6)
    conf = [0.25 if i % 2 else 1.0 for i in range(len(texts))]
    calls = []
    real = targets.soft_cross_entropy

    def spy(logits, q, w=None, cw=None):
        calls.append(w.detach().clone())
        return real(logits, q, w, cw)

    monkeypatch.setattr(targets, "soft_cross_entropy", spy)
    args = TrainingArgs(
        recipe="full", epochs=1, batch_size=8, max_length=16, certainty="weight", val_share=0.0
    )
    train(texts, labels, tmp_path / "m", args, confidences=conf)
    seen = torch_cat(calls)
    assert len(seen) == len(texts)
    assert sorted({round(float(v), 4) for v in seen}) == [round(0.25 / 0.625, 4), 1.6]


def torch_cat(tensors):
    import torch

    return torch.cat(tensors)


def test_below_tfidf_is_flagged_in_the_metadata_and_the_card(tmp_path: Path, monkeypatch) -> None:
    """A student that ends below TF-IDF on its validation texts says so (forced here: the
    baseline is made perfect)."""
    import distill_core.student.baseline as baseline

    texts, labels = easy_set(5)
    random.Random(1).shuffle(labels)  # labels unrelated to the texts
    monkeypatch.setattr(baseline, "validation_macro_f1", lambda *a, **k: 1.0)
    result = train(texts, labels, tmp_path / "m", TrainingArgs(recipe="head", val_share=0.3))
    meta = result.metadata
    assert meta.below_tfidf and meta.tfidf_val_macro_f1 == 1.0
    sentence = meta.below_tfidf_sentence()
    assert sentence.startswith("This student scores below a TF-IDF baseline on its validation")
    assert f"({meta.val_macro_f1:.2f} vs 1.00" in sentence and "full fine-tuning" in sentence
    assert sentence in (result.output_dir / "README.md").read_text(encoding="utf-8")


def test_old_metadata_and_settings_read_as_full_fine_tuning() -> None:
    assert ModelMeta.from_dict({"labels": ["a", "b"], "val_macro_f1": 0.5}).recipe == "full"
    old = ModelMeta.from_dict({"labels": ["a", "b"], "val_macro_f1": 0.5})
    assert old.recipe_choice is None and not old.below_tfidf
    assert old.below_tfidf_sentence() is None
    assert TrainingArgs.from_dict({"epochs": 3}).recipe == "full"
    assert TrainingArgs().recipe == "auto"  # new settings choose by the time budget
    assert TrainingArgs.from_dict(TrainingArgs(recipe="head").to_dict()).recipe == "head"
    with pytest.raises(TrainingError, match="recipe"):
        TrainingArgs(recipe="setfit")
    with pytest.raises(TrainingError, match="certainty"):
        TrainingArgs(certainty="sure")


def test_auto_picks_the_recipe_that_fits_the_budget() -> None:
    fits = choose_recipe("auto", on_cuda=False, budget_s=600, full_s=300, head_s=20)
    assert fits.recipe == "full" and "5 min" in fits.reason and "10 min" in fits.reason
    over = choose_recipe("auto", on_cuda=False, budget_s=600, full_s=3600, head_s=25)
    assert over.recipe == "head"
    assert "1 h" in over.reason and "10 min" in over.reason and "25 s" in over.reason
    assert over.sentence().startswith("Recipe: fast: frozen encoder")
    assert "chosen automatically" in over.sentence()
    gpu = choose_recipe("auto", on_cuda=True, budget_s=1, full_s=3600)
    assert gpu.recipe == "full" and "GPU" in gpu.reason
    assert choose_recipe("auto", on_cuda=False, budget_s=600, full_s=None).recipe == "full"
    kept = choose_recipe("full", on_cuda=False, budget_s=1, full_s=3600)
    assert kept.recipe == "full" and "set in the settings" in kept.sentence()
    assert choose_recipe("head", on_cuda=True, budget_s=1, full_s=None).recipe == "head"
    assert RecipeChoice.from_dict(over.to_dict()) == over


def test_resolve_measures_full_fine_tuning_only_when_it_must() -> None:
    class Estimate:
        seconds = 4000.0
        s_per_step = 2.0

    asked = []

    def estimate_full(args):
        asked.append(args.recipe)
        return Estimate()

    args, choice = recipes.resolve(
        TrainingArgs(), estimate_full, n_texts=1000, trainings=6, on_cuda=False
    )
    assert asked == ["full"] and args.recipe == "head" and choice.full_s == 4000.0
    assert choice.head_s == pytest.approx(1000 * 2.0 / 16 * recipes.ENCODE_SHARE + 6 * 15)
    args, choice = recipes.resolve(
        TrainingArgs(recipe="full"), estimate_full, n_texts=1000, on_cuda=False
    )
    assert asked == ["full"] and args.recipe == "full" and choice.reason == "as set."
    args, _ = recipes.resolve(TrainingArgs(), estimate_full, n_texts=10, on_cuda=True)
    assert asked == ["full"] and args.recipe == "full"


def test_a_job_that_fits_even_at_a_slow_pace_is_not_timed() -> None:
    def never(_args):
        raise AssertionError("timed")

    args, choice = recipes.resolve(
        TrainingArgs(time_budget_s=600), never, n_texts=100, steps=60, on_cuda=False
    )
    assert args.recipe == "full" and "60 training steps fit" in choice.reason


def test_the_estimate_sentence_says_which_recipe_auto_would_pick() -> None:
    from distill_core.student.timing import JobEstimate, PhaseEstimate

    slow = JobEstimate(
        phases=(PhaseEstimate("Student on LLM labels", 630, 2500.0), PhaseEstimate("TF-IDF", 0, 2)),
        s_per_step=4.0,
        steps_timed=3,
        device="cpu",
        threads=1,
        early_stopping=True,
    )
    auto = recipes.estimate_sentence(TrainingArgs(time_budget_s=600), slow)
    assert auto.startswith("Recipe: fast: frozen encoder + trained classifier head — chosen")
    assert "above the time budget of 10 min" in auto and "4.00 s a step" in auto
    full = recipes.estimate_sentence(TrainingArgs(recipe="full"), slow)
    assert full == slow.sentence()
    head = recipes.estimate_sentence(TrainingArgs(recipe="head"), slow)
    assert head.startswith("The fast recipe: about ") and "full fine-tuning: about 42 min" in head
    fits = recipes.estimate_sentence(TrainingArgs(time_budget_s=3600), slow)
    assert fits.startswith(slow.sentence()) and "within the time budget of 1 h" in fits


def _clusters(n_per: int = 100, flip: int = 30, seed: int = 0):
    """Three well-separated clusters; ``flip`` rows get another cluster's label."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 8) * 4
    x = np.concatenate([c + rng.normal(size=(n_per, 8)) for c in centres])
    y_true = np.repeat(np.arange(3), n_per)
    y = y_true.copy()
    flipped = rng.choice(len(y), flip, replace=False)
    y[flipped] = (y[flipped] + 1) % 3
    return x, y, set(flipped.tolist())


def test_likely_mistakes_are_the_labels_the_cross_validation_finds_unlikely() -> None:
    x, y, flipped = _clusters()
    q = np.eye(3)[y]
    w = np.ones(len(y))
    _, _, oof = head_mod.choose_c(x, y.tolist(), q, w, seed=1)
    assert oof is not None and oof.shape == (len(y), 3)
    marked = set(np.flatnonzero(head_mod.likely_mistakes(oof, y, 0.5)).tolist())
    assert len(marked & flipped) >= 0.8 * len(flipped)  # found
    assert len(marked - flipped) <= 0.25 * len(marked)  # mostly the flipped ones
    assert not head_mod.likely_mistakes(oof, y, 0.0).any()  # 0: off
    # a label never loses all its rows, even at a share that would mark them all
    one = np.array([0] * 5 + [1] * 40)
    probs = np.full((45, 2), 0.5)
    probs[:5] = [0.01, 0.99]
    kept = ~head_mod.likely_mistakes(probs, one, 0.99, min_rows=1)
    assert kept[:5].sum() >= 1
    # a label with fewer rows than the filter needs to judge keeps them all
    few = head_mod.likely_mistakes(oof[:150], y[:150], 0.5, min_rows=head_mod.MIN_ROWS_TO_JUDGE)
    labels_few = [lab for lab in range(3) if (y[:150] == lab).sum() < head_mod.MIN_ROWS_TO_JUDGE]
    assert labels_few and not few[np.isin(y[:150], labels_few)].any()


def test_the_head_fit_sets_aside_likely_mistakes_before_its_final_fit() -> None:
    x, y, flipped = _clusters(seed=2)
    q, w = np.eye(3)[y], np.ones(len(y))
    filtered = head_mod.fit_head(x, y.tolist(), q, w, seed=1, noise_filter=0.5)
    plain = head_mod.fit_head(x, y.tolist(), q, w, seed=1, noise_filter=0.0)
    assert not plain.set_aside.any()
    assert filtered.set_aside.sum() >= 0.8 * len(flipped)
    # the clean fit is more certain of the right cluster on the flipped rows
    rows = sorted(flipped)
    right = (y[rows] - 1) % 3
    p_clean = (x[rows] @ filtered.weight.T + filtered.bias).argmax(1)
    assert (p_clean == right).mean() >= 0.8


def test_the_head_student_records_and_says_what_it_set_aside(tmp_path: Path) -> None:
    texts, labels = easy_set(n_per_class=100)  # 90 a label to train on: enough to judge
    noisy = list(labels)
    swap = {"food": "sport", "sport": "weather", "weather": "food"}
    for i in range(0, len(noisy), 8):  # one label in 8 wrong
        noisy[i] = swap[noisy[i]]
    on = train(texts, noisy, tmp_path / "on", TrainingArgs(recipe="head", seed=3))
    off = train(
        texts, noisy, tmp_path / "off", TrainingArgs(recipe="head", seed=3, noise_filter=0.0)
    )
    aside = on.metadata.filters["set_aside_likely_mistakes"]
    assert 1 <= aside < on.n_train
    assert off.metadata.filters["set_aside_likely_mistakes"] == 0
    sentence = on.metadata.mistakes_sentence()
    assert f"{on.n_train:,} training texts, {aside:,} were set aside" in sentence
    assert off.metadata.mistakes_sentence() is None
    assert sentence in model_card(ModelMeta.from_dict(on.metadata.to_dict()))
    assert TrainingArgs().noise_filter == 0.5
    assert TrainingArgs.from_dict({"epochs": 3}).noise_filter == 0.0  # stored before it existed
    with pytest.raises(TrainingError, match="mistake filter"):
        TrainingArgs(noise_filter=1.0)


def test_the_cuda_precision_setting() -> None:
    from distill_core.student.threads import PRECISION_ENV, cuda_half

    assert cuda_half({PRECISION_ENV: "fp32"}) == (None, "fp32")
    with pytest.raises(ValueError, match=PRECISION_ENV):
        cuda_half({PRECISION_ENV: "int4"})
