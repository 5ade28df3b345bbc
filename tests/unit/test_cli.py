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


def label(corpus: Path, tmp_path: Path, base_url: str, *extra: str):
    """``label`` of ``corpus`` with the demo codebook into tmp_path/out.csv."""
    return run(
        "label",
        str(corpus),
        "--codebook",
        "distill_core/study/demo_data/codebook.json",
        "--output",
        str(tmp_path / "out.csv"),
        "--base-url",
        base_url,
        "--workdir",
        str(tmp_path / "work"),
        *extra,
    )


def test_label_command_writes_the_contract_columns_and_a_rerun_sends_nothing(tmp_path) -> None:
    from tests.llm_server import LoopbackLLM, ServerConfig

    corpus = tmp_path / "in.csv"
    corpus.write_text(
        "id,text,extra\n1,Taxes rise,x\n2,New hospital,y\n3,Taxes rise,z\n4,,w\n", encoding="utf-8"
    )
    with LoopbackLLM(ServerConfig(keywords={"tax": "economy", "hospital": "health"})) as srv:
        first = label(corpus, tmp_path, srv.base_url, "--model", "m")
        assert first.returncode == 0, first.stderr
        assert srv.stats()["requests"] == 2
        second = label(corpus, tmp_path, srv.base_url, "--model", "m")
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


def slow_on_marker(server, marker: str, seconds: float):
    """The stand-in server, answering texts that contain ``marker`` only after ``seconds``."""
    import time

    from tests.llm_server import text_from

    handler = server._server.RequestHandlerClass

    def chat(self, body):
        if marker in text_from(body):
            time.sleep(seconds)
        handler._chat(self, body)

    server._server.RequestHandlerClass = type("SlowHandler", (handler,), {"_chat": chat})
    return server


def test_label_exits_3_when_texts_end_in_error_and_the_last_line_counts_them(tmp_path) -> None:
    """A 500 on one text and a timeout (--timeout) on another: the output is written, the exit
    status is 3 and the last line gives the counts and the first error; --no-logprobs and
    --timeout reach every request."""
    from tests.llm_server import LoopbackLLM, ServerConfig

    corpus = tmp_path / "in.csv"
    texts = ["Taxes rise", "New hospital", "Army pay", "Tax cut", "[boom] broken", "[slow] slow"]
    corpus.write_text(
        "id,text\n" + "".join(f"{i},{t}\n" for i, t in enumerate(texts)), encoding="utf-8"
    )
    config = ServerConfig(fail_500_marker="[boom]", keywords={"tax": "economy"})
    with slow_on_marker(LoopbackLLM(config), "[slow]", 1.5) as srv:
        out = label(corpus, tmp_path, srv.base_url, "--timeout", "0.5", "--no-logprobs")
        bodies, per_text = list(srv.bodies), srv.stats()["per_text"]
    assert out.returncode == 3, out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("Labelled 4 of 6 texts: 2 ended in error (first: ") and last.endswith(
        "; exit 3"
    ), last
    assert "(500)" in last or "within 0.5 s" in last
    assert "Traceback" not in out.stderr
    import pandas as pd

    written = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert list(written["llm_status"]) == ["ok"] * 4 + ["error"] * 2
    assert bodies and not any("logprobs" in b or "top_logprobs" in b for b in bodies)
    assert per_text["[slow] slow"] > 1  # it timed out after 0.5 s and was asked again
    assert per_text["Taxes rise"] == 1


def test_label_gives_up_on_a_text_after_give_up_seconds(tmp_path) -> None:
    from tests.llm_server import LoopbackLLM, ServerConfig

    corpus = tmp_path / "in.csv"
    corpus.write_text("id,text\n1,[slow] a text the server thinks long about\n", encoding="utf-8")
    with slow_on_marker(LoopbackLLM(ServerConfig()), "[slow]", 3.0) as srv:
        out = label(corpus, tmp_path, srv.base_url, "--timeout", "30", "--give-up", "0.5")
    assert out.returncode == 2, out.stderr  # its only text failed: nothing is written
    assert "the time allowed per text is 0.5 s" in out.stderr, out.stderr
    assert not (tmp_path / "out.csv").exists()


def test_label_refuses_a_timeout_of_zero_and_a_negative_give_up(tmp_path) -> None:
    out = label(tmp_path / "in.csv", tmp_path, "http://127.0.0.1:9/v1", "--timeout", "0")
    assert out.returncode == 2 and "--timeout" in out.stderr
    out = label(tmp_path / "in.csv", tmp_path, "http://127.0.0.1:9/v1", "--give-up", "-1")
    assert out.returncode == 2 and "--give-up" in out.stderr


def test_label_with_an_unreachable_endpoint_is_one_line(tmp_path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    corpus = tmp_path / "in.csv"
    corpus.write_text("id,text\n" + "".join(f"{i},text {i}\n" for i in range(12)), encoding="utf-8")
    out = label(corpus, tmp_path, f"http://127.0.0.1:{port}/v1")
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


# ---------------------------------------------------------------- evaluate --compare


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory: pytest.TempPathFactory):
    """A tiny student (the bundled MiniLM, one epoch on the easy set), a copy of it in another
    folder, and a test file with gold labels, an LLM column with a blank, and a row with no gold
    label."""
    import shutil

    import pandas as pd

    from distill_core.student.args import TrainingArgs
    from distill_core.student.predict import predict_texts
    from distill_core.student.train import train
    from tests.unit.student.test_train import easy_set

    root = tmp_path_factory.mktemp("cli_eval")
    texts, labels = easy_set(8)
    model = root / "model"
    train(texts, labels, model, TrainingArgs(epochs=1, batch_size=8, max_length=32, seed=3))
    twin = root / "twin"
    shutil.copytree(model, twin)
    test_texts, gold = easy_set(4, seed=11)
    llm = [g if i % 3 != 1 else "sport" for i, g in enumerate(gold)]  # every food row wrong
    llm[1] = None  # an invalid answer: blank
    gold_col = list(gold)
    gold_col[2] = None  # not coded
    frame = pd.DataFrame({"id": range(len(gold)), "text": test_texts, "human": gold_col})
    frame["llm_label"] = llm
    path = root / "test.csv"
    frame.to_csv(path, index=False)
    own = predict_texts(model, test_texts).labels
    return model, twin, path, gold_col, llm, own


def test_evaluate_compare_scores_every_system_on_the_same_rows(cli_model) -> None:
    from distill_core.agreement import compare, paired_difference

    model, twin, path, gold, llm, own = cli_model
    out = run(
        "evaluate", str(model), str(path), "--label-column", "human",
        "--compare", "llm_label", "--compare", str(twin),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    rows = [i for i, g in enumerate(gold) if g is not None and llm[i] is not None]
    truth = [gold[i] for i in rows]
    assert data["n"] == len(rows) == len(gold) - 2
    assert data["left_out"] == {"no_gold_label": 1, "blank_label": 1}
    assert data["blank_labels"] == {"llm_label": 1} and "1 rows have a gold label" in out.stderr
    names = [s["name"] for s in data["systems"]]
    assert names == [str(model), "llm_label", str(twin)]
    assert [s["kind"] for s in data["systems"]] == ["model", "column", "model"]
    by_name = {s["name"]: s for s in data["systems"]}
    # per-system figures are agree's, on exactly those rows
    ours = [own[i] for i in rows]
    theirs = [llm[i] for i in rows]
    for name, pred in ((str(model), ours), ("llm_label", theirs), (str(twin), ours)):
        expected = json.loads(json.dumps(compare(truth, pred).to_dict()))
        assert {k: by_name[name][k] for k in expected} == expected
    # the differences are agreement.paired_difference's: this model minus each other system
    diffs = {d["b"]: d for d in data["differences"]}
    assert set(diffs) == {"llm_label", str(twin)} and all(
        d["a"] == str(model) for d in diffs.values()
    )
    for metric in ("macro_f1", "accuracy"):
        expected = paired_difference(truth, ours, theirs, metric=metric).to_dict()
        assert diffs["llm_label"][metric] == json.loads(json.dumps(expected))
    acc = diffs["llm_label"]["accuracy"]
    assert acc["b01"] + acc["b10"] > 0  # the two disagree on being right somewhere
    right = [p == g for p, g in zip(ours, truth, strict=True)]
    llm_right = [p == g for p, g in zip(theirs, truth, strict=True)]
    assert acc["b10"] == sum(a and not b for a, b in zip(right, llm_right, strict=True))
    assert acc["b01"] == sum(b and not a for a, b in zip(right, llm_right, strict=True))
    assert acc["difference"] == pytest.approx(sum(right) / len(rows) - sum(llm_right) / len(rows))
    assert 0 <= acc["p_value"] <= 1 and acc["ci"][0] <= acc["difference"] <= acc["ci"][1]
    # the same model in another folder: no difference, McNemar has nothing to test
    same = diffs[str(twin)]
    assert same["macro_f1"]["difference"] == 0 and same["accuracy"]["p_value"] == 1
    assert same["accuracy"]["b01"] == same["accuracy"]["b10"] == 0


def test_evaluate_compare_can_count_a_blank_answer_as_wrong(cli_model) -> None:
    from distill_core.agreement import MISSING

    model, _twin, path, gold, llm, _own = cli_model
    out = run(
        "evaluate", str(model), str(path), "--label-column", "human",
        "--compare", "llm_label", "--blank-is-wrong",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    rows = [i for i, g in enumerate(gold) if g is not None]
    assert data["n"] == len(rows) and data["left_out"]["blank_label"] == 0
    assert data["blank_is_wrong"] is True and "counted as wrong" in out.stderr
    llm_row = data["systems"][1]
    correct = sum(llm[i] == gold[i] for i in rows)
    assert llm_row["accuracy"] == pytest.approx(correct / len(rows))
    assert llm_row["n_missing"] == 1 and MISSING in llm_row["labels"]


def test_evaluate_without_compare_keeps_its_output(cli_model) -> None:
    model, _twin, path, gold, _llm, own = cli_model
    out = run("evaluate", str(model), str(path), "--label-column", "human")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    coded = [i for i, g in enumerate(gold) if g is not None]
    assert data["n"] == len(coded) and "systems" not in data
    assert data["accuracy"] == pytest.approx(sum(own[i] == gold[i] for i in coded) / len(coded))


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (("--compare", "nothing_here"), "neither a column"),
        (("--compare", "llm_label", "--compare", "llm_label"), "compared twice"),
        (("--compare", "llm_label", "--positive-label", "nope"), "positive label"),
        (("--compare", "id_folder"), "not a model folder"),
    ],
)
def test_evaluate_compare_errors_are_one_sentence(cli_model, tmp_path, extra, fragment) -> None:
    model, _twin, path, *_ = cli_model
    (tmp_path / "id_folder").mkdir()
    extra = tuple(str(tmp_path / x) if x == "id_folder" else x for x in extra)
    out = run("evaluate", str(model), str(path), "--label-column", "human", *extra)
    assert out.returncode == 2 and out.stdout == "", out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and fragment in last and "Traceback" not in out.stderr


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
