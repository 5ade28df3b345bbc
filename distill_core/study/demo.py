"""The demo project: 360 short news sentences written for Distill, a policy-topic codebook and
two experts' codes of a 120-text sample (``demo_data/``), so a newcomer can click through the
whole workflow without data of their own."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from distill_core.codebook import Codebook
from distill_core.corpus import prepare_corpus, read_path
from distill_core.store.models import Membership, Project, User
from distill_core.study import projects, validation
from distill_core.study.access import Capability, check, role_of
from distill_core.study.projects import LOCAL_USERNAME

DEMO_DIR = Path(__file__).resolve().parent / "demo_data"
DEMO_PROJECT_NAME = "Demo: policy topics in news"


def demo_name(user: User) -> str:
    """Each person's own demo project on a shared instance; the local user's is the plain one."""
    return (
        DEMO_PROJECT_NAME
        if user.username == LOCAL_USERNAME
        else f"{DEMO_PROJECT_NAME} ({user.username})"
    )


def ensure_demo_project(session: Session, user: User, *, recreate: bool = False) -> Project:
    """The user's demo project (shipped corpus and codebook), created if missing or, by its
    owner, afresh (``recreate``)."""
    existing = session.scalar(select(Project).where(Project.name == demo_name(user)))
    if existing is not None:
        if not recreate:
            if role_of(session, user, existing.id) is None:
                session.add(Membership(project_id=existing.id, user_id=user.id, role="owner"))
                session.flush()
            return existing
        check(session, user, existing.id, Capability.MANAGE)
        session.delete(existing)
        session.flush()
    project = projects.create_project(
        session,
        user,
        demo_name(user),
        "360 short news sentences written for Distill, coded for their main policy topic. "
        "Click through the whole workflow with it.",
    )
    project.is_demo = True
    table = read_path(DEMO_DIR / "corpus.csv")
    prepared = prepare_corpus(table, text_column="text", id_column="id")
    projects.save_corpus(session, user, project.id, table, prepared)
    codebook = Codebook.from_json((DEMO_DIR / "codebook.json").read_text(encoding="utf-8"))
    projects.save_codebook(
        session, user, project.id, codebook, note="Shipped with the demo project."
    )
    _load_demo_codes(session, user, project.id)
    return project


def _load_demo_codes(session: Session, user: User, project_id: int) -> None:
    """The demo's human codes (two experts) and the random sample they coded, split 50/50."""
    codes = pd.read_csv(DEMO_DIR / "human_codes.csv", dtype=str)
    coded = list(dict.fromkeys(codes["id"]))
    validation.sample_from_ids(
        session,
        user,
        project_id,
        coded,
        seed=2024,
        test_share=0.5,
        details={"source": "the demo's expert codes (a simple random sample of 120 texts)"},
    )
    for row in codes.itertuples(index=False):
        validation.save_code(session, user, project_id, row.id, row.coder, row.label, source="demo")
