"""Time corpus ingestion: read_path + prepare_corpus on a synthetic tweet-like CSV (and real data).

Usage, from the repository root: `python benchmarks/ingest.py [--rows 100000] [--repeats 3]`.
Prints rows, MB, seconds (best of the repeats) and rows/s for each stage and in total.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill_core.corpus import prepare_corpus, read_path  # noqa: E402

WORDS = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "it",
    "you",
    "that",
    "was",
    "for",
    "on",
    "are",
    "with",
    "as",
    "they",
    "be",
    "at",
    "one",
    "have",
    "this",
    "from",
    "or",
    "by",
    "but",
    "not",
    "what",
    "all",
    "were",
    "we",
    "when",
    "your",
    "can",
    "said",
    "there",
    "use",
    "an",
    "each",
    "which",
    "she",
    "do",
    "how",
    "their",
    "if",
    "will",
    "up",
    "other",
    "about",
    "out",
    "many",
    "then",
    "them",
    "these",
    "so",
    "some",
    "her",
    "would",
    "make",
    "like",
    "him",
    "into",
    "time",
    "has",
    "look",
    "two",
    "more",
    "write",
    "go",
    "see",
    "number",
    "no",
    "way",
    "could",
    "people",
    "my",
    "than",
    "first",
    "water",
    "been",
    "call",
    "who",
    "oil",
    "its",
    "now",
    "find",
    "long",
    "down",
    "day",
    "did",
    "get",
    "come",
    "made",
    "may",
    "part",
    "vote",
    "election",
    "policy",
    "senate",
    "congress",
    "tax",
    "health",
    "climate",
    "immigration",
    "economy",
    "jobs",
    "school",
    "police",
    "court",
    "café",
    "naïve",
    "façade",
    "señor",
    "über",
    "déjà",
    "Zürich",
    "#politics",
    "#news",
    "@user",
    "http://t.co/xyz",
    "😀",
    "🎉",
    "🇺🇸",
    "❤️",
]


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    """A tweet-like CSV: id, text (10–40 words), created_at, retweets, lang; a few repeats/empties."""
    rng = random.Random(seed)
    texts: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text", "created_at", "retweets", "lang"])
        for i in range(rows):
            r = rng.random()
            if r < 0.01:
                text = ""
            elif r < 0.03 and texts:
                text = rng.choice(texts)
            else:
                words = [rng.choice(WORDS) for _ in range(rng.randint(10, 40))]
                if rng.random() < 0.05:
                    words.insert(rng.randrange(len(words)), '"quoted, with comma"')
                if rng.random() < 0.01:
                    words.insert(rng.randrange(len(words)), "\n")
                text = " ".join(words)
                texts.append(text)
            day = 1 + i % 28
            writer.writerow(
                [
                    1_000_000_000 + i,
                    text,
                    f"2024-03-{day:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
                    rng.randint(0, 5000),
                    rng.choice(["en", "en", "en", "es", "de", "fr"]),
                ]
            )


def best_of(repeats: int, fn):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench(path: Path, text_column: str, id_column: str | None, repeats: int) -> None:
    mb = path.stat().st_size / 1024 / 1024
    t_read, table = best_of(repeats, lambda: read_path(path))
    t_prep, corpus = best_of(
        repeats, lambda: prepare_corpus(table, text_column=text_column, id_column=id_column)
    )
    t_gen, _ = best_of(repeats, lambda: prepare_corpus(table, text_column=text_column))
    rows = corpus.report.rows
    print(f"\n{path.name}: {rows:,} rows, {mb:.1f} MB ({table.file_format}, {table.encoding})")
    print(f"  {'stage':<34}{'seconds':>9}{'rows/s':>12}{'MB/s':>9}")
    for stage, seconds in (
        ("read_path", t_read),
        (f"prepare_corpus (id column {id_column!r})", t_prep),
        ("prepare_corpus (generated ids)", t_gen),
        ("total (read + prepare with ids)", t_read + t_prep),
    ):
        print(f"  {stage:<34}{seconds:>9.3f}{rows / seconds:>12,.0f}{mb / seconds:>9.1f}")
    for line in corpus.report.summary_lines():
        print(f"  | {line}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"best of {args.repeats}; python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic_tweets.csv"
        make_csv(path, args.rows)
        bench(path, "text", "id", args.repeats)
    real = ROOT.parent / "shared" / "data" / "davidson_hate_offensive.csv"
    if real.exists():
        bench(real, "text", "id", args.repeats)
    else:
        print(f"\n({real} not found; real-data timing skipped)")


if __name__ == "__main__":
    main()
