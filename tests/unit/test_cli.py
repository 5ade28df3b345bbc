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


# ---------------------------------------------------------------- admin (accounts)


def run_admin(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`python -m distill_core admin …` on the store in ``home`` (no outside database)."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "DISTILL_DATABASE_URL"}
    env["DISTILL_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "distill_core", "admin", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        input=stdin if stdin is not None else "",
        env=env,
    )


def _home_store(home: Path):
    from distill_core.config import Settings
    from distill_core.store import Store

    return Store(Settings.from_env({"DISTILL_HOME": str(home)}).database_url)


def test_admin_help_says_it_acts_as_the_installations_administrator() -> None:
    out = run("admin", "--help")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "administrator of this installation" in text and "on the server" in text
    for command in ("create-user", "set-password", "admit", "list-users"):
        assert command in out.stdout


def test_admin_create_user_and_list_users(tmp_path) -> None:
    home = tmp_path / "home"
    out = run_admin(
        home,
        "create-user",
        "root",
        "--email",
        "Root@Lab-A.test",
        "--admin",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert out.returncode == 0, out.stderr
    assert "administrator's account 'root'" in out.stderr
    assert (
        run_admin(home, "create-user", "ada", "--password-stdin", stdin="ada password\n").returncode
        == 0
    )
    listed = [
        json.loads(line) for line in run_admin(home, "list-users", "--json").stdout.splitlines()
    ]
    assert [(u["username"], u["email"], u["admin"], u["admitted"]) for u in listed] == [
        ("ada", "", False, True),
        ("root", "root@lab-a.test", True, True),
    ]
    table = run_admin(home, "list-users").stdout
    assert table.splitlines()[0].split()[:3] == ["id", "username", "name"] and "root" in table

    from distill_core.study import accounts

    store = _home_store(home)
    with store.session() as s:
        user = accounts.authenticate(s, "root@lab-a.test", "a long password")
        assert user.is_admin and user.password_hash.startswith("$argon2id$")
    store.dispose()


def test_admin_set_password_and_admit(tmp_path) -> None:
    home = tmp_path / "home"
    assert (
        run_admin(
            home, "create-user", "ada", "--password-stdin", stdin="first password\n"
        ).returncode
        == 0
    )
    out = run_admin(home, "set-password", "ada", "--password-stdin", stdin="second password\n")
    assert out.returncode == 0, out.stderr

    from distill_core.study import accounts

    store = _home_store(home)
    with store.session() as s:
        assert accounts.authenticate(s, "ada", "second password").username == "ada"
        bob = accounts.sign_in_from_claims(s, {"sub": "b1", "email": "bob@lab-b.test"}, ())
        assert not bob.active
    out = run_admin(home, "admit", "bob@lab-b.test")
    assert out.returncode == 0 and "Admitted 'bob@lab-b.test'" in out.stderr
    with store.session() as s:
        assert accounts.find_user(s, "bob@lab-b.test").active
    store.dispose()


@pytest.mark.parametrize(
    ("args", "stdin", "fragment"),
    [
        (("create-user", "ada", "--password-stdin"), "short\n", "at least 8 characters"),
        (("create-user", "ada", "--password-stdin"), "", "no password"),
        (("create-user", "ada"), "", "use --password-stdin"),
        (("set-password", "nobody", "--password-stdin"), "long enough\n", "no user named 'nobody'"),
        (("admit", "nobody"), "", "no user named 'nobody'"),
    ],
)
def test_admin_errors_are_one_line_with_exit_2(tmp_path, args, stdin, fragment) -> None:
    out = run_admin(tmp_path / "home", *args, stdin=stdin)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in out.stderr


def test_admin_a_taken_name_is_one_line(tmp_path) -> None:
    home = tmp_path / "home"
    assert (
        run_admin(home, "create-user", "ada", "--password-stdin", stdin="long enough\n").returncode
        == 0
    )
    out = run_admin(home, "create-user", "ada", "--password-stdin", stdin="long enough\n")
    assert out.returncode == 2 and "already a user named 'ada'" in out.stderr


def _on_a_terminal(home: Path, args: list[str], typed: list[str]) -> tuple[int, str]:
    """Run an admin command with a pseudo-terminal as its controlling terminal and type lines."""
    import fcntl
    import os
    import pty
    import termios

    master, slave = pty.openpty()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    env = {k: v for k, v in os.environ.items() if k != "DISTILL_DATABASE_URL"}
    env["DISTILL_HOME"] = str(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "distill_core", "admin", *args],
        cwd=REPO,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    seen = b""
    for line in typed:
        while b"password" not in seen.lower().rsplit(b"\n", 1)[-1]:
            seen += os.read(master, 1024)
        seen = b""
        os.write(master, line.encode() + b"\n")
    output = b""
    while True:
        try:
            chunk = os.read(master, 1024)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    return proc.wait(timeout=60), output.decode(errors="replace")


def test_admin_asks_for_the_password_twice_on_a_terminal(tmp_path) -> None:
    home = tmp_path / "home"
    code, output = _on_a_terminal(
        home, ["create-user", "ada"], ["typed password", "typed password"]
    )
    assert code == 0, output
    assert "typed password" not in output  # not echoed
    from distill_core.study import accounts

    store = _home_store(home)
    with store.session() as s:
        assert accounts.authenticate(s, "ada", "typed password").username == "ada"
    store.dispose()
    code, output = _on_a_terminal(home, ["set-password", "ada"], ["one password", "another one"])
    assert code == 2 and "The two passwords differ" in output
