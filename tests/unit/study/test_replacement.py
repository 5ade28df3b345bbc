"""Replacing a corpus (SQLite and PostgreSQL): human codes and samples follow their texts by
content, never re-attach to another text under a reused id, and a file that lacks a coded text is
refused with a sentence unless the codes are deleted on purpose; held out stays held out."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from distill_core.codebook import Codebook
from distill_core.corpus import prepare_corpus, read_table
from distill_core.store import Store
from distill_core.store.models import CodeEvent, HumanCode, SampleItem
from distill_core.study import projects, validation
from distill_core.study.access import ProjectError
from distill_core.values import content_key
from tests.fakes import local_user

TEXTS = {f"d{i}": f"Text number {i} about something" for i in range(40)}


def csv(rows: dict[str, str]) -> bytes:
    return ("id,text\n" + "".join(f"{d},{t}\n" for d, t in rows.items())).encode()


def upload(store: Store, pid: int, rows: dict[str, str], **kwargs) -> None:
    table = read_table(csv(rows), "c.csv")
    with store.session() as s:
        projects.save_corpus(
            s, local_user(s), pid, table, prepare_corpus(table, "text", "id"), **kwargs
        )


def project_with_codes(store: Store) -> tuple[int, dict[str, str]]:
    """A corpus, a sample of 20 (10 held out) and one coder's code on every sample text."""
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, "R").id
    upload(store, pid, TEXTS)
    with store.session() as s:
        user = local_user(s)
        sample = validation.draw_sample(s, user, pid, n=20, seed=3, test_share=0.5)
        parts = {d.doc_id: d.part for d in validation.sample_docs(s, user, pid, sample)}
        for i, doc_id in enumerate(parts):
            validation.save_code(s, user, pid, doc_id, "ann", ["a", "b"][i % 2])
    return pid, parts


def codes_by_text(store: Store, pid: int) -> dict[str, str]:
    """Each code keyed by the text it is attached to in the current corpus."""
    with store.session() as s:
        docs = projects.load_documents(s, local_user(s), pid, with_extra=False)
        by_id = dict(zip(docs["doc_id"], docs["text"], strict=True))
        codes = validation.codes_frame(s, local_user(s), pid)
    return {by_id[d]: label for d, label in zip(codes["doc_id"], codes["label"], strict=True)}


def held_out_texts(store: Store, pid: int) -> set[str]:
    with store.session() as s:
        docs = projects.load_documents(s, local_user(s), pid, with_extra=False)
        excluded = validation.training_exclusions(s, pid)
    return {t for d, t in zip(docs["doc_id"], docs["text"], strict=True) if d in excluded}


def test_the_same_file_again_keeps_codes_sample_and_held_out_part(store: Store) -> None:
    pid, parts = project_with_codes(store)
    before, held = codes_by_text(store, pid), held_out_texts(store, pid)
    upload(store, pid, TEXTS)
    assert codes_by_text(store, pid) == before
    assert held_out_texts(store, pid) == held and len(held) == 10
    with store.session() as s:
        sample = validation.current_sample(s, local_user(s), pid)
        docs = validation.sample_docs(s, local_user(s), pid, sample)
    assert {d.doc_id: d.part for d in docs} == parts


def test_codes_follow_their_text_to_a_new_id_and_never_stay_on_a_reused_id(
    store: Store,
) -> None:
    pid, parts = project_with_codes(store)
    before, held = codes_by_text(store, pid), held_out_texts(store, pid)
    coded = list(parts)
    # New ids for every text, and the first two coded ids swap their texts.
    renamed = {f"new-{d}": t for d, t in TEXTS.items()}
    renamed[f"new-{coded[0]}"], renamed[f"new-{coded[1]}"] = TEXTS[coded[1]], TEXTS[coded[0]]
    # An old id reused for a brand-new text: the old code must not attach to it.
    renamed[coded[2]] = "A brand new text that nobody coded"
    upload(store, pid, renamed)
    assert codes_by_text(store, pid) == before
    assert held_out_texts(store, pid) == held
    with store.session() as s:
        events = set(s.scalars(select(CodeEvent.doc_id).where(CodeEvent.project_id == pid)))
        codes = set(s.scalars(select(HumanCode.doc_id).where(HumanCode.project_id == pid)))
    assert events == codes and coded[2] not in codes


def test_assignments_and_adjudications_follow_their_text_to_a_new_id(store: Store) -> None:
    from distill_core.study import adjudication, assignments

    pid, parts = project_with_codes(store)
    coded = list(parts)
    with store.session() as s:
        user = local_user(s)
        codebook = {"name": "C", "labels": [{"name": "a"}, {"name": "b"}]}
        projects.save_codebook(s, user, pid, Codebook.from_dict(codebook))
        sample = validation.current_sample(s, user, pid)
        assignments.assign(s, user, pid, sample, assignments.Design(("ann", "ben"), k=2))
        adjudication.adjudicate(s, user, pid, coded[0], "b", "reason")
    renamed = {f"new-{d}": t for d, t in TEXTS.items()}
    upload(store, pid, renamed)
    with store.session() as s:
        user = local_user(s)
        sample = validation.current_sample(s, user, pid)
        queue = assignments.coding_queue(s, user, pid, sample, "ben")
        gold = validation.gold_rule(validation.codes_frame(s, user, pid))
    assert queue.total == 20 and all(i.doc_id.startswith("new-") for i in queue.items)
    assert gold.labels[f"new-{coded[0]}"] == "b" and gold.source[f"new-{coded[0]}"] == "adjudicated"


def test_a_file_lacking_a_coded_text_is_refused_and_nothing_changes(store: Store) -> None:
    pid, parts = project_with_codes(store)
    gone = list(parts)[:3]
    smaller = {d: t for d, t in TEXTS.items() if d not in gone}
    with pytest.raises(ProjectError, match=rf"lacks 3 texts.*{gone[0]}.*3 human codes"):
        upload(store, pid, smaller)
    with store.session() as s:
        assert projects.get_corpus(s, local_user(s), pid).row_count == len(TEXTS)
        assert s.scalar(select(func.count()).select_from(HumanCode)) == 20


def test_deleting_orphaned_codes_on_purpose_keeps_their_texts_held_out(store: Store) -> None:
    pid, parts = project_with_codes(store)
    held_ids = [d for d, p in parts.items() if p == "test"]
    smaller = {d: t for d, t in TEXTS.items() if d != held_ids[0]}
    table = read_table(csv(smaller), "c.csv")
    with store.session() as s:
        plan = projects.plan_replacement(s, local_user(s), pid, prepare_corpus(table, "text", "id"))
    assert plan.orphaned == (held_ids[0],) and plan.orphaned_codes == 1
    assert any("lacks 1 texts" in line for line in plan.lines())
    upload(store, pid, smaller, delete_orphaned_codes=True)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(HumanCode)) == 19
        sample = validation.current_sample(s, local_user(s), pid)
        assert validation.part_counts(s, local_user(s), pid, sample) == {"dev": 10, "test": 9}
    # The text comes back under another id in a later upload: it is still held out.
    upload(store, pid, smaller | {"back": TEXTS[held_ids[0]]})
    with store.session() as s:
        assert "back" in validation.training_exclusions(s, pid)


def test_the_migration_gives_existing_sample_items_their_content_keys(store: Store) -> None:
    from alembic import command

    from distill_core.store.db import alembic_config

    project_with_codes(store)
    with store.session() as s:
        written = dict(s.execute(select(SampleItem.doc_id, SampleItem.content_key)).tuples().all())
    with store.engine.begin() as connection:  # back to before the keys, and forward again
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")
    store.migrate()
    with store.session() as s:
        migrated = dict(s.execute(select(SampleItem.doc_id, SampleItem.content_key)).tuples().all())
    assert migrated == written and len(written) == 20
    assert written["d1"] == content_key("  TEXT number 1 about   something ")
