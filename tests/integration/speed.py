"""Seconds per text against the real llama.cpp server (the README's "Use a local model" figures).

    .venv/bin/python -m tests.integration.speed [--texts 20] [--accuracy]

Starts ``llama_cpp.server`` with SmolLM2-135M-Instruct as the tests do (chatml, n_ctx 2048; 2
threads and 1) and labels the demo project's first N texts with the demo codebook through
``OpenAITeacher`` one at a time (the server computes one answer at a time anyway), structured
output as negotiated (json_object schema): with logprobs, without, and without on a server
started with ``--logits_all False`` (which cannot give logprobs). The first answer of each
(model warm-up, negotiation) is not counted. Each setting runs ``--rounds`` times, interleaved;
prints per setting the best and the median seconds per text, and the server's CPU seconds per
text (which other work on the machine changes less), and the load.
``--accuracy`` also labels the demo's texts on which both experts agree, with SmolLM2 (logprobs
off) and with the offline MiniLM labeller, and prints the share each got right.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from distill_core.codebook import Codebook
from distill_core.llm import Endpoint
from distill_core.llm.openai_teacher import OpenAITeacher
from distill_core.study import demo
from tests.integration.llama_server import MODEL_ALIAS, THREADS_ENV, LlamaServer, unavailable


async def _label(server: LlamaServer, texts: list[str], logprobs: bool) -> tuple[float, float, int]:
    codebook = Codebook.from_json((demo.DEMO_DIR / "codebook.json").read_text(encoding="utf-8"))
    endpoint = Endpoint(base_url=server.base_url, model=MODEL_ALIAS, timeout_s=300)
    teacher = OpenAITeacher(endpoint, concurrency=1, logprobs=logprobs)
    try:
        await teacher.ask(codebook, texts[0])  # warm-up and negotiation, not counted
        cpu, started = server.cpu_seconds(), time.perf_counter()
        answers = [await teacher.ask(codebook, t) for t in texts[1:]]
        seconds, cpu = time.perf_counter() - started, server.cpu_seconds() - cpu
    finally:
        await teacher.aclose()
    n = len(answers)
    return seconds / n, cpu / n, sum(a.status == "ok" for a in answers)


def _agreed() -> list[tuple[str, str]]:
    """(text, label) of the demo's coded texts on which both experts gave the same label."""
    import pandas as pd

    codes = pd.read_csv(demo.DEMO_DIR / "human_codes.csv", dtype=str)
    labels = codes.groupby("id")["label"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else None)
    corpus = pd.read_csv(demo.DEMO_DIR / "corpus.csv", dtype=str).set_index("id")["text"]
    return [(corpus[doc], label) for doc, label in labels.dropna().items()]


async def _right(teacher, coded: list[tuple[str, str]]) -> tuple[int, float]:
    codebook = Codebook.from_json((demo.DEMO_DIR / "codebook.json").read_text(encoding="utf-8"))
    started = time.perf_counter()
    try:
        answers = [await teacher.ask(codebook, text) for text, _ in coded]
    finally:
        await teacher.aclose()
    right = sum(a.label == gold for a, (_, gold) in zip(answers, coded, strict=True))
    return right, (time.perf_counter() - started) / len(coded)


def accuracy(prefix: list[str], tmp: str) -> None:
    from distill_core.llm import make_teacher

    coded = _agreed()
    with LlamaServer(Path(tmp) / "accuracy.log", prefix=prefix) as server:
        endpoint = Endpoint(base_url=server.base_url, model=MODEL_ALIAS, timeout_s=300)
        teachers = [("SmolLM2-135M", OpenAITeacher(endpoint, concurrency=1, logprobs=False))]
        teachers.append(("offline MiniLM", make_teacher("local")))
        for name, teacher in teachers:
            right, per_text = asyncio.run(_right(teacher, coded))
            print(
                f"{name}: {right} of {len(coded)} right ({right / len(coded):.0%}), "
                f"{per_text:.2f} s per text"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each setting (interleaved)")
    parser.add_argument("--accuracy", action="store_true")
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        raise SystemExit(reason)
    import statistics

    import pandas as pd

    texts = list(pd.read_csv(demo.DEMO_DIR / "corpus.csv")["text"][: args.texts + 1])
    settings = [
        (threads, logprobs, extra)
        for threads in (2, 1)
        for logprobs, extra in ((True, []), (False, []), (False, ["--logits_all", "False"]))
    ]
    # As root, the server runs at a higher priority, so that other work on the machine
    # disturbs the figures less; the best of the rounds is the least disturbed.
    prefix = ["nice", "-n", "-10"] if os.geteuid() == 0 else []
    figures: dict[tuple, list[tuple[float, float]]] = {s[:2] + (bool(s[2]),): [] for s in settings}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for threads, logprobs, extra in settings:
                os.environ[THREADS_ENV] = str(threads)
                with LlamaServer(Path(tmp) / "server.log", extra=extra, prefix=prefix) as server:
                    per_text, cpu, ok = asyncio.run(_label(server, texts, logprobs))
                figures[(threads, logprobs, bool(extra))].append((per_text, cpu))
        for (threads, logprobs, no_logits), runs in figures.items():
            walls = [w for w, _ in runs]
            cpus = [c for _, c in runs]
            name = f"{threads} thread{'s' if threads > 1 else ''}, logprobs {'on' if logprobs else 'off'}"
            name += ", --logits_all False" if no_logits else ""
            print(
                f"{name}: best {min(walls):.2f} s per text (median {statistics.median(walls):.2f}), "
                f"{min(cpus):.2f} CPU s per text (median {statistics.median(cpus):.2f})"
            )
        if args.accuracy:
            os.environ[THREADS_ENV] = "2"
            accuracy(prefix, tmp)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{len(texts) - 1} texts, {args.rounds} rounds; load average (1, 5, 15 min): {load}")


if __name__ == "__main__":
    main()
