"""Training throughput on CPU: examples/s of ``train()`` vs a plain PyTorch loop (same model,
texts, batches, optimizer and schedule; no validation, no saving) for the default model.
Data: --n tweets from ../shared/data/tweeteval_emotion.csv, max_length 64, batch 16, 1 epoch.
Target: train()'s training loop within 10% of the plain loop (its overhead: progress, cancel
checks, per-epoch validation); its total time also counts loading and saving the model.

With --seeds N it instead measures what seed variability costs: the wall time of one training
against N (the first with ``train()``, the others with ``train_other_seeds``, as the train job
does), on --n tweets for --epochs epochs with the default validation share.

Usage: .venv/bin/python benchmarks/train_throughput.py [--n 512]
       .venv/bin/python benchmarks/train_throughput.py --n 512 --epochs 2 --seeds 3
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "tweeteval_emotion.csv"


def tweets(n: int) -> tuple[list[str], list[str]]:
    """(texts, labels) of the first ``n`` training tweets of DATA; exits when it is missing."""
    if not DATA.is_file():
        sys.exit(f"{DATA} is missing")
    with DATA.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "train"][:n]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def plain_loop(texts: list[str], labels: list[str], args) -> float:
    """Seconds of one epoch of the plainest loop over the batches train() would build."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from distill_core.bundled import bundled_model_path
    from distill_core.student.train import length_grouped_batches, pad_batch

    names = sorted(set(labels))
    torch.manual_seed(args.seed)
    tok = AutoTokenizer.from_pretrained(bundled_model_path())
    model = AutoModelForSequenceClassification.from_pretrained(
        bundled_model_path(), num_labels=len(names)
    )
    enc = tok(texts, truncation=True, max_length=args.max_length)["input_ids"]
    y = torch.tensor([names.index(x) for x in labels])
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    total = math.ceil(len(enc) / args.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / total))
    model.train()
    batches = length_grouped_batches([len(e) for e in enc], args.batch_size, random.Random(0))
    t0 = time.perf_counter()
    for batch in batches:
        ids, mask = pad_batch([enc[i] for i in batch], tok.pad_token_id)
        loss = torch.nn.functional.cross_entropy(
            model(input_ids=ids, attention_mask=mask).logits, y[batch]
        )
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return time.perf_counter() - t0


def seed_cost(texts: list[str], labels: list[str], seeds: int, epochs: int) -> None:
    """Print the wall time of one seed and of ``seeds`` seeds (each seed a full training; the
    job's prediction of the held-out texts per seed is not included: ~0.5 s per 100 texts)."""
    import torch

    from distill_core.student.args import TrainingArgs
    from distill_core.student.train import train, train_other_seeds

    args = TrainingArgs(
        epochs=epochs, max_length=64, early_stopping_patience=0, seed=0, seeds=seeds
    )
    print(
        f"{len(texts)} tweets, max_length 64, batch 16, {epochs} epochs (no early stopping), "
        f"validation share {args.val_share}, {torch.get_num_threads()} threads"
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        kept = train(texts, labels, Path(tmp) / "m", args)
        one = time.perf_counter() - t0
        scores = train_other_seeds(
            texts, labels, args, lambda _folder, r: (r.metadata.args["seed"], r.val_macro_f1)
        )
        total = time.perf_counter() - t0
    print(f"1 seed                  {one:7.1f} s")
    print(f"{seeds} seeds                 {total:7.1f} s ({total / one:.2f}x one seed)")
    print(f"each further seed       {(total - one) / max(1, seeds - 1):7.1f} s")
    scores.insert(0, (args.seed, kept.val_macro_f1))
    print("validation macro-F1:", ", ".join(f"seed {s} {f:.3f}" for s, f in scores))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--seeds", type=int, help="measure 1 vs N seeds instead of throughput")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per seed (with --seeds)")
    a = ap.parse_args()
    texts, labels = tweets(a.n)
    if a.seeds:
        seed_cost(texts, labels, a.seeds, a.epochs)
        return

    import torch

    from distill_core.student.args import TrainingArgs
    from distill_core.student.train import train

    args = TrainingArgs(epochs=1, max_length=64, batch_size=16, val_share=0.0, seed=0)
    print(
        f"{len(texts)} tweets, max_length 64, batch 16, 1 epoch, {torch.get_num_threads()} threads"
    )
    plain_loop(texts[:32], labels[:32], args)  # warm-up: one-time lazy imports of torch.optim
    plain = plain_loop(texts, labels, args)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = train(texts, labels, Path(tmp) / "m", args)
        total = time.perf_counter() - t0
    loop = res.history[0]["seconds"]
    print(f"plain PyTorch loop      {len(texts) / plain:7.1f} examples/s ({plain:.1f} s)")
    print(f"train(), training loop  {len(texts) / loop:7.1f} examples/s ({loop:.1f} s)")
    print(
        f"train(), whole call     {len(texts) / total:7.1f} examples/s ({total:.1f} s, with load/save)"
    )
    print(f"overhead of train()'s loop: {100 * (loop / plain - 1):+.1f}% (target <= 10%)")


if __name__ == "__main__":
    main()
