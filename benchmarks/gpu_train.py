"""Full fine-tuning on a GPU, proven: train() and Predictor on CUDA in the default precision
(bf16 where the GPU supports it, else fp16) and in fp32, several seeds each; macro-F1 on the
human test split, training examples/s and prediction texts/s, against the CPU.

Per seed, the student is trained with ``TrainingArgs(recipe="full")`` defaults on --n-train
human-labelled texts of --task (its file's train/val rows, a seeded draw) and scored on up to
--n-test test texts. The precision is set by ``DISTILL_CUDA_PRECISION`` (student/threads.py:
unset = bf16/fp16, "fp32"), one policy for training and prediction. The check: the mean
macro-F1 of the default precision is within seed noise of fp32's (the larger of the two ranges
over seeds, and at least 0.01). The CPU figures come from a child process with
CUDA_VISIBLE_DEVICES="" that trains one epoch on --cpu-n texts and predicts the test texts:
a full CPU training of the same size is what the GPU saves, so it is not repeated.

Training examples/s: texts trained on × epochs run / seconds of the epochs (validation
included, loading and saving not); prediction texts/s: the test texts over the best of two
passes of ``Predictor.predict``.

Without CUDA it says so and measures the CPU only (with --allow-cpu it also runs the seed
loop on the CPU, a check of the script itself, e.g. --n-train 200 --seeds 1 --allow-cpu).

Usage: .venv/bin/python benchmarks/gpu_train.py [--data DIR] [--task tweeteval_emotion]
       [--n-train 2000] [--n-test 1000] [--seeds 42,43,44] [--cpu-n 256] [--jsonl FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
PRECISION_ENV = "DISTILL_CUDA_PRECISION"


def read(data: Path, task: str, n_train: int, n_test: int, seed: int):
    """(train texts, train labels, test texts, test labels): a seeded draw of the file's
    train/val rows and its first test rows (a seeded 80/20 split when it has none)."""
    path = data / f"{task}.csv"
    if not path.is_file():
        sys.exit(f"{path} is missing (use --data)")
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("label")]
    test = [r for r in rows if r.get("split") == "test"]
    pool = [r for r in rows if r.get("split") in ("train", "val")]
    if not test:
        random.Random(0).shuffle(rows)
        cut = int(len(rows) * 0.8)
        pool, test = rows[:cut], rows[cut:]
    random.Random(seed).shuffle(pool)
    pool, test = pool[:n_train], test[:n_test]
    return (
        [r["text"] for r in pool],
        [r["label"] for r in pool],
        [r["text"] for r in test],
        [r["label"] for r in test],
    )


def one_run(x, y, tx, ty, seed: int, epochs: int | None, work: Path) -> dict:
    """Train, predict (best of two passes) and score one student on this process's device."""
    from sklearn.metrics import f1_score

    from distill_core.student.args import TrainingArgs
    from distill_core.student.predict import Predictor
    from distill_core.student.train import train

    args = TrainingArgs(recipe="full", seed=seed)
    if epochs is not None:
        args = TrainingArgs(recipe="full", seed=seed, epochs=epochs, early_stopping_patience=0)
    out = work / f"s{seed}-{time.monotonic_ns()}"
    t0 = time.perf_counter()
    res = train(x, y, out, args)
    wall = time.perf_counter() - t0
    loop_s = sum(float(h.get("seconds") or 0) for h in res.history)
    predictor = Predictor(out)
    best, labels = float("inf"), None
    for _ in range(2):
        t1 = time.perf_counter()
        labels = predictor.predict(tx).labels
        best = min(best, time.perf_counter() - t1)
    return {
        "seed": seed,
        "device": res.device,
        "precision": res.metadata.precision,
        "macro_f1": round(float(f1_score(ty, labels, average="macro", zero_division=0)), 4),
        "epochs_run": len(res.history),
        "best_epoch": res.best_epoch,
        "n_train": res.n_train,
        "train_examples_per_s": round(res.n_train * len(res.history) / max(loop_s, 1e-9), 1),
        "predict_texts_per_s": round(len(tx) / max(best, 1e-9), 1),
        "wall_s": round(wall, 1),
    }


def cpu_child(a: argparse.Namespace) -> dict:
    """The CPU figures, measured in a child process that sees no GPU."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    cmd = [
        sys.executable,
        __file__,
        "--cpu-only-child",
        "--data",
        str(a.data),
        "--task",
        a.task,
        "--cpu-n",
        str(a.cpu_n),
        "--n-test",
        str(a.n_test),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        print(done.stderr[-2000:], file=sys.stderr)
        sys.exit("the CPU measurement failed")
    return json.loads(lines[-1])


def summary(runs: list[dict]) -> tuple[float, float, float]:
    f1 = [r["macro_f1"] for r in runs]
    return statistics.mean(f1), min(f1), max(f1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--task", default="tweeteval_emotion")
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--seeds", default="42,43,44")
    ap.add_argument("--cpu-n", type=int, default=256, help="texts of the CPU's one-epoch timing")
    ap.add_argument("--allow-cpu", action="store_true", help="run the seed loop without CUDA")
    ap.add_argument("--jsonl", default="")
    ap.add_argument("--cpu-only-child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if a.cpu_only_child:
            x, y, tx, ty = read(a.data, a.task, a.cpu_n, a.n_test, 42)
            print(json.dumps(one_run(x, y, tx, ty, 42, 1, work)))
            return
        on_cuda = torch.cuda.is_available()
        name = torch.cuda.get_device_name(0) if on_cuda else "no CUDA device"
        print(f"torch {torch.__version__}; {name}; {os.cpu_count()} CPU cores", flush=True)
        if on_cuda:
            print(f"bf16 supported: {torch.cuda.is_bf16_supported()}", flush=True)
        results: dict[str, list[dict]] = {}
        if on_cuda or a.allow_cpu:
            for precision in ("auto", "fp32"):
                os.environ[PRECISION_ENV] = precision
                for seed in [int(s) for s in a.seeds.split(",")]:
                    x, y, tx, ty = read(a.data, a.task, a.n_train, a.n_test, seed)
                    r = one_run(x, y, tx, ty, seed, None, work)
                    r["setting"] = precision
                    results.setdefault(precision, []).append(r)
                    print(json.dumps(r), flush=True)
            os.environ.pop(PRECISION_ENV, None)
        cpu = cpu_child(a)
        cpu["setting"] = "cpu, one epoch"
        print(json.dumps(cpu), flush=True)
        if a.jsonl:
            with open(a.jsonl, "a") as fh:
                for r in [*sum(results.values(), []), cpu]:
                    fh.write(json.dumps(r | {"task": a.task}) + "\n")

    print(f"\n{a.task}: {a.n_train} training texts, {a.n_test} test texts")
    print("| setting | precision | macro-F1 mean (range) | train examples/s | predict texts/s |")
    print("|---|---|---|---|---|")
    for setting, runs in results.items():
        m, lo, hi = summary(runs)
        ex = statistics.mean(r["train_examples_per_s"] for r in runs)
        pr = statistics.mean(r["predict_texts_per_s"] for r in runs)
        print(
            f"| {runs[0]['device']} {setting} | {runs[0]['precision']} | {m:.3f} "
            f"({lo:.3f}–{hi:.3f}), {len(runs)} seeds | {ex:,.0f} | {pr:,.0f} |"
        )
    print(
        f"| cpu ({cpu['n_train']} texts, 1 epoch) | fp32 | – | "
        f"{cpu['train_examples_per_s']:,.0f} | {cpu['predict_texts_per_s']:,.0f} |"
    )
    if "auto" in results and "fp32" in results:
        m_half, lo_h, hi_h = summary(results["auto"])
        m_full, lo_f, hi_f = summary(results["fp32"])
        noise = max(hi_h - lo_h, hi_f - lo_f, 0.01)
        ok = abs(m_half - m_full) <= noise
        print(
            f"{results['auto'][0]['precision']} − fp32 macro-F1: {m_half - m_full:+.3f} "
            f"(seed noise {noise:.3f}): {'within' if ok else 'OUTSIDE'} seed noise"
        )
        for setting, runs in results.items():
            ex = statistics.mean(r["train_examples_per_s"] for r in runs)
            pr = statistics.mean(r["predict_texts_per_s"] for r in runs)
            print(
                f"{setting}: training {ex / max(cpu['train_examples_per_s'], 1e-9):.1f}× the "
                f"CPU, prediction {pr / max(cpu['predict_texts_per_s'], 1e-9):.1f}× the CPU"
            )


if __name__ == "__main__":
    main()
