"""Offline estimate of the tokens and dollars an LLM labelling run will use, before it starts.

Token counting rule (rough but offline; tiktoken would need to download its files): a message
costs ``ceil(characters / 4) + 4`` tokens and every request ``+ 3`` for the reply's priming —
OpenAI's rule of thumb of ~4 characters per token for English plus its documented per-message
overhead. Expect about ±20 % for English prose; languages with many non-Latin characters use
more tokens than this counts. Output is ~``completion_tokens_per_answer`` per answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from distill_core.codebook import Codebook, render_messages

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
TOKENS_PER_REQUEST = 3
COMPLETION_TOKENS_PER_ANSWER = 10


@dataclass(frozen=True)
class Price:
    """US dollars per million input (prompt) and output (completion) tokens."""

    input_per_million: float
    output_per_million: float


#: List prices in USD per 1M tokens, as of 2026 — edit to yours (contracts, Azure and batch
#: discounts differ). A model not listed costs 0 and is flagged as unknown.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5": Price(1.25, 10.00),
    "o4-mini": Price(1.10, 4.40),
    "o3": Price(2.00, 8.00),
}


@dataclass(frozen=True)
class Estimate:
    """Expected usage of a run; ``price_known`` is False when the model has no price (cost 0)."""

    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    n_requests: int
    model: str = ""
    price_known: bool = True


def count_tokens(text: str) -> int:
    """Rough token count of a string: ceil(characters / 4) (see the module docstring)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def count_message_tokens(messages: Iterable[Mapping[str, str]]) -> int:
    """Rough prompt tokens of one chat request: per message content + 4, plus 3 per request."""
    return TOKENS_PER_REQUEST + sum(
        count_tokens(str(m.get("content") or "")) + TOKENS_PER_MESSAGE for m in messages
    )


def price_for(model: str, prices: Mapping[str, Price] | None = None) -> Price | None:
    """The price of ``model``: an exact entry, else the longest listed name it starts with
    (so "gpt-4o-mini-2024-07-18" is priced as "gpt-4o-mini"); ``None`` when unknown."""
    table = DEFAULT_PRICES if prices is None else prices
    name = model.strip().lower().removeprefix("openai/")
    if name in table:
        return table[name]
    matches = [key for key in table if name.startswith(key)]
    return table[max(matches, key=len)] if matches else None


def cost_of(
    usage_prompt: int,
    usage_completion: int,
    model: str,
    prices: Mapping[str, Price] | None = None,
) -> float:
    """Dollars for the given token counts at ``model``'s price (0.0 when the model is unknown)."""
    price = price_for(model, prices)
    if price is None:
        return 0.0
    return (
        usage_prompt * price.input_per_million + usage_completion * price.output_per_million
    ) / 1_000_000


def estimate(
    codebook: Codebook,
    texts: Iterable[str],
    model: str,
    repeats: int = 1,
    prices: Mapping[str, Price] | None = None,
    *,
    structured: bool = True,
    completion_tokens_per_answer: int = COMPLETION_TOKENS_PER_ANSWER,
) -> Estimate:
    """Tokens and cost of asking every text ``repeats`` times, counted without any network.

    Prompt tokens are those of ``render_messages`` per text (the rule above) × repeats; output
    is ``completion_tokens_per_answer`` per request. Re-asks of off-codebook answers and
    retries are not included, so treat it as a lower bound on a bad day.
    """
    repeats = max(1, int(repeats))
    prompt_per_pass = 0
    n_texts = 0
    for text in texts:
        prompt_per_pass += count_message_tokens(
            render_messages(codebook, text, structured=structured)
        )
        n_texts += 1
    n_requests = n_texts * repeats
    prompt = prompt_per_pass * repeats
    completion = n_requests * completion_tokens_per_answer
    known = price_for(model, prices) is not None
    return Estimate(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost_of(prompt, completion, model, prices),
        n_requests=n_requests,
        model=model,
        price_known=known,
    )
