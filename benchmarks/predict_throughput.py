"""Inference throughput on CPU: ``Predictor.predict`` (length-sorted batches, dynamic padding,
inference_mode) vs ``transformers.pipeline("text-classification")`` with default settings, on
the same model (bundled all-MiniLM-L6-v2 with a 4-label head; weights do not change speed) and
the same texts (--n tweets from ../shared/data/tweeteval_emotion.csv). Target: ≥ 1.5×.

Usage: .venv/bin/python benchmarks/predict_throughput.py [--n 2000] [--rounds 2]
Each side runs --rounds times, alternating; the best round counts (the machine is shared).

``--int8`` instead measures dynamic int8 quantisation (``torch.ao.quantization.quantize_dynamic``
on the encoder's Linear layers) against the fp32 ``Predictor``, on students trained on 600
tweets with each recipe (head: the fast recipe; full: 2 epochs): texts/s, the share of
identical labels (the bar for using it in the corpus pass: ≥ 99%) and macro-F1 of both on the
test tweets.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "tweeteval_emotion.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--int8", action="store_true", help="int8 quantisation vs fp32 instead")
    a = ap.parse_args()
    if a.int8:
        return int8_vs_fp32(a.n, a.rounds)
    if not DATA.is_file():
        sys.exit(f"{DATA} is missing")
    with DATA.open(encoding="utf-8", newline="") as fh:
        texts = [r["text"] for r in csv.DictReader(fh)][: a.n]

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
    from transformers.utils import logging as hf_logging

    from distill_core.bundled import bundled_model_path
    from distill_core.student.predict import Predictor

    hf_logging.set_verbosity_error()
    labels = ["anger", "joy", "optimism", "sadness"]
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(
            bundled_model_path(),
            num_labels=4,
            id2label=dict(enumerate(labels)),
            label2id={x: i for i, x in enumerate(labels)},
        )
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(bundled_model_path()).save_pretrained(tmp)
        predictor = Predictor(tmp)
        pipe = pipeline("text-classification", model=tmp, device="cpu")
        print(f"{len(texts)} tweets, torch threads {torch.get_num_threads()}, CPU")
        best = {"Predictor.predict": float("inf"), "pipeline (defaults)": float("inf")}
        ours = theirs = None
        for r in range(a.rounds):
            t0 = time.perf_counter()
            ours = predictor.predict(texts)
            best["Predictor.predict"] = min(best["Predictor.predict"], time.perf_counter() - t0)
            t0 = time.perf_counter()
            theirs = pipe(texts)
            best["pipeline (defaults)"] = min(best["pipeline (defaults)"], time.perf_counter() - t0)
            print(f"  round {r + 1}: " + ", ".join(f"{k} {v:.1f} s" for k, v in best.items()))
        same = sum(o == t["label"] for o, t in zip(ours.labels, theirs, strict=True)) / len(texts)
        for name, secs in best.items():
            print(f"{name:<22} {len(texts) / secs:8.1f} texts/s ({secs:.1f} s)")
        speedup = best["pipeline (defaults)"] / best["Predictor.predict"]
        print(f"speed-up {speedup:.2f}x (target >= 1.5x); same label on {same:.1%} of texts")


def int8_vs_fp32(n: int, rounds: int) -> None:
    import torch
    from sklearn.metrics import f1_score

    from distill_core.student.args import TrainingArgs
    from distill_core.student.predict import Predictor
    from distill_core.student.train import train

    with DATA.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"]]
    train_rows = [r for r in rows if r["split"] == "train"][:600]
    test = [r for r in rows if r["split"] == "test"][:n]
    texts, gold = [r["text"] for r in test], [r["label"] for r in test]
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in ("head", "full"):
            out = Path(tmp) / recipe
            train(
                [r["text"] for r in train_rows],
                [r["label"] for r in train_rows],
                out,
                TrainingArgs(recipe=recipe, epochs=2, seed=1),
            )
            fp32, int8 = Predictor(out), Predictor(out)
            body = int8.model.encoder if recipe == "head" else int8.model.base_model
            body.encoder = torch.ao.quantization.quantize_dynamic(
                body.encoder, {torch.nn.Linear}, dtype=torch.qint8
            )
            best = {"fp32": float("inf"), "int8": float("inf")}
            got = {}
            for _ in range(rounds):
                for name, p in (("fp32", fp32), ("int8", int8)):
                    t0 = time.perf_counter()
                    got[name] = p.predict(texts).labels
                    best[name] = min(best[name], time.perf_counter() - t0)
            same = sum(a == b for a, b in zip(got["fp32"], got["int8"], strict=True)) / len(texts)
            f1 = {k: f1_score(gold, v, average="macro") for k, v in got.items()}
            print(
                f"{recipe}: fp32 {len(texts) / best['fp32']:.0f} texts/s, int8 "
                f"{len(texts) / best['int8']:.0f} texts/s; identical labels {same:.1%}; "
                f"macro-F1 {f1['fp32']:.3f} (fp32) vs {f1['int8']:.3f} (int8)"
            )


if __name__ == "__main__":
    main()
