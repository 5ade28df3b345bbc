"""Small stand-ins shared by tests: a teacher that needs no network or model."""

from __future__ import annotations

from distill_core.codebook import Codebook
from distill_core.llm.base import Answer
from distill_core.store import Store
from distill_core.study import demo, labelling, projects, validation


class FixedTeacher:
    """Answers the same label for every text (no network), to give a project an LLM run."""

    name = "fixed"

    def __init__(self, label: str = "economy") -> None:
        self.label = label

    def params(self):
        return {"model": f"fixed-{self.label}"}

    def set_concurrency(self, n):
        pass

    async def ask(self, codebook, text, *, repeat_index=0):
        return Answer(label=self.label, status="ok", raw=f'{{"label": "{self.label}"}}', attempts=1)

    async def aclose(self):
        pass


def label_sample(
    store: Store, project_id: int, label: str = "economy", *, user: str | None = None
) -> int:
    """An LLM run over the project's validation sample by ``FixedTeacher`` (as the project's
    member ``user``, the local user by default); returns its id."""
    with store.session() as s:
        who = projects.ensure_user(s, user) if user else local_user(s)
        version = projects.latest_codebook(s, who, project_id)
        cb = Codebook.from_dict(version.content)
        sample = validation.current_sample(s, who, project_id)
        items = [(d.doc_id, d.text) for d in validation.sample_docs(s, who, project_id, sample)]
        run_id = labelling.create_run(
            s,
            teacher=FixedTeacher(label),
            codebook=cb,
            n_texts=len(items),
            project_id=project_id,
            corpus_id=sample.corpus_id,
            codebook_version_id=version.id,
        ).id
    labelling.label_texts(store, run_id, FixedTeacher(label), items)
    return run_id


class MappingTeacher(FixedTeacher):
    """Answers a label looked up by text (``default`` for other texts), like an LLM that is
    right on some texts and wrong on others, always with confidence 0.5; no network."""

    name = "mapping"

    def __init__(self, by_text: dict[str, str], default: str) -> None:
        super().__init__(default)
        self.by_text = by_text

    def params(self):
        return {"model": "mapping"}

    async def ask(self, codebook, text, *, repeat_index=0):
        label = self.by_text.get(text, self.label)
        return Answer(
            label=label, status="ok", raw=f'{{"label": "{label}"}}', confidence=0.5, attempts=1
        )


class _HalfInvalid(MappingTeacher):
    """Right on coded texts, 'other' elsewhere, and an off-codebook answer on every 10th text."""

    async def ask(self, codebook, text, *, repeat_index=0):
        if sum(map(ord, text)) % 10 == 0:
            return Answer(label=None, status="invalid", raw="politics", attempts=2)
        return await super().ask(codebook, text, repeat_index=repeat_index)


def demo_with_run(store: Store) -> tuple[int, int]:
    """The demo project (360 texts, 120 coded, 60 of them held out) and an LLM run over it."""
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = demo.ensure_demo_project(s, user).id
        docs = projects.load_documents(s, local_user(s), pid, with_extra=False)
        gold, _ = validation.gold_labels(validation.codes_frame(s, local_user(s), pid))
        by_text = {
            t: gold[d] for d, t in zip(docs["doc_id"], docs["text"], strict=True) if d in gold
        }
    return pid, label_corpus(store, pid, _HalfInvalid(by_text, "other"))


def label_corpus(store: Store, pid: int, teacher) -> int:
    """An LLM run of ``teacher`` over every text of the project's corpus; returns its id."""
    with store.session() as s:
        corpus = projects.get_corpus(s, local_user(s), pid)
        docs = projects.load_documents(s, local_user(s), corpus.project_id, with_extra=False)
        version = projects.latest_codebook(s, local_user(s), pid)
        cb = Codebook.from_dict(version.content)
        run_id = labelling.create_run(
            s,
            teacher=teacher,
            codebook=cb,
            n_texts=len(docs),
            project_id=pid,
            corpus_id=corpus.id,
            codebook_version_id=version.id,
        ).id
        items = list(zip(docs["doc_id"], docs["text"], strict=True))
    labelling.label_texts(store, run_id, teacher, items)
    return run_id


def add_ready_model(
    store: Store,
    project_id: int,
    run_id: int,
    *,
    corpus_pass: bool = False,
    predict=None,
):
    """A ready student record with a comparison in which the LLM is right on every held-out
    text and the student always says "other" (no training: for page tests), and optionally a
    corpus pass with the same predictions. ``predict`` (the held-out truth → {row key:
    predictions}) gives the comparison those rows instead, and the corpus pass the
    student_llm row's way of predicting. Returns the held-out doc ids scored."""
    from distill_core.clock import utcnow
    from distill_core.store import Prediction, PredictionRun, StudentModel
    from distill_core.study import comparison, students

    with store.session() as s:
        ts = students.training_set(s, local_user(s), project_id, run_id)
        gold, _ = validation.gold_labels(validation.codes_frame(s, local_user(s), project_id))
        eval_ids = sorted(validation.training_exclusions(s, project_id) & set(gold))
        truth = [gold[d] for d in eval_ids]
        predicted = predict(truth) if predict else {"student_llm": ["other"] * len(truth)}
        rows = [comparison._row("llm", truth, truth, ts.label_names, None, "").to_dict()] + [
            comparison._row(key, truth, pred, ts.label_names, 250, "").to_dict()
            for key, pred in predicted.items()
        ]
        corpus = projects.get_corpus(s, local_user(s), project_id)
        model = StudentModel(
            project_id=project_id,
            corpus_id=corpus.id,
            label_run_id=run_id,
            status="ready",
            base_model=students.DEFAULT_BASE,
            path=f"{project_id}/1",
            meta={
                "labels": ts.label_names,
                "n_train": 250,
                "n_val": 28,
                "best_epoch": 2,
                "max_length": 48,
                "train_seconds": 12.5,
                "history": [
                    {"epoch": 1, "train_loss": 1.9, "val_macro_f1": 0.2},
                    {"epoch": 2, "train_loss": 1.2, "val_macro_f1": 0.4},
                ],
            },
            comparison={
                "eval": {"part": "test", "n": len(eval_ids), "gold": "majority of coders"},
                "rows": rows,
            },
            finished_at=utcnow(),
        )
        s.add(model)
        s.flush()
        if corpus_pass:
            docs = projects.load_documents(s, local_user(s), corpus.project_id, with_extra=False)
            k = len(ts.label_names)
            run = PredictionRun(
                project_id=project_id,
                model_id=model.id,
                corpus_id=corpus.id,
                status="done",
                labels={"labels": ts.label_names},
                n=len(docs),
                seconds=3.0,
                finished_at=utcnow(),
            )
            s.add(run)
            s.flush()
            labels = ["other"] * len(docs)
            if predict:
                from distill_core.study import runs

                results = runs.run_results(s, local_user(s), project_id, run_id)
                truth_of = {r.doc_id: r.label for r in results if r.label} | gold
                labels = predict([truth_of.get(d, "other") for d in docs["doc_id"]])["student_llm"]
            for doc_id, label in zip(docs["doc_id"], labels, strict=True):
                j = ts.label_names.index(label)
                probs = [0.9 if i == j else 0.1 / (k - 1) for i in range(k)]
                s.add(
                    Prediction(
                        run_id=run.id, doc_id=doc_id, label=label, confidence=0.9, probs=probs
                    )
                )
    return eval_ids


def local_user(session):
    """The local user (single-user mode's only user, owner of the projects tests make)."""
    return projects.ensure_user(session)


def local_user_id(store) -> int:
    """The local user's id, for core functions that open their own sessions."""
    with store.session() as s:
        return projects.ensure_user(s).id
