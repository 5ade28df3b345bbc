"""Exports: the labelled corpus from a store with every part (and with only a corpus), each file
format read back, formula escaping, Stata names and value labels, streaming a 100,000-row CSV,
the audit log without a key, the model zip loadable by transformers, and the export command."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from distill_core import agreement, cli
from distill_core.codebook import Codebook
from distill_core.corpus import prepare_corpus, read_table
from distill_core.reports import export
from distill_core.store import (
    Job,
    LabelRun,
    LabelRunItem,
    Prediction,
    PredictionRun,
    Store,
    StudentModel,
)
from distill_core.study import labelling, projects, validation
from tests.fakes import local_user

LABELS = ["economy", "health", "other"]
CODEBOOK = Codebook.from_dict(
    {
        "name": "Topics",
        "instructions": "Pick the one topic that fits best.",
        "labels": [
            {"name": "economy", "definition": "Taxes, jobs, prices."},
            {"name": "health", "definition": "Hospitals, disease."},
            {"name": "other", "definition": "Anything else."},
        ],
        "examples": [{"text": "Taxes go up", "label": "economy"}],
    }
)
N_DOCS = 30
SECRET = "sk-test-SECRET-9999-never-export"


def corpus_csv(n: int = N_DOCS) -> bytes:
    rows = ["id,text,source"]
    for i in range(n):
        text = "=HYPERLINK(evil)" if i == 3 else f"Text number {i} about {LABELS[i % 3]}"
        rows.append(f"d{i},{text},Zeitung é {i % 2}")
    return ("\n".join(rows) + "\n").encode("utf-8")


def new_project(store: Store, name: str = "Study", n: int = N_DOCS) -> int:
    """A project with a corpus (id, text and one more column) and a saved codebook."""
    with store.session() as s:
        user = projects.ensure_user(s)
        project = projects.create_project(s, user, name)
        table = read_table(corpus_csv(n), "corpus.csv")
        projects.save_corpus(s, user, project.id, table, prepare_corpus(table, "text", "id"))
        projects.save_codebook(s, user, project.id, CODEBOOK)
        return project.id


def llm_label(i: int) -> str | None:
    """The stand-in LLM: right except on every 5th text; text 7 got an invalid answer."""
    if i == 7:
        return None
    return LABELS[(i + (i % 5 == 0)) % 3]


def fill_project(store: Store, project_id: int) -> dict:
    """Insert every part directly: a label run with a job, a validation sample coded by two
    coders, a ready student with its comparison, and a corpus pass with probabilities."""
    with store.session() as s:
        user = projects.ensure_user(s)
        corpus = projects.get_corpus(s, local_user(s), project_id)
        version = projects.latest_codebook(s, local_user(s), project_id)
        job = Job(
            project_id=project_id,
            kind="label",
            status="done",
            prompt_tokens=12_345,
            completion_tokens=678,
            cost_usd=0.42,
        )
        s.add(job)
        s.flush()
        run = LabelRun(
            project_id=project_id,
            corpus_id=corpus.id,
            codebook_version_id=version.id,
            codebook=CODEBOOK.to_dict(),
            teacher="openai",
            model="gpt-test",
            params={
                "base_url": "https://user:pw@llm.example.org/v1?token=abc",
                "model": "gpt-test",
                "temperature": 0.0,
                "max_tokens": 50,
                "seed": None,
                "repeats": 1,
            },
            run_key="k" * 64,
            n_texts=N_DOCS,
            job_id=job.id,
        )
        s.add(run)
        s.flush()
        for i in range(N_DOCS):
            label = llm_label(i)
            s.add(
                LabelRunItem(
                    run_id=run.id,
                    doc_id=f"d{i}",
                    text_hash=f"{i:064d}",
                    label=label,
                    confidence=0.9 if label else None,
                    consistency=1.0 if label else None,
                    status="ok" if label else "invalid",
                    answers=1,
                )
            )
        sample = validation.sample_from_ids(
            s, user, project_id, [f"d{i}" for i in range(20)], seed=2024, test_share=0.5
        )
        for i in range(20):
            truth = LABELS[i % 3]
            validation.save_code(s, user, project_id, f"d{i}", "Anna Müller", truth)
            other = truth if i % 4 else LABELS[(i + 1) % 3]
            validation.save_code(s, user, project_id, f"d{i}", "Bob", other)
        test_ids = [
            d.doc_id
            for d in validation.sample_docs(
                s, local_user(s), sample.project_id, sample, part="test"
            )
        ]
        gold, _ = validation.gold_labels(validation.codes_frame(s, local_user(s), project_id))
        ids = [d for d in test_ids if d in gold]
        truth = [gold[d] for d in ids]
        llm = [llm_label(int(d[1:])) for d in ids]
        student = [LABELS[int(d[1:]) % 3] for d in ids]

        def row(key, name, pred, n_train):
            result = agreement.compare(truth, pred, labels=LABELS, n_boot=200, seed=0)
            return {
                "key": key,
                "name": name,
                "n_train": n_train,
                "note": "",
                "metrics": result.to_dict(),
                "class_ci": {
                    k: list(v)
                    for k, v in agreement.class_f1_intervals(
                        truth, pred, LABELS, n_boot=200
                    ).items()
                },
            }

        comparison = {
            "eval": {
                "part": "test",
                "n": len(ids),
                "gold": "majority of coders",
                "sample_id": sample.id,
                "sample_method": "imported",
            },
            "rows": [
                row("llm", "LLM labels", llm, None),
                row("student_llm", "Student on LLM labels", student, 19),
            ],
        }
        model = StudentModel(
            project_id=project_id,
            corpus_id=corpus.id,
            label_run_id=run.id,
            codebook_version_id=version.id,
            status="ready",
            base_model="tiny-bert",
            path=f"{project_id}/1",
            args={"epochs": 3, "lr": 1e-4, "batch_size": 8, "seed": 42, "max_length": 32},
            training={"n_llm": 30, "excluded_test": 10, "invalid": 1, "label_counts": {"a": 1}},
            meta={"n_train": 17, "n_val": 2, "train_seconds": 12.5, "device": "cpu"},
            comparison=comparison,
        )
        s.add(model)
        s.flush()
        pass_ = PredictionRun(
            project_id=project_id,
            model_id=model.id,
            corpus_id=corpus.id,
            status="done",
            labels={"labels": LABELS},
            n=N_DOCS,
        )
        s.add(pass_)
        s.flush()
        for i in range(N_DOCS):
            probs = [0.1, 0.1, 0.1]
            probs[i % 3] = 0.8
            s.add(
                Prediction(
                    run_id=pass_.id,
                    doc_id=f"d{i}",
                    label=LABELS[i % 3],
                    confidence=0.8,
                    probs=probs,
                )
            )
        return {"run_id": run.id, "model_id": model.id, "test_ids": test_ids}


@pytest.fixture
def full(store):
    project_id = new_project(store)
    info = fill_project(store, project_id)
    return store, project_id, info


# ---------------------------------------------------------------- labelled_corpus


def test_labelled_corpus_with_every_part(full) -> None:
    store, project_id, info = full
    with store.session() as s:
        frame = export.labelled_corpus(s, local_user(s), project_id, probabilities=True)
    assert len(frame) == N_DOCS
    assert frame["doc_id"].tolist() == [f"d{i}" for i in range(N_DOCS)]  # corpus order
    assert list(frame.columns) == [
        "doc_id",
        "text",
        "source",
        "llm_label",
        "llm_confidence",
        "llm_consistency",
        "llm_status",
        "llm_model",
        "codebook_version",
        "codebook_note",
        "student_label",
        "student_probability",
        "prob_economy",
        "prob_health",
        "prob_other",
        "student_model",
        "human_Anna Müller",
        "human_Bob",
        "human_gold",
        "adjudicated_label",
        "adjudication_reason",
        "gold_source",
        "sample_part",
    ]
    row = frame.set_index("doc_id")
    assert row.loc["d1", "llm_label"] == "health" and row.loc["d5", "llm_label"] == "economy"
    assert pd.isna(row.loc["d7", "llm_label"]) and row.loc["d7", "llm_status"] == "invalid"
    assert row.loc["d1", "llm_confidence"] == pytest.approx(0.9)
    assert row.loc["d1", "llm_model"] == "gpt-test" and row.loc["d1", "codebook_version"] == 1
    assert row["codebook_note"].isna().all()
    assert row.loc["d2", "student_label"] == "other"
    assert row.loc["d2", "prob_other"] == pytest.approx(0.8)
    assert row.loc["d2", "student_model"] == f"tiny-bert #{info['model_id']}"
    assert row.loc["d4", "human_Bob"] == "other" and row.loc["d4", "human_Anna Müller"] == "health"
    assert pd.isna(row.loc["d4", "human_gold"])  # the two coders tie
    assert row.loc["d4", "gold_source"] == "tie" and row["adjudicated_label"].isna().all()
    assert row.loc["d5", "human_gold"] == "other"
    assert pd.isna(row.loc["d25", "sample_part"])
    assert set(frame["sample_part"].dropna()) == {"dev", "test"}
    assert set(frame.loc[frame["sample_part"] == "test", "doc_id"]) == set(info["test_ids"])
    assert list(frame["llm_label"].cat.categories) == LABELS  # codebook order
    assert frame["source"].iloc[1] == "Zeitung é 1"


def test_labelled_corpus_with_only_a_corpus_has_empty_columns(store) -> None:
    project_id = new_project(store)
    with store.session() as s:
        frame = export.labelled_corpus(s, local_user(s), project_id)
    assert len(frame) == N_DOCS and frame["text"].iloc[0] == "Text number 0 about economy"
    for col in ["llm_label", "llm_status", "student_label", "human_gold", "sample_part"]:
        assert frame[col].isna().all(), col
    assert frame["codebook_version"].isna().all() and frame["student_probability"].isna().all()
    assert not [c for c in frame.columns if c.startswith("human_") and c != "human_gold"]
    for fmt in export.TABLE_FORMATS:  # every writer copes with all-empty columns
        assert len(read_back(export.to_bytes(frame, fmt), fmt)) == N_DOCS


def test_a_project_without_a_corpus_has_nothing_to_export(store) -> None:
    with store.session() as s:
        project = projects.create_project(s, projects.ensure_user(s), "Empty")
        with pytest.raises(export.ExportError, match="no corpus"):
            export.labelled_corpus(s, local_user(s), project.id)


def test_file_columns_that_clash_with_ours_are_prefixed() -> None:
    frame = pd.DataFrame({"doc_id": ["a"], "text": ["t"], "llm_label": ["x"], "human_x": ["y"]})
    out = export._prefix_clashes(frame)
    assert list(out.columns) == ["doc_id", "text", "file_llm_label", "file_human_x"]


# ---------------------------------------------------------------- formats


def read_back(data: bytes, fmt: str) -> pd.DataFrame:
    buffer = io.BytesIO(data)
    if fmt == "csv":
        return pd.read_csv(buffer, encoding="utf-8-sig", keep_default_na=False, na_values=[""])
    if fmt == "xlsx":
        return pd.read_excel(buffer)
    if fmt == "parquet":
        return pd.read_parquet(buffer)
    return pd.read_stata(buffer)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet", "dta"])
def test_each_format_reads_back(full, fmt) -> None:
    store, project_id, _ = full
    with store.session() as s:
        frame = export.labelled_corpus(s, local_user(s), project_id, probabilities=True)
    back = read_back(export.to_bytes(frame, fmt), fmt)
    assert len(back) == N_DOCS
    assert back["doc_id"].astype(str).tolist() == frame["doc_id"].tolist()
    assert back["text"].iloc[1] == "Text number 1 about health"
    assert back["source"].iloc[0] == "Zeitung é 0"  # accents survive
    assert back["llm_label"].iloc[1] == "health" and pd.isna(back["llm_label"].iloc[7])
    assert back["llm_confidence"].iloc[1] == pytest.approx(0.9)
    assert back["prob_health"].iloc[1] == pytest.approx(0.8)
    escaped = fmt in ("csv", "xlsx")
    assert back["text"].iloc[3] == ("'" if escaped else "") + "=HYPERLINK(evil)"


def test_csv_has_a_byte_order_mark_and_plain_pandas_reads_it() -> None:
    data = export.to_bytes(pd.DataFrame({"a": ["é"], "b": [1]}), "csv")
    assert data.startswith(b"\xef\xbb\xbf") and data.count(b"\xef\xbb\xbf") == 1
    assert list(pd.read_csv(io.BytesIO(data)).columns) == ["a", "b"]


def test_stata_gives_the_labels_back_as_value_labels(full, tmp_path) -> None:
    store, project_id, _ = full
    with store.session() as s:
        frame = export.labelled_corpus(s, local_user(s), project_id)
    frame["text"] = frame["text"] + " " + "long " * 600  # over Stata's str# limit: strL
    path = tmp_path / "corpus.dta"
    renames = export.write(frame, "dta", path)
    assert renames == {"human_Anna Müller": "human_Anna_Muller"}
    back = pd.read_stata(path)
    assert isinstance(back["llm_label"].dtype, pd.CategoricalDtype)
    assert back["llm_label"].tolist()[:3] == ["health", "health", "other"]
    assert back["human_Anna_Muller"].iloc[1] == "health"
    assert back["text"].iloc[0].endswith("long ") and len(back["text"].iloc[0]) > 3000
    with pd.io.stata.StataReader(path) as reader:
        values = reader.value_labels()
        labels = reader.variable_labels()
    assert list(values["llm_label"].values()) == LABELS  # every codebook label, in order
    assert labels["human_Anna_Muller"].startswith("human_Anna Müller")
    raw = pd.read_stata(path, convert_categoricals=False)
    assert raw["llm_label"].iloc[1] == LABELS.index("health")


def test_stata_names_are_valid_unique_and_short() -> None:
    names = export.stata_names(
        ["ok_name", "Anna Müller", "1st", "if", "x" * 40, "x" * 40 + "y", "a-b", "a_b", "str12"]
    )
    assert names["ok_name"] == "ok_name" and names["Anna Müller"] == "Anna_Muller"
    assert names["1st"] == "v1st" and names["if"] == "if_" and names["str12"] == "str12_"
    assert names["a-b"] == "a_b" and names["a_b"] == "a_b_2"
    assert len(set(names.values())) == len(names)
    for name in names.values():
        assert len(name) <= 32 and name.replace("_", "a").isalnum() and not name[0].isdigit()


def test_unknown_format_is_one_sentence() -> None:
    with pytest.raises(export.ExportError, match="Unknown table format 'sav'"):
        export.write(pd.DataFrame({"a": [1]}), "sav", io.BytesIO())


def test_excel_refuses_cells_longer_than_it_holds() -> None:
    frame = pd.DataFrame({"text": ["x" * (export.EXCEL_MAX_CELL + 1)]})
    with pytest.raises(export.ExportError, match="Excel cell"):
        export.to_bytes(frame, "xlsx")


def test_excel_drops_control_characters_it_forbids() -> None:
    back = read_back(export.to_bytes(pd.DataFrame({"text": ["a\x0bb\x00c"]}), "xlsx"), "xlsx")
    assert back["text"].iloc[0] == "abc"


# ---------------------------------------------------------------- formula injection

DANGEROUS = ["=1+1", "+x", "-x", "@x", "\tx", "\rx"]


def test_escape_formulas_prefixes_dangerous_text_only() -> None:
    frame = pd.DataFrame(
        {
            "text": DANGEROUS + ["plain", "-3", "a=b"],
            "number": [-3, 1, 2, 3, 4, 5, 6, 7, 8],
            "label": pd.Categorical(["=x"] * 9),
        }
    )
    out = export.escape_formulas(frame)
    assert out["text"].tolist() == ["'" + v for v in DANGEROUS] + ["plain", "-3", "a=b"]
    assert out["number"].tolist() == frame["number"].tolist() and out["number"].dtype.kind == "i"
    assert out["label"].tolist() == ["'=x"] * 9
    assert frame["text"].iloc[0] == "=1+1"  # the input is unchanged


def test_csv_and_excel_cells_are_escaped_and_numbers_stay_numbers() -> None:
    frame = pd.DataFrame({"text": DANGEROUS + ["plain"], "value": [-3, -2.5, 0, 1, 2, 3, 4]})
    for fmt in ("csv", "xlsx"):
        back = read_back(export.to_bytes(frame, fmt), fmt)
        expected = ["'" + v for v in DANGEROUS] + ["plain"]
        if fmt == "xlsx":  # XML reads a carriage return back as a line feed
            expected = [v.replace("\r", "\n") for v in expected]
        assert back["text"].tolist() == expected, fmt
        assert back["value"].tolist() == [-3, -2.5, 0, 1, 2, 3, 4], fmt
        assert back["value"].dtype.kind in "if", fmt
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(export.to_bytes(frame, "xlsx"))).active
    assert sheet["A2"].data_type == "s"  # text, never a formula
    assert sheet["B2"].value == -3 and sheet["B2"].data_type == "n"


# ---------------------------------------------------------------- streaming


def test_a_100000_row_csv_streams_in_bounded_chunks() -> None:
    n = 100_000
    frame = pd.DataFrame(
        {
            "doc_id": [f"d{i}" for i in range(n)],
            "text": [f"text {i}, with a comma" for i in range(n)],
        }
    )
    frame.loc[5, "text"] = "=cmd"
    sizes, parts = [], []
    for chunk in export.iter_csv(frame, chunk_rows=10_000):
        sizes.append(len(chunk))
        parts.append(chunk)
    assert len(parts) == 10
    assert max(sizes) < 2 * sum(sizes) / len(sizes)  # every chunk about a tenth of the file
    assert max(sizes) < 600_000
    back = pd.read_csv(io.BytesIO(b"".join(parts)), encoding="utf-8-sig")
    assert len(back) == n and back["doc_id"].iloc[-1] == f"d{n - 1}"
    assert back["text"].iloc[5] == "'=cmd" and back["text"].iloc[6] == "text 6, with a comma"
    assert export.csv_bytes(frame) == b"".join(parts)


def test_iter_csv_takes_frames_in_pieces() -> None:
    pieces = (pd.DataFrame({"a": [i, i + 1]}) for i in (0, 2, 4))
    data = b"".join(export.iter_csv(pieces))
    assert pd.read_csv(io.BytesIO(data), encoding="utf-8-sig")["a"].tolist() == [0, 1, 2, 3, 4, 5]


# ---------------------------------------------------------------- codes, audit log, model


def test_human_codes_export(full) -> None:
    store, project_id, _ = full
    with store.session() as s:
        codes = export.human_codes(s, local_user(s), project_id)
    assert len(codes) == 40 and set(codes["coder"]) == {"Anna Müller", "Bob"}
    assert list(codes.columns[:4]) == ["doc_id", "coder", "label", "sample_part"]
    assert set(codes["sample_part"]) == {"dev", "test"}
    for column in ("first_label", "blind_label", "note", "codebook_version", "adjudicated"):
        assert column in codes.columns, column
    for column in ("adjudication_reason", "gold", "gold_source", "assigned", "assignment_design"):
        assert column in codes.columns, column
    assert not codes["assigned"].any() and set(codes["assignment_design"]) == {""}
    back = read_back(export.to_bytes(codes, "csv"), "csv")
    assert len(back) == 40 and "created_at" in back.columns


def test_human_codes_export_carries_the_assignment_and_the_adjudication(full) -> None:
    from distill_core.study import adjudication, assignments

    store, project_id, _ = full
    with store.session() as s:
        user = local_user(s)
        sample = validation.current_sample(s, user, project_id)
        design = assignments.Design(("Anna Müller", "Bob"), k=2, overlap=0.5, seed=1)
        assignments.assign(s, user, project_id, sample, design)
        tie = validation.gold_rule(validation.codes_frame(s, user, project_id)).ties[0]
        adjudication.adjudicate(s, user, project_id, tie, "economy", "fits definition 1")
        codes = export.human_codes(s, user, project_id)
    rows = codes[codes["doc_id"] == tie]
    assert set(rows["gold"]) == {"economy"} and set(rows["gold_source"]) == {"adjudicated"}
    assert set(rows["adjudication_reason"]) == {"fits definition 1"}
    assert set(rows["adjudicated_by"]) == {"local"}
    assert set(codes["assignment_design"]) == {
        "each text to one of 2 coders and 50% of the texts (the overlap) to 2 coders each"
    }
    assert codes["assigned"].any() and set(codes["assigned_coders"]) <= {0, 1, 2}


def test_audit_log_holds_every_answer_and_never_the_key(store) -> None:
    from distill_core.llm import Endpoint
    from distill_core.llm.openai_teacher import OpenAITeacher, RetryPolicy
    from tests.llm_server import LoopbackLLM, ServerConfig

    project_id = new_project(store, n=6)
    config = ServerConfig(keywords={"economy": "economy", "health": "health"}, api_key=SECRET)
    with LoopbackLLM(config) as server:
        endpoint = Endpoint(base_url=server.base_url, model="m", api_key=SECRET)
        teacher = OpenAITeacher(endpoint, retry=RetryPolicy(base_delay=0.001, max_delay=0.01))
        with store.session() as s:
            corpus = projects.get_corpus(s, local_user(s), project_id)
            docs = projects.load_documents(s, local_user(s), corpus.project_id, with_extra=False)
            run_id = labelling.create_run(
                s,
                teacher=teacher,
                codebook=CODEBOOK,
                n_texts=len(docs),
                project_id=project_id,
                corpus_id=corpus.id,
            ).id
        items = list(zip(docs["doc_id"], docs["text"], strict=True))
        labelling.label_texts(store, run_id, teacher, items)
    buffer = io.BytesIO()
    with store.session() as s:
        n = export.write_audit_log(s, local_user(s), project_id, buffer)
        appendix = export_appendix(s, project_id)
    text = buffer.getvalue().decode("utf-8")
    records = [json.loads(line) for line in text.splitlines()]
    assert n == len(records) == 6 and {r["run_id"] for r in records} == {run_id}
    assert SECRET not in text and "api_key" not in text and "sk-" not in text
    assert SECRET not in appendix and server.base_url.rstrip("/") in appendix


def export_appendix(session, project_id) -> str:
    buffer = io.BytesIO()
    export.export_project(session, local_user(session), project_id, "appendix-md", buffer)
    return buffer.getvalue().decode("utf-8")


def test_audit_log_without_a_run_is_one_sentence(store) -> None:
    project_id = new_project(store)
    with store.session() as s, pytest.raises(export.ExportError, match="no LLM label run"):
        export.write_audit_log(s, local_user(s), project_id, io.BytesIO())


def test_model_zip_unzips_to_a_loadable_model(tmp_path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from distill_core.student.train import train
    from tests.unit.student.test_train import TINY, easy_set

    texts, labels = easy_set(n_per_class=7)
    result = train(texts, labels, tmp_path / "model", TINY)
    data = export.model_zip(result.output_dir, root="distill-model-7")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert all(name.startswith("distill-model-7/") for name in names)
        assert {"distill-model-7/distill.json", "distill-model-7/README.md"} <= set(names)
        zf.extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped" / "distill-model-7"
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    AutoTokenizer.from_pretrained(folder)
    assert sorted(model.config.id2label.values()) == sorted(set(labels))
    buffer = io.BytesIO()
    assert export.model_zip(result.output_dir, buffer) is None
    assert zipfile.ZipFile(buffer).namelist()[0].startswith("model/")


def test_model_zip_of_a_folder_without_a_model_is_one_sentence(tmp_path) -> None:
    with pytest.raises(export.ExportError, match="not a saved model folder"):
        export.model_zip(tmp_path)


# ---------------------------------------------------------------- the export command


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A DISTILL_HOME with a SQLite store holding a filled project named 'Study'."""
    home = tmp_path / "home"
    monkeypatch.delenv("DISTILL_DATABASE_URL", raising=False)
    store = Store(f"sqlite:///{home / 'distill.db'}")
    store.migrate()
    fill_project(store, new_project(store))
    store.dispose()
    return home


@pytest.mark.parametrize("fmt", ["csv", "dta", "codes", "appendix-html"])
def test_export_command_writes_a_readable_file(home, tmp_path, capsys, fmt) -> None:
    out = tmp_path / "out" / f"study.{fmt}"
    code = cli.main(
        ["export", "--project", "Study", "--format", fmt, "--output", str(out), "--home", str(home)]
    )
    assert code == 0, capsys.readouterr().err
    if fmt in ("csv", "dta"):
        assert len(read_back(out.read_bytes(), fmt)) == N_DOCS
    elif fmt == "codes":
        assert len(read_back(out.read_bytes(), "csv")) == 40
    else:
        assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left


def test_export_command_finds_a_project_by_id(home, tmp_path) -> None:
    out = tmp_path / "a.parquet"
    assert (
        cli.main(
            [
                "export",
                "--project",
                "1",
                "--format",
                "parquet",
                "--output",
                str(out),
                "--home",
                str(home),
            ]
        )
        == 0
    )
    assert len(pd.read_parquet(out)) == N_DOCS


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--project", "Nope", "--format", "csv"], "no project named or numbered 'Nope'"),
        (["--project", "Study", "--format", "model"], "folder of model"),
    ],
)
def test_export_command_errors_are_one_line_exit_2(home, tmp_path, capsys, args, fragment) -> None:
    out = tmp_path / "x.out"
    code = cli.main(["export", *args, "--output", str(out), "--home", str(home)])
    err = capsys.readouterr().err
    assert code == cli.USAGE_ERROR and fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".x.out*"))


def test_export_command_without_a_store_is_one_line(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("DISTILL_DATABASE_URL", raising=False)
    code = cli.main(
        [
            "export",
            "--project",
            "S",
            "--format",
            "csv",
            "--output",
            str(tmp_path / "o.csv"),
            "--home",
            str(tmp_path / "none"),
        ]
    )
    assert code == cli.USAGE_ERROR and "no Distill store" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_the_command_offers_every_export_format() -> None:
    parser = cli._parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["export"]
    formats = next(a for a in sub._actions if a.dest == "format").choices
    assert tuple(formats) == tuple(export.FORMATS)


def test_labels_from_a_codebook_saved_after_the_held_out_score_was_seen_are_marked(full) -> None:
    from distill_core.store.models import CodebookVersion

    store, project_id, _info = full
    with store.session() as s:
        for version in s.query(CodebookVersion).filter_by(project_id=project_id):
            version.after_test_seen = True
    with store.session() as s:
        frame = export.labelled_corpus(s, local_user(s), project_id).set_index("doc_id")
    assert frame.loc["d1", "codebook_note"] == "after the held-out score was seen"
