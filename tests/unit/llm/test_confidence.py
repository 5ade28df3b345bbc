"""Confidence as a probability among the codebook's labels, from token logprobs."""

from __future__ import annotations

import math

import pytest

from distill_core.llm.openai_teacher import TokenLogprob, _read_logprobs, label_confidence

LABELS = ["health", "economy", "defense"]


def tok(token: str, p: float, *alternatives: tuple[str, float]) -> TokenLogprob:
    """A token chosen with probability ``p`` and its top alternatives (token, probability)."""
    top = [(token, p), *alternatives]
    return TokenLogprob(token, math.log(p), tuple((t, math.log(q)) for t, q in top))


def json_answer(*value_tokens: TokenLogprob) -> tuple[str, list[TokenLogprob]]:
    """A JSON answer {"label": "<value tokens>"} with near-certain syntax tokens around."""
    tokens = [tok('{"', 1.0), tok("label", 1.0), tok('":', 1.0), tok(' "', 1.0)]
    tokens += [*value_tokens, tok('"}', 1.0)]
    return "".join(t.token for t in tokens), tokens


def test_renormalised_over_the_labels_at_the_first_token_of_the_value():
    raw, tokens = json_answer(
        tok("health", 0.6, ("economy", 0.2), ("defense", 0.1), ("hello", 0.05))
    )
    # "hello" continues no label: renormalised away; 0.6 / (0.6 + 0.2 + 0.1).
    assert label_confidence(raw, tokens, LABELS, "health") == pytest.approx(0.6 / 0.9)


def test_labels_whose_first_tokens_collide_are_split_at_the_next_token():
    labels = ["economy", "economic", "health"]
    raw, tokens = json_answer(
        tok("econ", 0.8, ("health", 0.2)),
        tok("omy", 0.75, ("omic", 0.25)),
    )
    # The shared "econ" is the group's share (0.8), "omy" the share within it (0.75).
    assert label_confidence(raw, tokens, labels, "economy") == pytest.approx(0.8 * 0.75)


def test_a_label_that_begins_another_is_told_apart_by_the_end_of_the_value():
    labels = ["health", "health care", "economy"]
    raw, tokens = json_answer(tok("health", 0.9, ("economy", 0.1)))
    tokens[-1] = tok('"}', 0.7, (" care", 0.3))
    assert label_confidence(raw, tokens, labels, "health") == pytest.approx(0.9 * 0.7)


def test_a_plain_answer_that_ends_while_two_labels_are_possible_gets_their_share():
    labels = ["health", "health care", "economy"]
    tokens = [tok("health", 0.9, ("economy", 0.1))]
    assert label_confidence("health", tokens, labels, "health") == pytest.approx(0.9)


def test_a_plain_answer_in_another_case_and_split_in_pieces():
    tokens = [tok("Def", 0.5, ("Health", 0.3), ("Econ", 0.1)), tok("ense", 0.99)]
    assert label_confidence("Defense", tokens, LABELS, "defense") == pytest.approx(0.5 / 0.9)


def test_a_token_reaching_into_the_value_is_read_after_its_first_characters():
    merged = [tok('{"label": "heal', 0.4, ('{"label": "def', 0.4), ('{"label": "', 0.2))]
    merged += [tok('th"}', 1.0)]
    raw = "".join(t.token for t in merged)
    assert raw == '{"label": "health"}'
    # '{"label": "' alone continues no label yet: left out; 0.4 / (0.4 + 0.4).
    assert label_confidence(raw, merged, LABELS, "health") == pytest.approx(0.5)


def test_a_chosen_token_missing_from_its_top_list_still_counts():
    sampled = TokenLogprob("defense", math.log(0.05), (("health", math.log(0.9)),))
    assert label_confidence("defense", [sampled], LABELS, "defense") == pytest.approx(0.05 / 0.95)


@pytest.mark.parametrize(
    ("raw", "tokens", "label"),
    [
        ("health", [], "health"),  # no logprobs
        ("health", [TokenLogprob("health", -0.1)], "health"),  # no top_logprobs
        ("health", [tok("x", 0.5), tok("y", 0.5)], "health"),  # tokens do not spell it
        ("unsure", [tok("unsure", 0.9, ("health", 0.1))], None),  # not a label
    ],
)
def test_none_when_it_cannot_be_a_probability_among_the_labels(raw, tokens, label):
    assert label_confidence(raw, tokens, LABELS, label) is None


def test_a_one_label_codebook_is_certain():
    assert label_confidence("x", [tok("x", 0.3)], ["x"], "x") == 1.0


def test_both_logprob_shapes_are_read():
    chat = {
        "content": [
            {
                "token": "health",
                "logprob": -0.5,
                "top_logprobs": [
                    {"token": "health", "logprob": -0.5},
                    {"token": "economy", "logprob": -1.5},
                ],
            },
            {"token": "bad", "logprob": None},
        ]
    }
    legacy = {
        "tokens": ["health"],
        "token_logprobs": [-0.5],
        "top_logprobs": [{"economy": -1.5, "health": -0.5}],
    }
    expected = [TokenLogprob("health", -0.5, (("health", -0.5), ("economy", -1.5)))]
    assert _read_logprobs(chat) == expected
    assert _read_logprobs(legacy) == expected
    assert _read_logprobs(None) == [] and _read_logprobs({"content": None}) == []
