"""The LLM teacher: any OpenAI-compatible chat-completions endpoint (OpenAI, Azure, vLLM, Ollama...).

One text per request, rendered by ``codebook.render_messages``. Structured output
(``response_format`` json_schema) and token logprobs are asked for and dropped for the rest of
the run when a server rejects them. Failed requests are retried here (``max_retries=0`` on the
client) with exponential backoff and full jitter, honouring ``Retry-After``. An answer that is
not a codebook label is asked again once, then recorded as ``invalid``. Every failure a user
can cause is described by one sentence from ``describe_error``; the API key never appears in a
record, a repr or a message (messages go through ``keys.mask``). Before its first request a
teacher checks its base URL against ``llm.policy`` (a refused URL is never called), and it
follows no redirect (a public server could redirect to an internal address).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import openai

from distill_core.clock import utcnow
from distill_core.codebook import Codebook, answer_schema, parse_answer, render_messages
from distill_core.keys import mask
from distill_core.llm.base import Answer, Endpoint, Teacher
from distill_core.llm.errors import (
    MalformedResponse,
    RequestFailed,
    _server_message,
    describe_error,
    is_retryable,
)
from distill_core.llm.policy import EndpointRefused, UrlPolicy

DEFAULT_CONCURRENCY = 16
TOP_LOGPROBS = 5
_CHAT_PATH = "/chat/completions"


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before asking again.

    Attempt ``i`` (0-based) that failed with 429, 5xx, a timeout, a dropped connection or a
    malformed body is followed by a pause of ``uniform(0, min(max_delay, base_delay * 2**i))``
    seconds ("full jitter"), or by the server's ``retry-after-ms``/``Retry-After`` when it sends
    one (capped at ``max_retry_after``). At most ``max_attempts`` requests per question.
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 120.0


def retry_after_seconds(
    headers: Mapping[str, str] | None, now: float | None = None
) -> float | None:
    """The wait a server asks for: ``retry-after-ms``, else ``Retry-After`` (seconds or a date)."""
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now_dt = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return max(0.0, (when - now_dt).total_seconds())


def retry_delay(
    exc: BaseException, retry_index: int, policy: RetryPolicy, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number ``retry_index`` (0-based); see ``RetryPolicy``."""
    response = getattr(exc, "response", None)
    asked = retry_after_seconds(getattr(response, "headers", None))
    if asked is not None:
        return min(asked, policy.max_retry_after)
    cap = min(policy.max_delay, policy.base_delay * (2**retry_index))
    return (rng or random).uniform(0, cap)


def _unsupported_feature(exc: BaseException, body: Mapping[str, Any]) -> str | None:
    """Which optional request feature a 400/422 rejects: response_format, logprobs or max_tokens."""
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (400, 422):
        return None
    text = (_server_message(exc, 2000) + " " + json.dumps(getattr(exc, "body", None))).lower()
    if "logprobs" in body and "logprob" in text:
        return "logprobs"
    if "response_format" in body and (
        "response_format" in text or "json_schema" in text or "response format" in text
    ):
        return "response_format"
    if "max_tokens" in body and "max_tokens" in text and "max_completion_tokens" in text:
        return "max_tokens"
    if exc.status_code == 422:  # a validation error that names nothing: drop extras in turn
        if "response_format" in body:
            return "response_format"
        if "logprobs" in body:
            return "logprobs"
    return None


# --- confidence --------------------------------------------------------------------------------

_JSON_LABEL = re.compile(r'"label"\s*:\s*"((?:[^"\\]|\\.)*)"')


def label_confidence(raw: str, tokens: Sequence[tuple[str, float]]) -> float | None:
    """Probability the model gave to the label it answered, from token logprobs.

    Rule: locate the label value in the answer — the string value of ``"label"`` in a JSON
    answer, else the answer without surrounding whitespace — and take every token whose
    characters overlap it; confidence = exp(sum of those tokens' logprobs), the joint
    probability of generating the label given what came before. If the tokens do not spell
    the answer exactly (byte-level tokens), all tokens are used (probability of the whole
    answer). ``None`` when there are no logprobs.
    """
    if not tokens:
        return None
    joined = "".join(tok for tok, _ in tokens)
    if joined != raw:
        total = sum(lp for _, lp in tokens)
    else:
        m = _JSON_LABEL.search(raw)
        if m:
            start, end = m.span(1)
        else:
            stripped = raw.strip()
            start = raw.find(stripped) if stripped else 0
            end = start + len(stripped)
        if end <= start:  # empty label value: the tokens around it carry the decision
            end = start + 1
        total, pos, used = 0.0, 0, 0
        for tok, lp in tokens:
            if pos < end and pos + len(tok) > start:
                total += lp
                used += 1
            pos += len(tok)
        if not used:
            total = sum(lp for _, lp in tokens)
    return min(1.0, max(math.exp(total), 1e-300))


# --- the teacher -------------------------------------------------------------------------------


@dataclass
class _Completion:
    content: str | None
    tokens: list[tuple[str, float]]
    prompt_tokens: int
    completion_tokens: int
    attempts: int
    structured: bool
    request: dict[str, Any] = field(default_factory=dict)


def _read_completion(data: Any) -> tuple[str | None, list[tuple[str, float]], int, int]:
    """Content, (token, logprob) pairs and usage of a chat-completion JSON body; raise if malformed."""
    if not isinstance(data, dict):
        raise MalformedResponse("not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse("no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise MalformedResponse("no message")
    content = message.get("content")
    if content is None:
        content = message.get("refusal")
    if content is not None and not isinstance(content, str):
        raise MalformedResponse("content is not text")
    tokens: list[tuple[str, float]] = []
    logprobs = choice.get("logprobs")
    items = logprobs.get("content") if isinstance(logprobs, dict) else None
    for item in items or []:
        if not isinstance(item, dict):
            continue
        token, lp = item.get("token"), item.get("logprob")
        if isinstance(token, str) and isinstance(lp, int | float) and math.isfinite(lp):
            tokens.append((token, float(lp)))
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    return content, tokens, prompt, completion


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and math.isfinite(value) else 0


_PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


def aiohttp_usable() -> bool:
    """True when aiohttp is installed and no proxy variable is set (it ignores them)."""
    import importlib.util
    import os

    if any(os.environ.get(var) for var in _PROXY_VARS):
        return False
    return importlib.util.find_spec("aiohttp") is not None


class OpenAITeacher(Teacher):
    """Labels texts by asking an OpenAI-compatible chat-completions endpoint.

    One ``openai.AsyncOpenAI`` client (and connection pool of ``concurrency`` connections) is
    shared by every request of an event loop; it is created on first use and reopened after
    ``aclose()`` or in a new loop. At most ``concurrency`` requests are in flight at once.

    ``transport``: the client's HTTP layer. "auto" uses the openai SDK's aiohttp transport
    when aiohttp is installed and no proxy is configured in the environment (it needs about
    40 % less CPU per request than httpx, which matters at hundreds of requests per second),
    else httpx; "aiohttp" or "httpx" force one.
    """

    name = "openai"

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        retry: RetryPolicy | None = None,
        structured: bool = True,
        logprobs: bool = True,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        transport: str = "auto",
    ) -> None:
        self.endpoint = endpoint
        self.retry = retry or RetryPolicy()
        self.concurrency = max(1, int(concurrency))
        # Features that a server rejected stay off for the rest of this teacher's life.
        self.use_structured = structured
        self.use_logprobs = logprobs
        self.use_max_completion_tokens = False
        self._rng = rng or random.Random()
        self._sleep = sleep  # tests pass a recorder to see the delays without waiting
        if transport not in ("auto", "aiohttp", "httpx"):
            raise ValueError(f"Unknown transport '{transport}': use 'auto', 'aiohttp' or 'httpx'.")
        self.transport = transport
        self._client: openai.AsyncOpenAI | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Task[None] | None = None
        self._refusal: str | None = None  # "" once the base URL passed the policy

    def __repr__(self) -> str:
        return f"OpenAITeacher({self.endpoint!r}, concurrency={self.concurrency})"

    @property
    def display_name(self) -> str:  # type: ignore[override]
        return f"{self.endpoint.model} at {self.endpoint.base_url}"

    def params(self) -> dict[str, Any]:
        """Base URL, model, temperature, max tokens and seed: what decides the answers.

        Stable for the teacher's life (callers key caches on it): the timeout is left out, and
        so are the features a server may turn off mid-run (each ``Answer`` records whether it
        was structured).
        """
        return {k: v for k, v in self.endpoint.public_dict().items() if k != "timeout_s"}

    def set_concurrency(self, concurrency: int) -> None:
        concurrency = max(1, int(concurrency))
        if concurrency != self.concurrency:
            self.concurrency = concurrency
            old, loop = self._client, self._loop
            self._client = self._semaphore = self._loop = None  # reopened at the new size
            if old is not None and loop is not None and not loop.is_closed():
                try:
                    running = asyncio.get_running_loop()
                except RuntimeError:
                    running = None
                if running is loop:
                    self._closing = loop.create_task(old.close())

    # -- connection ---------------------------------------------------------------------------

    def _ensure_client(self) -> tuple[openai.AsyncOpenAI, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._client is None or self._semaphore is None or self._loop is not loop:
            import httpx2

            timeout = float(self.endpoint.timeout_s)
            use_aiohttp = self.transport == "aiohttp" or (
                self.transport == "auto" and aiohttp_usable()
            )
            factory = openai.DefaultAioHttpClient if use_aiohttp else openai.DefaultAsyncHttpxClient
            http_client = factory(
                limits=httpx2.Limits(
                    max_connections=self.concurrency,
                    max_keepalive_connections=self.concurrency,
                ),
                timeout=httpx2.Timeout(timeout, connect=min(timeout, 10.0)),
                follow_redirects=False,
            )
            self._client = openai.AsyncOpenAI(
                base_url=self.endpoint.base_url,
                api_key=self.endpoint.resolved_key(),
                max_retries=0,
                timeout=timeout,
                http_client=http_client,
            )
            self._semaphore = asyncio.Semaphore(self.concurrency)
            self._loop = loop
        return self._client, self._semaphore

    async def aclose(self) -> None:
        client, loop = self._client, self._loop
        self._client = self._semaphore = self._loop = None
        if client is not None and loop is asyncio.get_running_loop():
            await client.close()

    # -- requests -----------------------------------------------------------------------------

    def request_body(self, codebook: Codebook, text: str) -> dict[str, Any]:
        """The JSON body for one question, with the features still in use (never the key)."""
        ep = self.endpoint
        body: dict[str, Any] = {
            "model": ep.model,
            "messages": render_messages(codebook, text, structured=self.use_structured),
            "temperature": ep.temperature,
        }
        body["max_completion_tokens" if self.use_max_completion_tokens else "max_tokens"] = (
            ep.max_tokens
        )
        if ep.seed is not None:
            body["seed"] = ep.seed
        if self.use_structured:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": answer_schema(codebook),
            }
        if self.use_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = TOP_LOGPROBS
        return body

    def refusal(self) -> str | None:
        """The policy's sentence when this teacher's base URL may not be called (checked once:
        a host name is resolved then), else ``None``."""
        if self._refusal is None:
            try:
                UrlPolicy.from_env().check_url(self.endpoint.base_url)
                self._refusal = ""
            except EndpointRefused as exc:
                self._refusal = str(exc)
        return self._refusal or None

    async def complete(
        self, codebook: Codebook, text: str, *, retry: RetryPolicy | None = None
    ) -> _Completion:
        """One question with retries and feature fallbacks; raise ``RequestFailed`` on giving up."""
        policy = retry or self.retry
        refused = self.refusal()
        if refused:
            raise RequestFailed(refused, attempts=0, request=self.request_body(codebook, text))
        client, semaphore = self._ensure_client()
        attempts = retries = fallbacks = 0
        while True:
            body = self.request_body(codebook, text)
            attempts += 1
            try:
                async with semaphore:
                    # The client's own POST (auth, base URL, error types, timeout) with our
                    # plain JSON body and a plain dict back: chat.completions.create would
                    # re-walk the body through its TypedDicts and build pydantic models, which
                    # costs more CPU per request than everything else here together. The body
                    # goes as ready JSON bytes, so the client does not deep-copy the messages.
                    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
                    data = await client.post(_CHAT_PATH, content=payload, cast_to=object)
                content, tokens, prompt, completion = _read_completion(data)
                return _Completion(
                    content, tokens, prompt, completion, attempts, "response_format" in body, body
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                feature = _unsupported_feature(exc, body)
                if feature is not None and fallbacks < 3:
                    fallbacks += 1
                    if feature == "response_format":
                        self.use_structured = False
                    elif feature == "logprobs":
                        self.use_logprobs = False
                    else:
                        self.use_max_completion_tokens = True
                    continue
                if not is_retryable(exc) or retries + 1 >= policy.max_attempts:
                    message = describe_error(exc)
                    if retries and is_retryable(exc):
                        message = message[:-1] + f"; gave up after {attempts} attempts."
                    raise RequestFailed(message, attempts=attempts, request=body) from None
                await self._sleep(retry_delay(exc, retries, policy, self._rng))
                retries += 1

    async def ask(self, codebook: Codebook, text: str, *, repeat_index: int = 0) -> Answer:
        """Ask for the label of ``text``; a non-label answer is asked again once, then ``invalid``."""
        started = utcnow()
        names = codebook.label_names
        attempts = prompt = completion = 0
        last: _Completion | None = None
        try:
            for _ in range(2):
                last = await self.complete(codebook, text)
                attempts += last.attempts
                prompt += last.prompt_tokens
                completion += last.completion_tokens
                label = parse_answer(last.content, names) if last.content is not None else None
                if label is not None:
                    return Answer(
                        label=label,
                        status="ok",
                        raw=mask(last.content),
                        confidence=label_confidence(last.content or "", last.tokens),
                        prompt_tokens=prompt,
                        completion_tokens=completion,
                        attempts=attempts,
                        structured=last.structured,
                        started_at=started,
                        finished_at=utcnow(),
                        request=last.request,
                    )
        except RequestFailed as failed:
            return Answer(
                label=None,
                status="error",
                raw=None,
                prompt_tokens=prompt,
                completion_tokens=completion,
                attempts=attempts + failed.attempts,
                structured="response_format" in failed.request,
                error=failed.message,
                started_at=started,
                finished_at=utcnow(),
                request=failed.request,
            )
        except Exception as exc:  # a bug or an unforeseen client error: still one item only
            return Answer(
                label=None,
                status="error",
                attempts=attempts + 1,
                error=describe_error(exc),
                started_at=started,
                finished_at=utcnow(),
                request=self.request_body(codebook, text),
            )
        assert last is not None
        return Answer(
            label=None,
            status="invalid",
            raw=mask(last.content),
            prompt_tokens=prompt,
            completion_tokens=completion,
            attempts=attempts,
            structured=last.structured,
            error="The answer was not one of the codebook's labels, also when asked again.",
            started_at=started,
            finished_at=utcnow(),
            request=last.request,
        )


# --- connection test ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionResult:
    """Outcome of ``test_connection``: ``ok`` when the server answered; ``message`` says what
    happened (masked, like ``raw``: ``keys.mask``)."""

    ok: bool
    message: str
    raw: str | None = None
    label: str | None = None
    latency_s: float = 0.0


async def check_connection(endpoint: Endpoint, codebook: Codebook, text: str) -> ConnectionResult:
    """Async form of ``test_connection``."""
    teacher = OpenAITeacher(endpoint, concurrency=1, retry=RetryPolicy(max_attempts=1))
    refused = teacher.refusal()
    if refused:
        return ConnectionResult(False, refused)
    t0 = time.perf_counter()
    try:
        done = await teacher.complete(codebook, text)
    except RequestFailed as failed:
        return ConnectionResult(False, failed.message, latency_s=time.perf_counter() - t0)
    finally:
        await teacher.aclose()
    latency = time.perf_counter() - t0
    label = parse_answer(done.content, codebook.label_names) if done.content is not None else None
    notes = []
    if not done.structured:
        notes.append("the server does not accept structured output, so plain answers are used")
    if not teacher.use_logprobs:
        notes.append("it gives no token probabilities")
    extra = f" ({'; '.join(notes)})" if notes else ""
    if label is None:
        message = (
            f"Connected in {latency:.1f} s, but the answer {(done.content or '')[:80]!r} is not "
            f"one of the codebook's labels{extra}."
        )
    else:
        message = f"Connected in {latency:.1f} s: {endpoint.model} answered '{label}'{extra}."
    return ConnectionResult(True, mask(message), mask(done.content), label, latency)


def test_connection(endpoint: Endpoint, codebook: Codebook, text: str) -> ConnectionResult:
    """Send one labelling request and say in one sentence whether the endpoint works.

    For callers without an event loop (a page, the command line); never raises for a network,
    key or model problem.
    """
    return asyncio.run(check_connection(endpoint, codebook, text))


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
