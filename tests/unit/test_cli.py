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
        "distill_core/study/demo_data/corpus.csv",
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


def test_agree_matches_by_id_and_prints_one_json_object(tmp_path) -> None:
    from sklearn.metrics import cohen_kappa_score, f1_score

    gold = tmp_path / "gold.csv"
    pred = tmp_path / "pred.csv"
    gold.write_text("id,label\n1,a\n2,b\n3,a\n4,b\n5,a\n7,\n", encoding="utf-8")
    pred.write_text("id,llm_label\n4,b\n3,a\n2,a\n1,a\n6,b\n", encoding="utf-8")
    out = run(
        "agree",
        str(gold),
        str(pred),
        "--gold-column",
        "label",
        "--pred-column",
        "llm_label",
        "--positive-label",
        "a",
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    g, p = ["a", "b", "a", "b"], ["a", "a", "a", "b"]
    assert data["n"] == 4
    assert data["macro_f1"] == pytest.approx(f1_score(g, p, average="macro"))
    assert data["cohen_kappa"] == pytest.approx(cohen_kappa_score(g, p))
    assert set(data["per_class"]) == {"a", "b"} and data["binary_f1"] == pytest.approx(0.8)
    assert all(len(v) == 2 for v in data["ci"].values())
    assert (
        "1 ids only in" in out.stderr
        and "1 only in" in out.stderr
        and "no gold label" in out.stderr
    )


@pytest.mark.parametrize(
    ("gold", "pred", "args", "fragment"),
    [
        (
            "id,label\n1,a\n",
            "id,llm\n1,a\n",
            ("--gold-column", "label", "--pred-column", "nope"),
            "'nope'",
        ),
        (
            "id,label\n1,a\n",
            "id,llm\n2,a\n",
            ("--gold-column", "label", "--pred-column", "llm"),
            "no id",
        ),
    ],
)
def test_agree_errors_are_one_line(tmp_path, gold, pred, args, fragment) -> None:
    (tmp_path / "g.csv").write_text(gold)
    (tmp_path / "p.csv").write_text(pred)
    out = run("agree", str(tmp_path / "g.csv"), str(tmp_path / "p.csv"), *args)
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and fragment in out.stderr.lower()


def test_label_command_writes_the_contract_columns_and_a_rerun_sends_nothing(tmp_path) -> None:
    from tests.llm_server import LoopbackLLM, ServerConfig

    corpus = tmp_path / "in.csv"
    corpus.write_text(
        "id,text,extra\n1,Taxes rise,x\n2,New hospital,y\n3,Taxes rise,z\n4,,w\n", encoding="utf-8"
    )
    with LoopbackLLM(ServerConfig(keywords={"tax": "economy", "hospital": "health"})) as srv:
        args = (
            "label",
            str(corpus),
            "--codebook",
            "distill_core/study/demo_data/codebook.json",
            "--output",
            str(tmp_path / "out.csv"),
            "--base-url",
            srv.base_url,
            "--model",
            "m",
            "--workdir",
            str(tmp_path / "work"),
        )
        first = run(*args)
        assert first.returncode == 0, first.stderr
        assert srv.stats()["requests"] == 2
        second = run(*args)
        assert second.returncode == 0 and srv.stats()["requests"] == 2
    import pandas as pd

    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert list(out.columns) == [
        "id",
        "text",
        "extra",
        "llm_label",
        "llm_confidence",
        "llm_consistency",
        "llm_status",
    ]
    assert list(out["llm_label"]) == ["economy", "health", "economy", ""]
    assert list(out["llm_status"]) == ["ok", "ok", "ok", "error"]


def test_label_with_an_unreachable_endpoint_is_one_line(tmp_path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    corpus = tmp_path / "in.csv"
    corpus.write_text("id,text\n" + "".join(f"{i},text {i}\n" for i in range(12)), encoding="utf-8")
    out = run(
        "label",
        str(corpus),
        "--codebook",
        "distill_core/study/demo_data/codebook.json",
        "--output",
        str(tmp_path / "out.csv"),
        "--base-url",
        f"http://127.0.0.1:{port}/v1",
        "--workdir",
        str(tmp_path / "w"),
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "reach" in out.stderr.lower() and "Traceback" not in out.stderr
    assert not (tmp_path / "out.csv").exists()


def test_predict_and_evaluate_without_a_model_folder_are_one_line(tmp_path) -> None:
    (tmp_path / "t.csv").write_text("id,text,label\n1,a,x\n")
    for args in (
        (
            "predict",
            str(tmp_path / "none"),
            str(tmp_path / "t.csv"),
            "--output",
            str(tmp_path / "o.csv"),
        ),
        ("evaluate", str(tmp_path / "none"), str(tmp_path / "t.csv"), "--label-column", "label"),
    ):
        out = run(*args)
        assert out.returncode == 2 and "not a model folder" in out.stderr
        assert "Traceback" not in out.stderr


def test_train_refuses_a_missing_label_column_in_one_line(tmp_path) -> None:
    (tmp_path / "t.csv").write_text("id,text\n1,a\n")
    out = run(
        "train",
        str(tmp_path / "t.csv"),
        "--label-column",
        "llm_label",
        "--output",
        str(tmp_path / "m"),
    )
    assert out.returncode == 2 and "'llm_label'" in out.stderr and not (tmp_path / "m").exists()
