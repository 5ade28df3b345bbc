"""`python -m distill_core`: help, ingest summaries, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "distill_core", *args], cwd=REPO, capture_output=True, text=True
    )


def test_help_lists_the_commands() -> None:
    out = run("--help")
    assert out.returncode == 0 and "ingest" in out.stdout


def test_ingest_prints_a_summary(tmp_path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("id,text\n1,hello world\n2,\n3,hello world\n", encoding="utf-8")
    out = run("ingest", str(f), "--text-column", "text", "--id-column", "id")
    assert out.returncode == 0, out.stderr
    assert "3" in out.stdout and "empty" in out.stdout.lower() and "repeated" in out.stdout.lower()
    data = json.loads(run("ingest", str(f), "--text-column", "text", "--json").stdout)
    assert data["rows"] == 3 and data["empty_texts"] == 1 and data["duplicate_texts"] == 1


def test_ingest_demo_corpus() -> None:
    out = run(
        "ingest",
        "distill_core/demo/corpus.csv",
        "--text-column",
        "text",
        "--id-column",
        "id",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rows"] == 360


@pytest.mark.parametrize(
    ("content", "args", "fragment"),
    [
        (b"", ("--text-column", "text"), "no rows"),
        (b"id,text\n1,hi\n", ("--text-column", "body"), "'body'"),
        (b'id,text\n1,"open quote\n2,b\n', ("--text-column", "text"), "quote"),
        (b"id,text\n1,a\n1,b\n", ("--text-column", "text", "--id-column", "id"), "repeated"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_traceback(
    tmp_path, content, args, fragment
) -> None:
    f = tmp_path / "bad.csv"
    f.write_bytes(content)
    out = run("ingest", str(f), *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert fragment in lines[0].lower()
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_a_missing_file_is_one_line(tmp_path) -> None:
    out = run("ingest", str(tmp_path / "nope.csv"), "--text-column", "text")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "nope.csv" in out.stderr
