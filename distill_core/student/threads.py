"""How many threads torch may use on the CPU: the cores that are free, not the core count.

With as many intra-op threads as cores, one core taken by another process makes every parallel
operation wait for the thread that is not scheduled: on a 2-core machine with one core busy,
training went from 0.32 to about 3 s a step (issue 14). A lab's shared server is always busy,
so training and prediction start by measuring how much of this process's cores other processes
use and run on the rest (``benchmarks/busy_cpu.py`` measures both policies).

The busy share is measured, not read from the 1-minute load average: the load average counts
this process's own threads (right after one training it is about 2 on a quiet 2-core machine,
which would halve the next training's threads) and lags a minute behind. On Linux it is the
busy time of this process's CPUs (``/proc/stat``) minus this process's own CPU time, over a
window of at least :data:`WINDOW_S`; elsewhere the 1-minute load minus this process's CPU use.

``DISTILL_TORCH_THREADS`` (a whole number) fixes the count instead.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The setting that fixes the thread count (empty or "auto": measured).
ENV = "DISTILL_TORCH_THREADS"
#: Most threads chosen automatically (more rarely pays for a small model).
MAX_THREADS = 16
#: Shortest window over which other processes' CPU use is measured (seconds).
WINDOW_S = 0.25
#: Other processes' use (cores) ignored when counting the free cores: see :func:`threads_for`.
SLACK = 0.2
#: How long a measured choice is reused by later predictions in this process (seconds).
REUSE_S = 30.0


@dataclass(frozen=True)
class ThreadChoice:
    """The intra-op thread count chosen for torch and why: ``others`` is how many of the
    ``cores`` other processes kept busy (None when the setting decided)."""

    threads: int
    cores: int
    others: float | None = None
    setting: bool = False

    def sentence(self) -> str:
        """What the model card and the metadata say, e.g. '1 thread: 2 cores, 1.0 of them
        busy with other processes'."""
        n = f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        if self.setting:
            return f"{n}: set by {ENV}"
        if self.others is None:
            return f"{n}: {self.cores} cores"
        return f"{n}: {self.cores} cores, {self.others:.1f} of them busy with other processes"


def threads_for(cores: int, others: float) -> int:
    """The thread count for ``cores`` usable cores of which other processes keep ``others``
    busy: the free cores, rounded down unless they fall short of a whole core by at most
    :data:`SLACK`, at least 1 and at most ``min(cores, MAX_THREADS)``. A pure function (2 cores:
    others up to 0.2 → 2 threads, more → 1).

    Rounded down because a thread too many costs far more than one too few: whenever another
    process takes a core our threads need, each parallel operation waits for the preempted
    thread (about 10× slower with a busy loop on one of two cores), so a core busy a share p of
    the time costs about (1 − p) + 10p, while one thread fewer costs 1.7× on 2 cores: the break
    even is near p = 0.1. SLACK ignores what idle machines always have (daemons, a terminal)."""
    cores = max(1, int(cores))
    free = cores - max(0.0, float(others))
    return max(1, min(cores, MAX_THREADS, math.floor(free + SLACK)))


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, quota) if quota else cores)


def _cgroup_quota() -> int | None:
    """Cores allowed by a cgroup v2 ``cpu.max`` quota (containers), None when unlimited."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="ascii").split()
    except OSError:
        return None
    if len(text) != 2 or text[0] == "max":
        return None
    try:
        return max(1, math.ceil(int(text[0]) / int(text[1])))
    except (ValueError, ZeroDivisionError):
        return None


def setting(env: dict[str, str] | None = None) -> int | None:
    """The thread count ``DISTILL_TORCH_THREADS`` fixes, None for automatic; a value that is
    not a whole number of at least 1 is refused in one sentence."""
    raw = (os.environ if env is None else env).get(ENV, "").strip().lower()
    if raw in ("", "auto"):
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{ENV} is '{raw}'; use a whole number of threads (1 or more) or auto.")
    return value


@dataclass(frozen=True)
class _Snapshot:
    wall: float
    busy: float | None  # busy seconds of this process's CPUs (None: no /proc/stat)
    own: float  # this process's CPU seconds, all threads


def _busy_seconds(cpus: set[int] | None) -> float | None:
    """Busy seconds (everything but idle and iowait; steal included) of the CPUs in ``cpus``
    (all when None) from ``/proc/stat``; None where there is no such file."""
    try:
        lines = Path("/proc/stat").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = 0
    found = False
    for line in lines:
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        ticks = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
        busy += sum(ticks) - ticks[3] - ticks[4]
        found = True
    return busy / tick if found else None


def _cpus() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _snapshot() -> _Snapshot:
    t = os.times()
    return _Snapshot(time.monotonic(), _busy_seconds(_cpus()), t.user + t.system)


class CpuProbe:
    """Measures other processes' CPU use from its creation to :meth:`choose`: create it before
    loading a model, choose after, and the loading is the window (topped up to WINDOW_S)."""

    def __init__(self) -> None:
        self.start = _snapshot()

    def others(self) -> float:
        """Cores kept busy by other processes since the probe was made (0 to the core count)."""
        wait = WINDOW_S - (time.monotonic() - self.start.wall)
        if wait > 0:
            time.sleep(wait)
        end = _snapshot()
        wall = max(1e-6, end.wall - self.start.wall)
        own = (end.own - self.start.own) / wall
        if end.busy is not None and self.start.busy is not None:
            others = (end.busy - self.start.busy) / wall - own
        else:  # no /proc/stat (macOS): the 1-minute load without this process's share
            try:
                others = os.getloadavg()[0] - own
            except (AttributeError, OSError):
                others = 0.0
        return min(float(usable_cores()), max(0.0, others))

    def choose(self) -> ThreadChoice:
        """The thread choice: the setting when given, else :func:`threads_for` on the
        measured use (remembered for :func:`choose_threads` for REUSE_S seconds)."""
        global _last
        fixed = setting()
        cores = usable_cores()
        if fixed is not None:
            return ThreadChoice(fixed, cores, setting=True)
        others = self.others()
        choice = ThreadChoice(threads_for(cores, others), cores, round(others, 2))
        _last = (time.monotonic(), choice)
        return choice


_last: tuple[float, ThreadChoice] | None = None


def choose_threads() -> ThreadChoice:
    """The thread choice now: a measurement of the last REUSE_S seconds when there is one (a
    prediction right after a training, the batches of a corpus pass), else a new one."""
    if setting() is None and _last is not None and time.monotonic() - _last[0] < REUSE_S:
        return _last[1]
    return CpuProbe().choose()


@contextmanager
def torch_threads(choice: ThreadChoice | None = None) -> Iterator[ThreadChoice]:
    """Run a block with torch's intra-op threads set to ``choice`` (default
    :func:`choose_threads`), and put the previous count back after it."""
    import torch

    choice = choice or choose_threads()
    previous = torch.get_num_threads()
    torch.set_num_threads(choice.threads)
    try:
        yield choice
    finally:
        torch.set_num_threads(previous)


@contextmanager
def device_threads(device: str) -> Iterator[ThreadChoice | None]:
    """:func:`torch_threads` on the CPU; nothing to set on a GPU (yields None)."""
    if device == "cuda":
        yield None
        return
    with torch_threads() as choice:
        yield choice


#: The setting that makes CUDA training and prediction run in fp32 ("fp32"); unset or "auto":
#: bf16 where the GPU supports it, else fp16 (with a gradient scaler when training).
PRECISION_ENV = "DISTILL_CUDA_PRECISION"


def cuda_half(env: dict[str, str] | None = None) -> tuple[Any, str]:
    """(torch dtype to autocast to or None, precision name) on a CUDA device, by
    :data:`PRECISION_ENV`: bf16 where supported, else fp16; (None, "fp32") when set to fp32.
    One policy for training and prediction (``benchmarks/gpu_train.py`` compares both)."""
    import torch

    value = ((os.environ if env is None else env).get(PRECISION_ENV) or "auto").strip().lower()
    if value == "fp32":
        return None, "fp32"
    if value not in ("auto", ""):
        raise ValueError(f"{PRECISION_ENV} is '{value}'; use auto or fp32.")
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, "bf16"
    return torch.float16, "fp16"
