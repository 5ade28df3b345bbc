"""Small stand-ins shared by tests: a teacher that needs no network or model."""

from __future__ import annotations

from distill_core import labeling, projects, validation
from distill_core.codebook import Codebook
from distill_core.llm.base import Answer
from distill_core.store import Store


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


def label_sample(store: Store, project_id: int, label: str = "economy") -> int:
    """An LLM run over the project's validation sample by ``FixedTeacher``; returns its id."""
    with store.session() as s:
        cb = Codebook.from_dict(projects.latest_codebook(s, project_id).content)
        sample = validation.current_sample(s, project_id)
        items = [(d.doc_id, d.text) for d in validation.sample_docs(s, sample)]
        run_id = labeling.create_run(
            s,
            teacher=FixedTeacher(label),
            codebook=cb,
            n_texts=len(items),
            project_id=project_id,
            corpus_id=sample.corpus_id,
        ).id
    labeling.label_texts(store, run_id, FixedTeacher(label), items)
    return run_id


class MappingTeacher(FixedTeacher):
    """Answers a label looked up by text (``default`` for other texts), like an LLM that is
    right on some texts and wrong on others; no network."""

    name = "mapping"

    def __init__(self, by_text: dict[str, str], default: str) -> None:
        super().__init__(default)
        self.by_text = by_text

    def params(self):
        return {"model": "mapping"}

    async def ask(self, codebook, text, *, repeat_index=0):
        label = self.by_text.get(text, self.label)
        return Answer(label=label, status="ok", raw=f'{{"label": "{label}"}}', attempts=1)
