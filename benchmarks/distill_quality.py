"""Distillation quality on real human-labelled tasks (../shared/data): does a student trained on
a teacher's labels approach one trained on human labels, and beat a TF-IDF baseline? Per
recipe (full fine-tuning, the fast frozen-encoder head), several seeds, with wall times.

Per task: a fixed test split of human labels (≤ --n-test texts, drawn once with --test-seed),
and per replicate seed s: --n-train training texts drawn from the rest, and a simulated
teacher whose errors are not random. A weak classifier (TF-IDF + logistic regression, C=1,
balanced class weights) is fitted on up to --n-teacher other human-labelled texts; the teacher
gives the human label except on a random share of the texts the weak classifier gets wrong,
where it gives the weak classifier's label. The share is set so that the teacher's accuracy on
the training texts is --teacher-accuracy (default 0.80, about GPT-4's agreement with human
coders in the papers; the realised figure is printed, and it is higher when the weak
classifier makes fewer mistakes than that). The teacher also reports a confidence per text
(for the certainty variants): a calibrated probability that its label is right, from a score
that separates its right from its wrong labels with AUROC --confidence-auc (0.75 by default;
a simulation parameter, not a measured property of any LLM).

Systems, scored as macro-F1 on the human test split:

  teacher                    the simulated teacher itself
  tfidf_teacher              fit_baseline() (TF-IDF + LR) on the teacher's labels
  <recipe>_teacher           train() with TrainingArgs(recipe=<recipe>) defaults, teacher labels
  <recipe>_teacher_<v>       the same with a certainty variant v: weight, soft, smooth0.1
  <recipe>_human             the same recipe on the human labels of the same texts

``--curve 0.25,0.5,1`` adds the learning curve of the head recipe on teacher labels (shares of
the training texts), with 95% bootstrap intervals, and what labelling more texts would cost
(distill_core/llm/cost.py, --curve-model's list price, a codebook of the task's label names).

Every result is appended to --jsonl as one JSON line; ``--summarize FILE`` prints the tables
(mean and range over seeds, mean wall time) from such a file, so runs done in several pieces
(the 2-core machine cannot do them all at once) make one table.

Usage: .venv/bin/python benchmarks/distill_quality.py [--tasks tweeteval_emotion,...]
       [--recipes head,full] [--variants off,weight,soft] [--seeds 42,43,44] [--n-train 1000]
       [--jsonl results.jsonl] [--curve 0.25,0.5,1]
       .venv/bin/python benchmarks/distill_quality.py --summarize results.jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
TASKS = ["tweeteval_emotion", "tweeteval_hate", "uscongress_bill_topics", "davidson_hate_offensive"]


def read_task(name: str, seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]] | None:
    """(pool, test) lists of (text, label): the file's own splits, else a seeded 80/20 split."""
    path = DATA / f"{name}.csv"
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"]]
    test = [(r["text"], r["label"]) for r in rows if r.get("split") == "test"]
    pool = [(r["text"], r["label"]) for r in rows if r.get("split") in ("train", "val")]
    if not test:
        rng = random.Random(seed)
        allrows = [(r["text"], r["label"]) for r in rows]
        rng.shuffle(allrows)
        cut = int(len(allrows) * 0.8)
        pool, test = allrows[:cut], allrows[cut:]
    return pool, test


def mixed_teacher(human: list[str], weak: list[str], share: float, rng: random.Random) -> list[str]:
    """Human labels, except on round(share × m) of the m texts the weak classifier gets
    wrong (drawn at random, seeded), which get the weak classifier's label."""
    wrong = [i for i, (h, w) in enumerate(zip(human, weak, strict=True)) if h != w]
    copied = set(rng.sample(wrong, round(share * len(wrong))))
    return [weak[i] if i in copied else h for i, h in enumerate(human)]


def error_share(human: list[str], weak: list[str], accuracy: float) -> float:
    """Share of the weak classifier's mistakes to copy so that the teacher's expected
    accuracy is ``accuracy`` (1.0 when the weak classifier makes too few mistakes)."""
    wrong = sum(w != h for h, w in zip(human, weak, strict=True))
    need = (1.0 - accuracy) * len(human)
    return 1.0 if wrong == 0 else min(1.0, max(0.0, need / wrong))


def fit_weak(rows: list[tuple[str, str]], seed: int, balanced: bool):
    """TF-IDF + logistic regression (C=1) on other texts: the weak classifier whose mistakes
    the teacher copies. ``balanced`` weights classes by inverse frequency, so that its
    mistakes are spread over the classes as an LLM's are (an LLM follows the codebook, not
    the base rates) rather than collapsing onto the majority class."""
    from distill_core.student.baseline import fit_baseline

    texts, labels = [t for t, _ in rows], [lab for _, lab in rows]
    weak = fit_baseline(texts, labels, seed, c=1.0)
    if balanced:
        weak.pipeline.set_params(lr__class_weight="balanced").fit(texts, labels)
    return weak


def simulated_confidence(correct: list[bool], auc: float, seed: int) -> list[float]:
    """A calibrated confidence per label: P(right | s) for a score s ~ N(d', 1) on right and
    N(0, 1) on wrong labels, d' = √2·Φ⁻¹(auc), so the score ranks right above wrong labels
    with AUROC ``auc``; the prior is the share of right labels."""
    import numpy as np
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    right = np.asarray(correct, dtype=bool)
    prior = float(right.mean())
    d = math.sqrt(2) * norm.ppf(auc)
    s = np.where(right, d, 0.0) + rng.standard_normal(len(right))
    a = prior * norm.pdf(s - d)
    b = (1 - prior) * norm.pdf(s)
    return [float(v) for v in a / (a + b)]


def accuracy(gold: list[str], pred: list[str]) -> float:
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / max(1, len(gold))


def macro_f1(gold: list[str], pred: list[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, average="macro", zero_division=0))


VARIANTS = {
    "off": {},
    "weight": {"certainty": "weight"},
    "soft": {"certainty": "soft"},
    "smooth0.1": {"label_smoothing": 0.1},
}


def draw(pool_all, tx, ty, seed: int, a) -> tuple[list, list, list, list, list]:
    """Seed ``seed``'s replicate: (training texts, their human labels, the simulated
    teacher's labels on them, its labels on the test texts, its confidences)."""
    pool = pool_all[:]
    random.Random(seed).shuffle(pool)
    train_rows = pool[: a.n_train]
    teacher_rows = pool[a.n_train : a.n_train + a.n_teacher]
    x = [t for t, _ in train_rows]
    y_human = [lab for _, lab in train_rows]
    weak = fit_weak(teacher_rows, seed, balanced=True)
    weak_train, weak_test = weak.predict(x)[0], weak.predict(tx)[0]
    share = error_share(y_human, weak_train, a.teacher_accuracy)
    trng = random.Random(seed + 1)
    y_teacher = mixed_teacher(y_human, weak_train, share, trng)
    t_test = mixed_teacher(ty, weak_test, share, trng)
    right = [t == h for t, h in zip(y_teacher, y_human, strict=True)]
    conf = simulated_confidence(right, a.confidence_auc, seed + 2)
    return x, y_human, y_teacher, t_test, conf


def run_student(texts, labels, test_x, test_y, args, workdir: Path, tag: str, conf=None) -> dict:
    from distill_core.student.embed import clear_memory_cache
    from distill_core.student.predict import Predictor
    from distill_core.student.train import train

    clear_memory_cache()  # every run pays for its own embeddings: honest wall times
    out = workdir / tag
    t0 = time.perf_counter()

    def show(p) -> None:
        if p.val_macro_f1 is not None or p.message == "Saved.":
            print(f"    [{tag}] {p.message} ({time.perf_counter() - t0:.0f} s)", flush=True)

    res = train(texts, labels, out, args, confidences=conf, on_progress=show)
    pred = Predictor(out).predict(test_x)
    meta = res.metadata
    return {
        "f1": macro_f1(test_y, pred.labels),
        "accuracy": round(accuracy(test_y, pred.labels), 4),
        "seconds": round(time.perf_counter() - t0, 1),
        "best_epoch": res.best_epoch,
        "epochs_run": len(res.history),
        "max_length": meta.max_length,
        "val_f1": None if meta.val_macro_f1 is None else round(meta.val_macro_f1, 3),
        "tfidf_val_f1": None
        if meta.tfidf_val_macro_f1 is None
        else round(meta.tfidf_val_macro_f1, 3),
        "below_tfidf": meta.below_tfidf,
    }


#: Head-recipe variants --screen compares on cached embeddings (one name each):
#: filter (the default: fit_head with the mistake filter 0.5), nofilter, refit (the same fit
#: on the training and validation rows), hybrid<a> (embeddings beside a·TF-IDF of the texts
#: in one logistic regression, the filter on), hybrid<a>nf (the same without the filter),
#: wp<a> (the same with TF-IDF of the encoder's own wordpiece 1–2-grams); filter2, boot
#: (robust_fit).
SCREEN_VARIANTS = ("filter", "nofilter", "refit", "hybrid0.5", "hybrid1")


def wordpiece_grams(ids) -> list[str]:
    """A text's token ids as unigram and bigram terms (the wp<a> variants)."""
    ids = [str(i) for i in ids]
    return ids + [f"{a} {b}" for a, b in zip(ids, ids[1:], strict=False)]


def screen_fit(variant: str, emb, texts, y, rows, seed: int):
    """Fit ``variant`` of the head on ``rows`` of (emb, texts, y); a function from (test
    embeddings, test texts) to predicted class ids."""
    import numpy as np
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    from distill_core.student.head import fit_head

    k = int(max(y)) + 1
    ids = np.asarray(rows)
    y_tr = [y[i] for i in rows]
    q = np.eye(k, dtype=np.float32)[np.asarray(y_tr)]
    w = np.ones(len(rows), dtype=np.float32)
    filt = 0.0 if variant.endswith("nf") or variant == "nofilter" else 0.5
    if variant.startswith(("hybrid", "wp")):
        alpha = float(variant.lstrip("hybridwp").removesuffix("nf"))
        if variant.startswith("wp"):  # texts are token ids: wordpiece 1–2-grams
            vec = TfidfVectorizer(analyzer=wordpiece_grams, sublinear_tf=True, min_df=2)
        else:
            vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
        tf = vec.fit_transform([texts[i] for i in rows])

        def feats(e, t, tf_rows=None):
            part = vec.transform(t) if tf_rows is None else tf_rows
            return sparse.hstack([sparse.csr_matrix(e), alpha * part], format="csr")

        fit = fit_head(feats(emb[ids], None, tf), y_tr, q, w, seed, filt)
        return lambda e, t: np.asarray(feats(e, t) @ fit.weight.T + fit.bias).argmax(1)
    if variant in ("boot", "filter2"):
        W, b = robust_fit(variant, emb[ids], y_tr, q, w, seed)
        return lambda e, t: (e @ W.T + b).argmax(1)
    fit = fit_head(emb[ids], y_tr, q, w, seed, filt)
    return lambda e, t: (e @ fit.weight.T + fit.bias).argmax(1)


def robust_fit(variant: str, x, y, q, w, seed: int):
    """Two noise-robust variants of the filtered head: ``filter2`` judges the labels by the
    mean of two 5-fold out-of-fold passes (other folds; a steadier estimate), ``boot`` fits
    the kept rows on bootstrapped soft targets 0.8·label + 0.2·out-of-fold probabilities
    (Reed et al. 2015)."""
    import numpy as np

    from distill_core.student.head import choose_c, fit_linear, likely_mistakes

    c, _, oof = choose_c(x, y, q, w, seed)
    if variant == "filter2":
        oof = (oof + choose_c(x, y, q, w, seed + 1)[2]) / 2
    keep = np.flatnonzero(~likely_mistakes(oof, y, 0.5))
    y_kept = [y[i] for i in keep]
    c, _, _ = choose_c(x[keep], y_kept, q[keep], w[keep], seed)
    target = q[keep] if variant == "filter2" else 0.8 * q[keep] + 0.2 * oof[keep]
    return fit_linear(x[keep], target, w[keep], c)


def screen(task, x, y_human, y_teacher, tx, ty, seed: int, variants, cache: Path, emit) -> None:
    """Quick screening of head-recipe variants on embeddings cached on disk (no model saved or
    loaded): each variant on the teacher's and on the human labels, with train_head's
    validation split (10%, seeded) held out unless the variant refits on it."""

    from distill_core.student.args import TrainingArgs
    from distill_core.student.embed import Embedder
    from distill_core.student.train import load_base, max_length_for, stratified_split

    names = sorted(set(y_teacher) | set(y_human))
    model, tok, resolved = load_base(None, names)
    max_length, _ = max_length_for(TrainingArgs(recipe="head"), model, tok, x, False)
    emb = Embedder(model.base_model, tok, resolved, max_length, cache_dir=cache)
    ex, et = emb.encode(x), emb.encode(tx)
    if any(v.startswith("wp") for v in variants):  # wordpiece ids, as the encoder reads them
        ids_x, ids_t = (
            tok(list(t), truncation=True, max_length=max_length, add_special_tokens=False)[
                "input_ids"
            ]
            for t in (x, tx)
        )
    for labels, tag in ((y_teacher, "teacher"), (y_human, "human")):
        index = {n: i for i, n in enumerate(sorted(set(labels)))}
        inv = sorted(index, key=index.get)
        y = [index[v] for v in labels]
        tr, va = stratified_split(y, 0.1, seed)
        for v in variants:
            t0 = time.perf_counter()
            rows = sorted(tr + va) if v == "refit" else tr
            docs, docs_t = (ids_x, ids_t) if v.startswith("wp") else (x, tx)
            predict = screen_fit(v, ex, docs, y, rows, seed)
            pred = [inv[i] for i in predict(et, docs_t)]
            emit(
                f"{v}_{tag}",
                {"f1": macro_f1(ty, pred), "fit_seconds": round(time.perf_counter() - t0, 1)},
            )


def learning_curve(x, y_teacher, tx, ty, shares, seed, work: Path, task, emit, model: str):
    """The head recipe on growing shares of the teacher-labelled texts, with intervals, and
    what labelling more texts would cost at ``model``'s list price."""
    from distill_core import agreement
    from distill_core.codebook import Codebook
    from distill_core.llm.cost import estimate
    from distill_core.student.args import TrainingArgs

    points = []
    for share in shares:
        n = max(10, int(round(share * len(x))))
        r = run_student(
            x[:n], y_teacher[:n], tx, ty, TrainingArgs(recipe="head", seed=seed), work, f"c{n}"
        )
        from distill_core.student.predict import Predictor

        pred = Predictor(work / f"c{n}").predict(tx).labels
        scored = agreement.compare(ty, pred, seed=seed)
        ci = list(scored.ci.get("macro_f1") or (None, None))
        points.append((n, scored.macro_f1, ci))
        emit(f"curve n={n}", r | {"ci": ci, "share": share})
    names = sorted(set(y_teacher))
    book = Codebook.from_dict(
        {
            "name": task,
            "instructions": "Assign the one label that best fits the text.",
            "labels": [{"name": n, "definition": n} for n in names],
        }
    )
    per_text = estimate(book, x[:200], model)
    each = per_text.cost_usd / max(1, min(200, len(x)))
    print(f"  learning curve, head recipe on teacher labels ({task}):")
    for n, f1, ci in points:
        low, high = ci if ci else (float("nan"), float("nan"))
        print(f"    n={n:>5}  macro-F1 {f1:.3f}  95% CI {low:.3f}–{high:.3f}")
    for more in (500, 1000, 2000):
        print(
            f"    labelling {more:,} more texts with {model}: about ${each * more:.2f} "
            f"({per_text.prompt_tokens / max(1, min(200, len(x))):.0f} prompt tokens a text)"
        )


def selection_spread(x_texts, y_teacher, tx, ty, seed: int, splits: int, task: str, emit) -> None:
    """How much the choice of the head's L2 strength C depends on luck: on one draw of
    teacher-labelled texts, ``splits`` repetitions with other split seeds of (a) C chosen on a
    10% validation split (100 texts of 1,000, as early stopping uses), fitted on the other 90%,
    and (b) C chosen by 5-fold cross-validation on the same 90% (the recipe's rule, folds
    seeded by the split seed), each then scored on the human test split. Prints mean, SD and
    range of test macro-F1 and the Cs chosen."""
    import numpy as np

    from distill_core.student.embed import Embedder
    from distill_core.student.head import C_GRID, choose_c, fit_linear
    from distill_core.student.train import load_base, stratified_split

    names = sorted(set(y_teacher) | set(ty))
    index = {n: i for i, n in enumerate(names)}
    model, tok, resolved = load_base(None, names)
    emb = Embedder(model.base_model, tok, resolved, 128)
    x = emb.encode(x_texts).astype(np.float64)
    xt = emb.encode(tx).astype(np.float64)
    y = np.array([index[v] for v in y_teacher])
    onehot = np.eye(len(names))
    got: dict[str, list[float]] = {"validation split": [], "5-fold CV": []}
    chosen: dict[str, list[float]] = {"validation split": [], "5-fold CV": []}
    for split_seed in range(splits):
        tr, va = stratified_split(y.tolist(), 0.1, split_seed)
        tr, va = np.asarray(tr), np.asarray(va)
        w = np.ones(len(tr))
        best = None
        for c in C_GRID:
            W, b = fit_linear(x[tr], onehot[y[tr]], w, c)
            score = macro_f1(
                [names[i] for i in y[va]], [names[i] for i in (x[va] @ W.T + b).argmax(1)]
            )
            if best is None or score > best[0]:
                best = (score, c, W, b)
        _, c_val, W, b = best
        got["validation split"].append(macro_f1(ty, [names[i] for i in (xt @ W.T + b).argmax(1)]))
        chosen["validation split"].append(c_val)
        c_cv, _, _ = choose_c(x[tr], y[tr].tolist(), onehot[y[tr]], w, split_seed)
        W, b = fit_linear(x[tr], onehot[y[tr]], w, c_cv)
        got["5-fold CV"].append(macro_f1(ty, [names[i] for i in (xt @ W.T + b).argmax(1)]))
        chosen["5-fold CV"].append(c_cv)
    print(f"  choosing C, {splits} split seeds, one draw of {len(y)} teacher labels ({task}):")
    for rule, f1s in got.items():
        sd = statistics.stdev(f1s) if len(f1s) > 1 else 0.0
        print(
            f"    {rule:<17} test macro-F1 mean {statistics.mean(f1s):.3f}, SD {sd:.3f}, range "
            f"{min(f1s):.3f}–{max(f1s):.3f}; C chosen {dict(Counter(chosen[rule]))}"
        )
        emit(
            f"selection {rule}",
            {"f1": statistics.mean(f1s), "sd": round(sd, 4), "min": min(f1s), "max": max(f1s)},
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--recipes", default="head", help="head, full or head,full")
    ap.add_argument("--variants", default="off", help=f"teacher-label variants: {list(VARIANTS)}")
    ap.add_argument("--labels", default="teacher,human", help="teacher, human or both")
    ap.add_argument("--seeds", default="42,43,44")
    ap.add_argument("--test-seed", type=int, default=42)
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--n-teacher", type=int, default=2000)
    ap.add_argument("--teacher-accuracy", type=float, default=0.80)
    ap.add_argument("--confidence-auc", type=float, default=0.75)
    ap.add_argument("--curve", default="", help="shares for the learning curve, e.g. 0.25,0.5,1")
    ap.add_argument("--curve-model", default="gpt-4o-mini")
    ap.add_argument(
        "--selection-spread",
        type=int,
        default=0,
        help="N: on the first seed, how test macro-F1 varies over N split seeds when the "
        "head's C is chosen on a 10%% validation split vs by 5-fold cross-validation",
    )
    ap.add_argument("--set", default="", help="TrainingArgs overrides for every student: k=v,…")
    ap.add_argument(
        "--screen",
        default="",
        help=f"head variants to compare on cached embeddings, e.g. {','.join(SCREEN_VARIANTS)}",
    )
    ap.add_argument("--cache-dir", default="", help="embedding cache folder for --screen")
    ap.add_argument("--jsonl", default="", help="append one JSON line per result here")
    ap.add_argument("--summarize", default="", help="print the tables of a --jsonl file")
    a = ap.parse_args()
    if a.summarize:
        summarize(Path(a.summarize))
        return

    from distill_core.student.args import TrainingArgs
    from distill_core.student.baseline import fit_baseline

    overrides = parse_overrides(a.set)
    seeds = [int(s) for s in a.seeds.split(",")]
    for task in a.tasks.split(","):
        data = read_task(task, a.test_seed)
        if data is None:
            print(f"{task}: file missing, skipped")
            continue
        pool_all, test = data
        test = test[:]
        random.Random(a.test_seed).shuffle(test)
        test = test[: a.n_test]
        tx = [t for t, _ in test]
        ty = [lab for _, lab in test]
        for seed in seeds:
            x, y_human, y_teacher, t_test, conf = draw(pool_all, tx, ty, seed, a)
            print(
                f"\n== {task}, seed {seed}: train {len(x)}, test {len(tx)}, classes "
                f"{len(set(ty))}; teacher accuracy {accuracy(y_human, y_teacher):.1%} on the "
                f"training texts, {accuracy(ty, t_test):.1%} on the test texts; labels "
                f"{dict(Counter(y_teacher).most_common(5))}…",
                flush=True,
            )

            n_train = len(x)

            def emit(name: str, r: dict, task=task, seed=seed, n=n_train) -> None:
                extra = " ".join(f"{k}={v}" for k, v in r.items() if k != "f1")
                print(f"  {name:<28} macro-F1 {r['f1']:.3f}  {extra}", flush=True)
                if a.jsonl:
                    with open(a.jsonl, "a") as fh:
                        row = {"task": task, "seed": seed, "n_train": n, "system": name, **r}
                        fh.write(json.dumps(row) + "\n")

            emit("teacher", {"f1": macro_f1(ty, t_test)})
            t0 = time.perf_counter()
            b = fit_baseline(x, y_teacher, seed)
            emit(
                "tfidf_teacher",
                {
                    "f1": macro_f1(ty, b.predict(tx)[0]),
                    "seconds": round(time.perf_counter() - t0, 2),
                },
            )
            if a.screen:
                cache = Path(a.cache_dir or Path(tempfile.gettempdir()) / "distill-quality-emb")
                screen(task, x, y_human, y_teacher, tx, ty, seed, a.screen.split(","), cache, emit)
                continue
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                for recipe in a.recipes.split(","):
                    base = replace(TrainingArgs(seed=seed, recipe=recipe), **overrides)
                    if "teacher" in a.labels:
                        for v in a.variants.split(","):
                            args = replace(base, **VARIANTS[v])
                            name = f"{recipe}_teacher" + ("" if v == "off" else f"_{v}")
                            r = run_student(x, y_teacher, tx, ty, args, work, name, conf)
                            emit(name, r)
                    if "human" in a.labels:
                        r = run_student(x, y_human, tx, ty, base, work, f"{recipe}_human")
                        emit(f"{recipe}_human", r)
                if a.selection_spread and seed == seeds[0]:
                    selection_spread(x, y_teacher, tx, ty, seed, a.selection_spread, task, emit)
                if a.curve and seed == seeds[0]:
                    shares = [float(s) for s in a.curve.split(",")]
                    learning_curve(
                        x, y_teacher, tx, ty, shares, seed, work, task, emit, a.curve_model
                    )


def parse_overrides(spec: str) -> dict:
    out = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        k, v = (s.strip() for s in item.split("="))
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = None if v == "None" else v
    return out


def summarize(path: Path) -> None:
    """Mean (range) of macro-F1 over seeds and mean wall time per task and system, then the
    targets: each recipe's student on teacher labels against TF-IDF and against the same
    recipe on human labels."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        if not r["system"].startswith("curve"):
            by[(r["task"], r["system"])].append(r)
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    systems = list(dict.fromkeys(s for _, s in by))
    print("| task | system | macro-F1 mean (range) | seeds | wall time (mean) |")
    print("|---|---|---|---|---|")
    mean = {}
    for task in tasks:
        for system in systems:
            got = by.get((task, system))
            if not got:
                continue
            f1 = [r["f1"] for r in got]
            mean[(task, system)] = statistics.mean(f1)
            secs = [r["seconds"] for r in got if r.get("seconds") is not None]
            wall = f"{statistics.mean(secs):.0f} s" if secs else "–"
            print(
                f"| {task} | {system} | {statistics.mean(f1):.3f} ({min(f1):.3f}–{max(f1):.3f}) "
                f"| {len(f1)} | {wall} |"
            )
    print()
    for system in systems:
        if "_teacher" not in system or system.startswith("tfidf"):
            continue
        recipe = system.split("_teacher")[0]
        gaps, wins = [], []
        for task in tasks:
            s = mean.get((task, system))
            h = mean.get((task, f"{recipe}_human"))
            t = mean.get((task, "tfidf_teacher"))
            if s is None:
                continue
            if h is not None:
                gaps.append((task, s - h))
            if t is not None:
                wins.append((task, s - t))
        if gaps:
            avg = statistics.mean(g for _, g in gaps)
            each = ", ".join(f"{t} {g:+.3f}" for t, g in gaps)
            print(f"{system} − {recipe}_human: mean {avg:+.3f} ({each})")
        if wins:
            each = ", ".join(f"{t} {g:+.3f}" for t, g in wins)
            print(f"{system} − tfidf_teacher: {each}")


if __name__ == "__main__":
    main()
