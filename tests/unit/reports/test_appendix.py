"""The methods appendix: every figure in both renderings, the sentences a paper needs, the
figures equal to the stored comparison and to a direct computation, escaping, and no key."""

from __future__ import annotations

import html

import pytest

from distill_core import agreement
from distill_core.codebook import Codebook
from distill_core.reports import appendix, formatting
from distill_core.store import StudentModel
from distill_core.study import demo, projects, runs, scoring, validation
from tests.fakes import local_user
from tests.unit.reports.test_export import LABELS, fill_project, llm_label, new_project


def build(store, project_id) -> appendix.Appendix:
    with store.session() as s:
        return appendix.methods_appendix(s, local_user(s), project_id)


def assert_every_figure_shown(result: appendix.Appendix) -> None:
    assert result.figures
    for key, value in result.figures.items():
        assert value in result.markdown, key
        assert html.escape(value) in result.html, key


@pytest.fixture
def full(store):
    project_id = new_project(store)
    info = fill_project(store, project_id)
    return store, project_id, info


def test_every_figure_of_a_full_project_appears_in_both_renderings(full) -> None:
    store, project_id, info = full
    result = build(store, project_id)
    assert_every_figure_shown(result)
    f = result.figures
    with store.session() as s:
        gold, _ = validation.gold_labels(validation.codes_frame(s, local_user(s), project_id))
    n_test_coded = sum(d in gold for d in info["test_ids"])  # coders tie on the others
    assert f["corpus.n_texts"] == "30" and f["codebook.version"] == "1"
    assert (f["sample.n"], f["sample.dev"], f["sample.test"], f["sample.seed"]) == (
        "20",
        "10",
        "10",
        "2024",
    )
    assert (f["llm.n_labelled"], f["llm.ok"], f["llm.invalid"]) == ("30", "29", "1")
    assert f["llm.prompt_tokens"] == "12,345" and f["llm.cost_usd"] == "0.42"
    assert f["student.n_train"] == "17" and f["comparison.n"] == str(n_test_coded)
    assert "intercoder.alpha" in f and "intercoder.Anna Müller|Bob.kappa" in f
    for key in ("naive", "corrected", "sample_only"):  # corrected shares, every label
        assert all(f"shares.{label}.{key}" in f for label in LABELS)
    md = result.markdown
    assert (
        "20 texts coded before Distill were imported and split into a development part (10) "
        "and a held-out test part (10) at random (seed 2024)." in md
    )
    assert "## Codebook" in md and "**economy**: Taxes, jobs, prices." in md
    assert "> Pick the one topic that fits best." in md
    assert "Produced with Distill" in md


def test_comparison_figures_are_the_stored_ones_with_their_intervals(full) -> None:
    store, project_id, _ = full
    with store.session() as s:
        model = s.get(StudentModel, fill_project_model_id(s, project_id))
        rows = {r["key"]: r["metrics"] for r in model.comparison["rows"]}
    result = build(store, project_id)
    for key in ("llm", "student_llm"):
        m = rows[key]
        expected = formatting.fmt_ci(m["macro_f1"], m["ci"]["macro_f1"])
        assert result.figures[f"comparison.{key}.macro_f1"] == expected
        assert "(95% CI " in expected and expected in result.markdown
    llm = rows["llm"]
    assert result.figures["llm_test.accuracy"] == formatting.fmt_ci(
        llm["accuracy"], llm["ci"]["accuracy"]
    )
    assert result.figures["llm_test.n"] == str(llm["n"])


def fill_project_model_id(session, project_id) -> int:
    from distill_core.study import students

    return students.latest_model(session, local_user(session), project_id).id


def test_llm_test_agreement_is_computed_when_no_student_was_compared(full) -> None:
    store, project_id, info = full
    with store.session() as s:
        s.delete(s.get(StudentModel, info["model_id"]))
    result = build(store, project_id)
    with store.session() as s:
        gold, _ = validation.gold_labels(validation.codes_frame(s, local_user(s), project_id))
    ids = [d for d in info["test_ids"] if d in gold]
    expected = agreement.compare(
        [gold[d] for d in ids],
        [llm_label(int(d[1:])) for d in ids],
        labels=LABELS,
        n_boot=scoring.N_BOOT,
        seed=scoring.BOOT_SEED,
    )
    assert result.figures["llm_test.n"] == str(expected.n)
    assert result.figures["llm_test.macro_f1"] == formatting.fmt_ci(
        expected.macro_f1, expected.ci["macro_f1"]
    )
    assert "No student model has been trained yet." in result.markdown
    assert_every_figure_shown(result)


def test_the_endpoint_is_shown_without_credentials(full) -> None:
    store, project_id, _ = full
    result = build(store, project_id)
    assert "https://llm.example.org/v1" in result.markdown
    for secret in ("user:pw", "token=abc"):
        assert secret not in result.markdown and secret not in result.html


def test_a_project_with_only_a_corpus_says_what_is_missing(store) -> None:
    project_id = new_project(store)
    result = build(store, project_id)
    assert "No LLM label run has results yet." in result.markdown
    assert "No validation sample has been drawn yet." in result.markdown
    assert "No student model has been trained yet." in result.markdown
    assert result.figures["corpus.n_texts"] == "30"
    assert_every_figure_shown(result)


def test_a_random_sample_is_described_with_its_seed_and_parts(store) -> None:
    project_id = new_project(store)
    with store.session() as s:
        user = projects.ensure_user(s)
        validation.draw_sample(s, user, project_id, n=12, seed=7, test_share=0.5)
    md = build(store, project_id).markdown
    assert (
        "A simple random sample of 12 texts was drawn (seed 7) and split into a development "
        "part (6) and a held-out test part (6)." in md
    )


def test_html_is_escaped_and_self_contained(store) -> None:
    project_id = new_project(store)
    evil = Codebook.from_dict(
        {
            "name": "Topics <b>",
            "instructions": "Read & decide.",
            "labels": [
                {"name": "a|b", "definition": "<script>alert(1)</script>"},
                {"name": "other", "definition": "Anything else."},
            ],
        }
    )
    with store.session() as s:
        projects.save_codebook(s, projects.ensure_user(s), project_id, evil)
    result = build(store, project_id)
    page = result.html
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Read &amp; decide." in page and "Topics &lt;b&gt;" in page
    assert "http://" not in page.replace("http://www.w3.org", "")  # nothing fetched
    assert "**a|b**: <script>alert(1)</script>" in result.markdown


def test_markdown_tables_escape_pipes_and_newlines() -> None:
    block = ("table", ["A", "B"], [["x|y", "two\nlines"]])
    assert appendix._md_block(block) == "| A | B |\n|---|---|\n| x\\|y | two lines |"


def test_formatting_of_intervals_and_shares() -> None:
    assert formatting.fmt_ci(0.71234, [0.65, 0.78]) == "0.712 (95% CI 0.650–0.780)"
    assert formatting.fmt_ci(0.5, None) == "0.500"
    assert formatting.fmt_ci(float("nan"), [0.1, 0.2]) == "n/a (95% CI 0.100–0.200)"
    assert formatting.fmt_share(0.1234, (0.1, 0.15)) == "12.3% (95% CI 10.0–15.0%)"


def test_the_demo_project_appendix(store) -> None:
    with store.session() as s:
        project = demo.ensure_demo_project(s, projects.ensure_user(s))
        result = appendix.methods_appendix(s, local_user(s), project.id)
        assert not runs.project_runs(s, local_user(s), project.id)
    assert result.figures["corpus.n_texts"] == "360" and result.figures["sample.n"] == "120"
    assert "Krippendorff's α" in result.markdown
    assert_every_figure_shown(result)


def test_a_share_the_coded_texts_only_bound_never_reads_as_a_certain_zero() -> None:
    assert formatting.fmt_bounded_share(0.0, (0.0, 0.036), True) == "≤ 3.6% (exact 95% bound)"
    assert formatting.fmt_bounded_share(0.1, (0.05, 0.15), False) == formatting.fmt_share(
        0.1, (0.05, 0.15)
    )


def test_figures_from_a_codebook_saved_after_the_held_out_score_was_seen_are_marked(full) -> None:
    from distill_core.store.models import LabelRun

    store, project_id, _ = full
    with store.session() as s:
        user = local_user(s)
        sample = validation.current_sample(s, user, project_id)
        validation.mark_test_seen(s, user, project_id, sample.id, 1)
        book = projects.as_codebook(projects.latest_codebook(s, user, project_id)).to_dict()
        book["instructions"] += " Revised after the look."
        v2 = projects.save_codebook(
            s, user, project_id, Codebook.from_dict(book), after_seen_confirmed=True
        ).version
        for run in s.query(LabelRun).filter_by(project_id=project_id):
            run.codebook_version_id = v2.id  # the reported run used the revised codebook
    md = build(store, project_id).markdown
    assert "Codebook version v2 was saved after a held-out score had been seen" in md
    assert "codebook v2 (after the held-out score was seen): codebook v2 was saved" in md
    assert md.count("codebook v2 (after the held-out score was seen)") >= 2  # the runs' table


def test_the_appendix_follows_the_reviewers_checklist(full) -> None:
    """Every section of the appendix has its entry in docs/reviewer-checklist.md, in order."""
    from pathlib import Path

    checklist = (Path(__file__).resolve().parents[3] / "docs" / "reviewer-checklist.md").read_text(
        encoding="utf-8"
    )
    headings = [line[3:].strip() for line in checklist.splitlines() if line.startswith("## ")]
    store, project_id, _ = full
    shown = [line[3:].strip() for line in build(store, project_id).markdown.splitlines()
             if line.startswith("## ")]
    assert len(shown) >= 8 and set(shown) <= set(headings)
    assert shown == [h for h in headings if h in shown]


def test_the_human_validation_section_carries_the_design_the_adjudications_and_the_ties(
    full,
) -> None:
    from distill_core.study import adjudication, assignments

    store, project_id, _ = full
    with store.session() as s:
        user = local_user(s)
        sample = validation.current_sample(s, user, project_id)
        design = assignments.Design(("Anna Müller", "Bob"), k=2, overlap=0.2, seed=5)
        assignments.assign(s, user, project_id, sample, design)
        ties = validation.gold_rule(validation.codes_frame(s, user, project_id)).ties
        adjudication.adjudicate(s, user, project_id, ties[0], "economy", "definition 1")
    result = build(store, project_id)
    assert_every_figure_shown(result)
    f, md = result.figures, result.markdown
    assert (f["assignment.k"], f["assignment.overlap"], f["assignment.n_overlap"]) == (
        "2",
        "20%",
        "4",
    )
    assert "each text to one of 2 coders and 20% of the texts (the overlap) to 2 coders" in md
    assert "coded blind: no other coder's code and no LLM label" in md
    assert f["gold.adjudicated"] == "1" and f["gold.ties"] == str(len(ties) - 1)
    assert "the code an expert adjudicated where its coders disagreed (1 text;" in md
    assert all(t in md for t in ties[1:])  # the ties left out are listed, not dropped
    assert f["intercoder.n"] == "20" and "on the 20 texts coded by two or more coders" in md
    for key in ("alpha", "fleiss_kappa", "gwet_ac1", "percent_agreement"):
        assert "(95% CI " in f[f"intercoder.{key}"], key
    assert "(95% CI " in f["intercoder.Anna Müller|Bob.kappa"]
    assert all(f"intercoder.{label}.gwet_ac1" in f for label in LABELS)  # per category
    assert "| Category | Codes | Specific agreement |" in md
