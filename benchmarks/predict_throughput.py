"""Inference throughput on CPU: ``Predictor.predict`` (length-sorted batches, dynamic padding,
inference_mode) vs ``transformers.pipeline("text-classification")`` with default settings, on
the same model (bundled all-MiniLM-L6-v2 with a 4-label head; weights do not change speed) and
the same texts (--n tweets from ../shared/data/tweeteval_emotion.csv). Target: ≥ 1.5×.

Usage: .venv/bin/python benchmarks/predict_throughput.py [--n 2000] [--rounds 2]
Each side runs --rounds times, alternating; the best round counts (the machine is shared).
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
    a = ap.parse_args()
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


if __name__ == "__main__":
    main()
