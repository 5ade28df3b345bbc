"""Corpus-scale jobs at 100,000 texts: an LLM label job and the student's corpus pass, each with
its worker SIGKILLed about a third of the way, through the real job path.

In a fresh DISTILL_HOME (SQLite) it builds a --n text project (``benchmarks/export.py``'s
``build``: a corpus and a codebook; its synthetic run and pass are not used here), starts the
loopback OpenAI-compatible server (``tests/llm_server.py``) in its own process, answering after
--latency seconds and requiring a key, and the supervised local worker as the app does
(``queue.Supervisor`` watching at the app's default period, ``kinds.make_queues``,
``queue.submit`` with a typed key kept encrypted under DISTILL_SECRET_KEY). Then:

1. ``start_label_job`` over every text (concurrency --concurrency), the worker SIGKILLed once
   --kill-at of the texts are answered; the supervisor starts a new worker, which queues the
   job again (``records.resume_interrupted``);
2. a student trained with the fast head recipe (``python -m distill_core train --recipe head``
   on the bundled all-MiniLM-L6-v2) on --train texts with the job's LLM labels, recorded as a
   ready model of the project, then ``start_predict_job`` (the corpus pass) over every text,
   killed the same way.

The job record is read every --every seconds (done, total, status, message) with the worker's
RSS (/proc/<pid>/status). Printed per job: texts/s before the kill and after the restart, the
seconds from the kill until the new worker runs the job and until it passes the count it had
reached, requests asked again (label), answers or predictions stored and how many distinct,
whether ``done`` ever goes back and the longest stall, whether every message's figures agree
with the record (counts, total, rate), the worker's peak RSS, and the final message verbatim.

Usage: nice -n 10 .venv/bin/python benchmarks/corpus_jobs.py [--n 100000] [--latency 0.05]
       [--concurrency 32] [--kill-at 0.33] [--train 1000] [--only label|predict]
       [--trace FILE.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402

from benchmarks.export import build  # noqa: E402
from benchmarks.label_throughput import server_stats, start_server  # noqa: E402
from distill_core.codebook import Codebook  # noqa: E402
from distill_core.config import Settings  # noqa: E402
from distill_core.jobs import kinds, queue, records  # noqa: E402
from distill_core.jobs.label import LabelRequest, start_label_job  # noqa: E402
from distill_core.jobs.predict import start_predict_job  # noqa: E402
from distill_core.llm import Endpoint  # noqa: E402
from distill_core.store import (  # noqa: E402
    Document,
    LabelRun,
    LabelRunItem,
    LLMResponse,
    Prediction,
    Store,
    StudentModel,
)
from distill_core.study import projects, students  # noqa: E402
from tests.unit.jobs.test_queue import job_of  # noqa: E402

KEY = "benchmark-key-not-a-secret"
#: The stand-in LLM's rule: a keyword of the benchmark's texts names a label (else a hash).
KEYWORDS = {
    "budget": "economy",
    "tax": "economy",
    "clinic": "health",
    "nurse": "health",
    "school": "education",
    "teacher": "education",
    "river": "environment",
    "forest": "environment",
    "police": "crime",
    "court": "crime",
}
#: Numbers in a message: "33,000 of 100,000 texts labelled (215 texts/s)".
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


@dataclass
class Sample:
    t: float  # seconds since the job was submitted
    done: int
    total: int
    status: str
    message: str
    pid: int | None
    rss_mb: float | None


@dataclass
class Trace:
    kind: str
    n: int
    samples: list[Sample] = field(default_factory=list)
    kill_t: float | None = None
    kill_done: int | None = None
    kill_pid: int | None = None


def worker_pid(supervisor: queue.Supervisor) -> int | None:
    try:
        return int(supervisor.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def follow(
    store: Store,
    job_id: int,
    supervisor: queue.Supervisor,
    kind: str,
    n: int,
    kill_at: float,
    every: float,
    started: float,
) -> Trace:
    """Read the job's record until it ends; SIGKILL the worker once ``kill_at`` of ``n`` is
    done (once)."""
    trace = Trace(kind, n)
    while True:
        job = job_of(store, job_id)
        pid = worker_pid(supervisor)
        s = Sample(
            round(time.monotonic() - started, 2),
            job.done,
            job.total,
            job.status,
            job.message or "",
            pid,
            rss_mb(pid),
        )
        trace.samples.append(s)
        if (
            trace.kill_t is None
            and kill_at > 0
            and s.status == "running"
            and s.done >= kill_at * n
            and pid is not None
        ):
            os.kill(pid, signal.SIGKILL)
            trace.kill_t, trace.kill_done, trace.kill_pid = s.t, s.done, pid
            print(f"  killed worker {pid} at {s.t:.1f} s, {s.done:,} of {s.total:,} done")
        if s.status not in records.ACTIVE:
            return trace
        time.sleep(every)


def analyse(trace: Trace) -> dict:
    """Rates, restart times, monotonicity, stalls and memory from a trace."""
    ss = trace.samples
    running = [s for s in ss if s.status == "running"]
    first = running[0] if running else ss[0]
    end = ss[-1]
    out: dict = {"status": end.status, "message": end.message, "done": end.done}
    out["total"] = end.total
    backwards = [(a.t, a.done, b.done) for a, b in zip(ss, ss[1:], strict=False) if b.done < a.done]
    out["backwards"] = backwards
    if trace.kill_t is not None:
        before = [s for s in running if s.t <= trace.kill_t]
        out["rate_before"] = (trace.kill_done - before[0].done) / max(
            1e-9, trace.kill_t - before[0].t
        )
        after = [s for s in ss if s.t > trace.kill_t]
        new_worker = next((s for s in after if s.pid != trace.kill_pid and s.rss_mb), None)
        again = next((s for s in after if s.status == "running" and s.pid != trace.kill_pid), None)
        past = next((s for s in after if s.done > trace.kill_done), None)
        out["worker_back_s"] = new_worker and round(new_worker.t - trace.kill_t, 1)
        out["running_again_s"] = again and round(again.t - trace.kill_t, 1)
        out["past_kill_s"] = past and round(past.t - trace.kill_t, 1)
        out["done_on_resume"] = again and again.done
        if again is not None:
            resumed = [s for s in after if s.t >= again.t and s.status == "running"]
            last = next((s for s in resumed if s.done >= end.total), resumed[-1])
            out["rate_after"] = (last.done - again.done) / max(1e-9, last.t - again.t)
    busy = [s for s in running if s.done < s.total]
    whole = next((s for s in running if s.done >= s.total), running[-1] if running else end)
    out["rate_overall"] = (whole.done - first.done) / max(1e-9, whole.t - first.t)
    out["submit_to_end_s"] = end.t
    # the longest time ``done`` stood still while the job ran (the kill's gap aside)
    stall, at = 0.0, None
    runs, start = [], None
    for s in busy:
        if start is None or s.done != start.done:
            if start is not None:
                runs.append((start, s))
            start = s
    for a, b in runs:
        if trace.kill_t is not None and a.t <= trace.kill_t <= b.t:
            continue
        if b.t - a.t > stall:
            stall, at = b.t - a.t, a
    out["longest_stall_s"] = round(stall, 1)
    out["longest_stall_at"] = at and (at.t, at.done, at.message)
    tail = next((s for s in running if s.done >= s.total), None)
    out["after_last_count_s"] = tail and round(end.t - tail.t, 1)
    rss = [s.rss_mb for s in ss if s.rss_mb]
    out["rss_peak_mb"] = round(max(rss), 0) if rss else None
    out["rss_by_tenth"] = rss_by_tenth(ss)
    out["messages"] = distinct_messages(ss)
    out["message_faults"] = message_faults(trace)
    return out


def rss_by_tenth(ss: list[Sample]) -> list[tuple[int, float]]:
    """The worker's RSS when the job first reached each tenth of its total."""
    out, seen = [], set()
    for s in ss:
        if s.total and s.rss_mb:
            tenth = min(10, int(10 * s.done / s.total))
            if tenth not in seen:
                seen.add(tenth)
                out.append((tenth * 10, round(s.rss_mb)))
    return out


def distinct_messages(ss: list[Sample]) -> list[tuple[float, str]]:
    """Each message where it changed shape (its numbers aside), with the time it was first
    seen."""
    out, shapes = [], set()
    for s in ss:
        shape = NUMBER.sub("#", s.message)
        if shape not in shapes:
            shapes.add(shape)
            out.append((s.t, s.message))
    return out


def message_faults(trace: Trace) -> list[str]:
    """Messages whose figures disagree with the record: an 'X of Y' that is not the record's
    done and total, 'in 0 s', or a rate (texts/s) outside half to twice the rate the record
    shows for this worker since its first stored count."""
    faults = []
    ss = trace.samples
    for s in ss:
        m = s.message
        if " in 0 s" in m:
            faults.append(f"{s.t} s: says 'in 0 s': {m}")
        hit = re.search(r"([\d,]+) of ([\d,]+) ", m)
        if hit and s.status == "running":
            said_done, said_total = (int(x.replace(",", "")) for x in hit.groups())
            if said_total != s.total or said_done != s.done:
                faults.append(
                    f"{s.t} s: record {s.done:,}/{s.total:,}, message says "
                    f"{said_done:,}/{said_total:,}: {m}"
                )
        rate = re.search(r"\(([\d,]+) texts/s\)", m)
        if rate and s.status == "running":
            said = int(rate.group(1).replace(",", ""))
            first = next(x for x in ss if x.pid == s.pid and "texts/s" in x.message)
            if s.t - first.t >= 10 and s.done > first.done:
                seen = (s.done - first.done) / (s.t - first.t)
                if not 0.5 <= said / seen <= 2.0:
                    faults.append(f"{s.t} s: says {said:,} texts/s, measured {seen:,.0f}: {m}")
    return dedupe(faults)


def dedupe(faults: list[str], keep: int = 6) -> list[str]:
    if len(faults) <= keep:
        return faults
    return [*faults[:keep], f"… and {len(faults) - keep} more"]


def report(name: str, r: dict, extra: dict) -> None:
    print(f"\n## {name}")
    rows = [
        ("texts/s before the kill", fmt(r.get("rate_before"))),
        ("texts/s after the restart", fmt(r.get("rate_after"))),
        ("texts/s overall (first running → last count)", fmt(r.get("rate_overall"))),
        ("submit → job ended", f"{r['submit_to_end_s']:.1f} s"),
        ("kill → new worker alive", secs(r.get("worker_back_s"))),
        ("kill → job running again", secs(r.get("running_again_s"))),
        ("kill → past the count at the kill", secs(r.get("past_kill_s"))),
        ("done when it ran again", r.get("done_on_resume")),
        ("done went back", r["backwards"] or "never"),
        ("longest stall (kill aside)", f"{r['longest_stall_s']} s at {r['longest_stall_at']}"),
        ("last count → job ended", secs(r.get("after_last_count_s"))),
        ("worker peak RSS", f"{r['rss_peak_mb']} MB"),
        ("worker RSS by % done", r["rss_by_tenth"]),
        *extra.items(),
        ("message faults", r["message_faults"] or "none"),
        ("final status", r["status"]),
        ("final message", r["message"]),
    ]
    for k, v in rows:
        print(f"  {k:<46} {v}")
    print("  messages seen (each shape once):")
    for t, m in r["messages"]:
        print(f"    {t:7.1f} s  {m}")


def fmt(x) -> str:
    return "—" if x is None else f"{x:,.0f}"


def secs(x) -> str:
    return "—" if x is None else f"{x} s"


def label_leg(store, settings, supervisor, huey, pid, url, a) -> tuple[int, dict]:
    with store.session() as s:
        user = projects.ensure_user(s)
        corpus = projects.get_corpus(s, user, pid)
        version = projects.latest_codebook(s, user, pid)
        job_id, run_id = start_label_job(
            s,
            user,
            pid,
            corpus_id=corpus.id,
            codebook_version_id=version.id,
            codebook=Codebook.from_dict(version.content),
            doc_ids=None,
            request=LabelRequest(
                provider="openai",
                endpoint=Endpoint(base_url=url, model="loopback"),
                concurrency=a.concurrency,
            ),
        )
    started = time.monotonic()
    queue.submit(store, job_id, settings=settings, api_key=KEY, huey=huey, supervisor=supervisor)
    trace = follow(store, job_id, supervisor, "label", a.n, a.kill_at, a.every, started)
    r = analyse(trace)
    stats = server_stats(url)
    with store.session() as s:
        run_key = s.get(LabelRun, run_id).run_key
        answers, distinct = s.execute(
            select(func.count(), func.count(func.distinct(LLMResponse.text_hash))).where(
                LLMResponse.run_key == run_key
            )
        ).one()
        items = s.scalar(select(func.count()).where(LabelRunItem.run_id == run_id))
        job = job_of(store, job_id)
    extra = {
        "stand-in server": f"latency {a.latency} s, concurrency {a.concurrency}",
        "requests answered by the server": f"{stats['requests']:,}",
        "distinct texts asked": f"{stats['distinct_texts']:,}",
        "asked again": f"{stats['requests'] - stats['distinct_texts']:,}",
        "server's most in flight": stats["max_in_flight"],
        "answers stored (distinct texts)": f"{answers:,} ({distinct:,})",
        "run results stored": f"{items:,}",
        "resumes": (job.params or {}).get("resumes"),
    }
    report(f"label job {job_id}: {a.n:,} texts", r, extra)
    return run_id, {"trace": [asdict(x) for x in trace.samples], "result": r, **extra}


def train_student(store, settings, pid, run_id, a) -> int:
    """A head-recipe student on ``a.train`` texts with the run's labels, recorded as ready."""
    with store.session() as s:
        corpus_id = projects.get_corpus(s, projects.ensure_user(s), pid).id
        rows = s.execute(
            select(Document.text, LabelRunItem.label)
            .join(LabelRunItem, LabelRunItem.doc_id == Document.doc_id)
            .where(LabelRunItem.run_id == run_id, LabelRunItem.label.is_not(None))
            .where(Document.corpus_id == corpus_id)
            .limit(a.train)
        ).all()
        model = StudentModel(
            project_id=pid,
            corpus_id=corpus_id,
            label_run_id=run_id,
            status="training",
            base_model=students.DEFAULT_BASE,
        )
        s.add(model)
        s.flush()
        model_id = model.id
    relative = f"{pid}/{model_id}"
    out = settings.models_dir / relative
    data = settings.home / "train.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "distill_core", "train", str(data), "--label-column", "label"]
        + ["--output", str(out), "--recipe", "head", "--seed", "1"],
        check=True,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    print(f"trained a head student on {len(rows):,} texts in {time.perf_counter() - t0:.0f} s")
    meta = json.loads((out / "distill.json").read_text(encoding="utf-8"))
    with store.session() as s:
        model = s.get(StudentModel, model_id)
        model.status, model.path, model.meta = "ready", relative, meta
    return model_id


def predict_leg(store, settings, supervisor, huey, pid, model_id, a) -> dict:
    with store.session() as s:
        user = projects.ensure_user(s)
        job_id, prun = start_predict_job(s, user, pid, model_id=model_id)
    started = time.monotonic()
    queue.submit(store, job_id, settings=settings, huey=huey, supervisor=supervisor)
    trace = follow(store, job_id, supervisor, "predict", a.n, a.kill_at, a.every, started)
    r = analyse(trace)
    with store.session() as s:
        stored, distinct = s.execute(
            select(func.count(), func.count(func.distinct(Prediction.doc_id))).where(
                Prediction.run_id == prun
            )
        ).one()
        job = job_of(store, job_id)
    extra = {
        "predictions stored (distinct texts)": f"{stored:,} ({distinct:,})",
        "resumes": (job.params or {}).get("resumes"),
    }
    report(f"corpus pass job {job_id}: {a.n:,} texts", r, extra)
    return {"trace": [asdict(x) for x in trace.samples], "result": r, **extra}


def analyse_file(path: Path) -> None:
    """The figures of a trace written by --trace (the kill found as ``follow`` made it)."""
    results = json.loads(path.read_text(encoding="utf-8"))
    n, kill_at = results["n"], results.get("kill_at", 0.33)
    for kind in ("label", "predict"):
        if kind not in results:
            continue
        leg = results[kind]
        trace = Trace(kind, n, [Sample(**x) for x in leg["trace"]])
        kill = next(
            (
                x
                for x in trace.samples
                if x.status == "running" and x.done >= kill_at * n and x.pid is not None
            ),
            None,
        )
        if kill_at > 0 and kill is not None:
            trace.kill_t, trace.kill_done, trace.kill_pid = kill.t, kill.done, kill.pid
        extra = {k: v for k, v in leg.items() if k not in ("trace", "result")}
        report(f"{kind} job: {n:,} texts ({path.name})", analyse(trace), extra)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--kill-at", type=float, default=0.33, help="0: no kill")
    ap.add_argument("--train", type=int, default=1000, help="texts the student learns from")
    ap.add_argument("--every", type=float, default=0.5, help="seconds between reads")
    ap.add_argument("--only", choices=["label", "predict"])
    ap.add_argument("--trace", help="write every sample and result to this JSON file")
    ap.add_argument("--keep", action="store_true", help="keep the DISTILL_HOME folder")
    ap.add_argument("--analyse", metavar="TRACE", help="print the figures of a --trace file")
    a = ap.parse_args()
    if a.analyse:
        return analyse_file(Path(a.analyse))

    home = Path(tempfile.mkdtemp(prefix="distill-corpus-jobs-"))
    os.environ["DISTILL_HOME"] = str(home)
    os.environ["DISTILL_DATABASE_URL"] = f"sqlite:///{home / 'distill.db'}"
    os.environ.setdefault("DISTILL_SECRET_KEY", f"benchmark-{uuid.uuid4().hex}")
    settings = Settings.from_env()
    store = Store(settings.database_url)
    store.migrate()
    t0 = time.perf_counter()
    pid = build(store, a.n, name="Corpus jobs benchmark")
    print(f"built a project of {a.n:,} texts in {time.perf_counter() - t0:.0f} s ({home})")
    server, url = start_server(a.latency)
    request = urllib.request.Request(
        url.removesuffix("/v1") + "/config",
        data=json.dumps({"api_key": KEY, "keywords": KEYWORDS}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()
    supervisor = queue.Supervisor(settings)
    supervisor.watch()  # as the app does (ui/jobs.py): every 5 s
    huey = kinds.make_queues(settings)
    results: dict = {"n": a.n, "kill_at": a.kill_at}
    try:
        if a.only != "predict":
            run_id, results["label"] = label_leg(store, settings, supervisor, huey, pid, url, a)
        else:
            with store.session() as s:
                run_id = s.scalar(select(LabelRun.id).where(LabelRun.project_id == pid))
        if a.only != "label":
            model_id = train_student(store, settings, pid, run_id, a)
            results["predict"] = predict_leg(store, settings, supervisor, huey, pid, model_id, a)
    finally:
        supervisor.stop()
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
        if a.trace:
            Path(a.trace).write_text(json.dumps(results, default=str), encoding="utf-8")
        if not a.keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
