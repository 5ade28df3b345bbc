"""Training on a busy CPU: seconds per training step of ``train()`` on a quiet machine and with
one core taken by a busy-loop process, under the old thread policy (threads = cores) and the
new one (the free cores, ``distill_core/student/threads.py``).

Each run is ``train()`` itself (the bundled MiniLM, --n tweets from
../shared/data/tweeteval_emotion.csv, max_length 64, batch 16), stopped after --warmup +
--steps steps; the first --warmup are not timed. The old policy is forced with
DISTILL_TORCH_THREADS=<cores>. Target: with one of two cores taken, the new policy's slowdown
is at most proportional (about 2×), not the old policy's stall.

The load average and the other processes' CPU use the probe measured are printed beside
every figure: on a shared machine "quiet" is what the others leave.

Usage: .venv/bin/python benchmarks/busy_cpu.py [--n 256] [--steps 10] [--repeats 1]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import tweets  # noqa: E402  (the same tweets, read the same way)

#: The other process: busy ``duty`` of every 100 ms (1.0: all the time).
BUSY = """
import time
while True:
    end = time.perf_counter() + 0.1 * {duty}
    while time.perf_counter() < end:
        pass
    if {duty} < 1:
        time.sleep(0.1 * (1 - {duty}))
"""


class _Steps:
    """``should_stop`` for train(): stamps each step, reads the thread count train() set,
    stops after ``warmup + steps`` steps."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps = warmup, steps
        self.times: list[float] = []
        self.threads = 0

    def __call__(self) -> bool:
        import torch

        self.times.append(time.perf_counter())
        self.threads = torch.get_num_threads()
        return len(self.times) - 2 >= self.warmup + self.steps  # call 0 is before loading

    def s_per_step(self) -> float:
        timed = self.times[1 + self.warmup :]
        return (timed[-1] - timed[0]) / (len(timed) - 1)


def one_run(texts, labels, policy: str, warmup: int, steps: int) -> tuple[float, int, float]:
    """(s/step, threads used, others' CPU use measured by the probe) of one stopped train()."""
    from distill_core.student import threads
    from distill_core.student.args import TrainingArgs, TrainingCancelled
    from distill_core.student.train import train

    if policy == "old":
        os.environ[threads.ENV] = str(threads.usable_cores())
    else:
        os.environ.pop(threads.ENV, None)
    threads._last = None
    others = threads.CpuProbe().others()
    stop = _Steps(warmup, steps)
    args = TrainingArgs(epochs=1, max_length=64, batch_size=16, val_share=0.0, seed=0)
    with tempfile.TemporaryDirectory() as tmp, contextlib.suppress(TrainingCancelled):
        train(texts, labels, Path(tmp) / "m", args, should_stop=stop)
    os.environ.pop(threads.ENV, None)
    return stop.s_per_step(), stop.threads, others


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument(
        "--duty",
        type=float,
        action="append",
        default=[],
        help="also run with a process busy this share of the time (busy d x 100 ms, then idle "
        "the rest of each 100 ms), e.g. --duty 0.3; may be repeated",
    )
    a = ap.parse_args()
    texts, labels = tweets(a.n)
    from distill_core.student.threads import usable_cores

    cores = usable_cores()
    print(f"{len(texts)} tweets, max_length 64, batch 16, {cores} usable cores")
    print(f"{a.warmup} warm-up + {a.steps} timed steps of train() per run\n")
    results: dict[tuple[str, str], list[float]] = {}
    machines = {"quiet": None, "one core busy": 1.0}
    machines |= {f"one core {d:.0%} busy": d for d in a.duty}
    for _ in range(a.repeats):
        for machine, duty in machines.items():
            busy = None
            if duty is not None:
                busy = subprocess.Popen([sys.executable, "-c", BUSY.format(duty=duty)])
                time.sleep(1.0)
            try:
                for policy in ("old", "new"):
                    sps, used, others = one_run(texts, labels, policy, a.warmup, a.steps)
                    results.setdefault((machine, policy), []).append(sps)
                    load = os.getloadavg()[0]
                    print(
                        f"{machine:14s} {policy} policy: {sps:6.3f} s/step with {used} threads "
                        f"(others used {others:.2f} cores; load average {load:.2f})",
                        flush=True,
                    )
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    print()
    for policy in ("old", "new"):
        quiet = min(results[("quiet", policy)])
        for machine in list(machines)[1:]:
            loaded = min(results[(machine, policy)])
            print(
                f"{policy} policy: quiet {quiet:.3f} s/step, {machine} {loaded:.3f} s/step: "
                f"{loaded / quiet:.1f}x slower (best of {a.repeats})"
            )


if __name__ == "__main__":
    main()
