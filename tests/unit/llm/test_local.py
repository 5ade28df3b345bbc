"""The offline local baseline teacher (bundled MiniLM; no network, no key)."""

from __future__ import annotations

import asyncio

import pytest

from distill_core.codebook import Codebook, Example, Label
from distill_core.llm import run_items
from distill_core.llm.local import LocalTeacher, scores

CODEBOOK = Codebook(
    name="Topics",
    instructions="Pick the topic of the sentence.",
    labels=(
        Label("sports", "Games, teams, athletes, matches and competitions."),
        Label("weather", "Rain, snow, temperature, storms and forecasts."),
        Label("cooking", "Recipes, food, baking and kitchens."),
    ),
)
OBVIOUS = {
    "The team won the championship match last night.": "sports",
    "Heavy rain and strong winds are forecast for tomorrow.": "weather",
    "Bake the bread at 200 degrees for forty minutes.": "cooking",
    "The striker scored two goals in the final.": "sports",
}


@pytest.fixture(scope="module")
def teacher() -> LocalTeacher:
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")  # prove that nothing is fetched
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    yield LocalTeacher()
    mp.undo()


def test_labels_obvious_texts_sensibly_offline(teacher):
    answers = teacher.label_texts(CODEBOOK, list(OBVIOUS))
    right = sum(a.label == gold for a, gold in zip(answers, OBVIOUS.values(), strict=True))
    assert right >= 3
    for a in answers:
        assert a.status == "ok" and a.raw == a.label and a.label in CODEBOOK.label_names
        assert 1 / 3 < a.confidence <= 1.0  # the argmax of a softmax over 3 labels
        assert a.prompt_tokens == a.completion_tokens == 0 and a.error is None


def test_is_labelled_as_a_weak_baseline(teacher):
    assert "weak" in teacher.display_name and "baseline" in teacher.display_name
    assert teacher.name == "local"
    assert "MiniLM" in teacher.params()["model"]


def test_ask_through_the_runner_batches_and_is_deterministic(teacher):
    items = [(f"{i}-{j}", text) for j in range(5) for i, text in enumerate(OBVIOUS)]
    got = {}
    stats = asyncio.run(
        run_items(
            teacher,
            CODEBOOK,
            items,
            repeats=2,
            concurrency=8,
            on_answer=lambda key, r, a: got.__setitem__((key, r), a),
        )
    )
    assert stats.requested == len(items) * 2 == len(got) and stats.ok == stats.requested
    direct = {a.request["text"]: a.label for a in teacher.label_texts(CODEBOOK, list(OBVIOUS))}
    for answer in got.values():
        assert answer.label == direct[answer.request["text"]]


def test_examples_pull_a_label_towards_them(teacher):
    text = "Grandma's secret: a pinch of nutmeg."
    base = teacher.label_texts(CODEBOOK, [text])[0]
    with_examples = Codebook(
        name=CODEBOOK.name,
        instructions=CODEBOOK.instructions,
        labels=CODEBOOK.labels,
        examples=(
            Example("Grandma's secret: a pinch of salt.", "weather"),
            Example("Grandma's secret: a pinch of pepper.", "weather"),
        ),
    )
    pulled = teacher.label_texts(with_examples, [text])[0]
    assert base.label == "cooking"
    assert pulled.label == "weather"


def test_scores_are_argmax_and_softmax():
    import numpy as np

    texts = np.array([[1.0, 0.0], [0.0, 1.0]])
    labels = np.array([[1.0, 0.0], [0.6, 0.8]])
    best, conf = scores(texts, labels, temperature=0.05)
    assert list(best) == [0, 1]
    # sims row 0: (1.0, 0.6) -> softmax at T=0.05: 1 / (1 + e^-8)
    assert conf[0] == pytest.approx(1 / (1 + np.exp(-8)))
