"""Offline token and cost estimates."""

from __future__ import annotations

import math

import pytest

from distill_core.codebook import Codebook, Label, render_messages
from distill_core.llm.cost import (
    DEFAULT_PRICES,
    Price,
    cost_of,
    count_message_tokens,
    count_tokens,
    estimate,
    price_for,
)

CB = Codebook(
    name="T", instructions="Pick one.", labels=(Label("a", "first"), Label("b", "second"))
)


def test_count_tokens_is_chars_over_four_rounded_up():
    assert count_tokens("") == 0
    assert count_tokens("abcd") == 1
    assert count_tokens("abcde") == 2
    msgs = [{"role": "system", "content": "x" * 40}, {"role": "user", "content": "y" * 9}]
    assert count_message_tokens(msgs) == 3 + (10 + 4) + (3 + 4)


def test_estimate_counts_rendered_prompts_times_repeats():
    texts = ["short", "a much longer text " * 20]
    one = estimate(CB, texts, "gpt-4o-mini", repeats=1)
    three = estimate(CB, texts, "gpt-4o-mini", repeats=3)
    expected_prompt = sum(count_message_tokens(render_messages(CB, t)) for t in texts)
    assert one.prompt_tokens == expected_prompt
    assert one.n_requests == 2 and one.completion_tokens == 20
    assert three.prompt_tokens == 3 * expected_prompt and three.n_requests == 6
    assert three.cost_usd == pytest.approx(3 * one.cost_usd)
    price = DEFAULT_PRICES["gpt-4o-mini"]
    assert one.cost_usd == pytest.approx(
        (expected_prompt * price.input_per_million + 20 * price.output_per_million) / 1e6
    )
    assert one.price_known


def test_unknown_model_costs_zero_and_is_flagged():
    est = estimate(CB, ["x"], "llama3.1:8b")
    assert est.cost_usd == 0.0 and est.price_known is False and est.prompt_tokens > 0
    assert cost_of(1000, 1000, "llama3.1:8b") == 0.0


def test_price_lookup_by_longest_prefix_and_custom_table():
    assert price_for("gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["gpt-4o-mini"]
    assert price_for("gpt-4o-2024-08-06") == DEFAULT_PRICES["gpt-4o"]
    assert price_for("gpt-4.1-mini") == DEFAULT_PRICES["gpt-4.1-mini"]
    table = {"my-model": Price(1.0, 2.0)}
    assert cost_of(1_000_000, 500_000, "my-model", table) == pytest.approx(2.0)
    assert price_for("gpt-4o", table) is None


def test_a_million_tokens_costs_the_list_price():
    for name, price in DEFAULT_PRICES.items():
        assert math.isclose(cost_of(1_000_000, 0, name), price.input_per_million)
        assert math.isclose(cost_of(0, 1_000_000, name), price.output_per_million)
