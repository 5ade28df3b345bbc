"""The LLM teacher: any OpenAI-compatible chat-completions endpoint (OpenAI, Azure, vLLM, Ollama,
LM Studio, llama.cpp...).

One text per request, rendered by ``codebook.render_messages``. What a server accepts is
negotiated, not guessed: structured output is tried in the forms servers accept
(``STRUCTURED_FORMS``: OpenAI's ``json_schema``, llama.cpp's ``json_object`` with a ``schema``,
vLLM's ``guided_json``), and a rejection of any status — 400, 422, or a 5xx whose body names the
field, as llama-cpp-python's 500 "Input should be 'text' or 'json_object'" does — moves to the
next form, then to a plain prompt whose answer is parsed strictly; logprobs and ``max_tokens``
are dropped the same way. Until the first answer settles this, one request negotiates while the
others wait. What was settled is a ``Capabilities`` record (``teacher.capabilities``); a teacher
given one (``capabilities=``, from a saved endpoint) does not negotiate again.

Failed requests are retried here (``max_retries=0`` on the client) with exponential backoff and
full jitter, honouring ``Retry-After``, within ``RetryPolicy.max_attempts`` and the time budget
per text ``RetryPolicy.give_up_s``; one request is bounded by ``Endpoint.timeout_s``. An answer
that is not a codebook label is asked again once as a correction (the answer and the exact
labels; a higher temperature when the first ask was at 0), then recorded as ``invalid``. Every
failure a user can cause is one sentence from ``describe_error`` with the server's own reason;
the API key never appears in a record, a repr or a message (``keys.mask``). Before its first
request a teacher checks its base URL against ``llm.policy`` (a refused URL is never called),
and it follows no redirect (a public server could redirect to an internal address).

A base URL with an ``api-version`` query is Azure OpenAI's deployment form
(``https://R.openai.azure.com/openai/deployments/D?api-version=2024-10-21``): the request goes
to that deployment with the version as a query and the key in the ``api-key`` header.
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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import openai

from distill_core.clock import utcnow
from distill_core.codebook import (
    PLAIN_ANSWER_INSTRUCTION,
    STRUCTURED_ANSWER_INSTRUCTION,
    Codebook,
    answer_schema,
    parse_answer,
    render_messages,
)
from distill_core.keys import mask
from distill_core.llm.base import (
    FORM_NAMES,
    STRUCTURED_FORMS,
    Answer,
    Capabilities,
    Endpoint,
    LogprobsOff,
    StructuredForm,
    Teacher,
)
from distill_core.llm.errors import (
    MalformedResponse,
    RequestFailed,
    describe_error,
    is_retryable,
    server_reason,
)
from distill_core.llm.policy import EndpointRefused, UrlPolicy

DEFAULT_CONCURRENCY = 16
TOP_LOGPROBS = 5
#: Temperature of a re-ask when the first ask was at 0 (at 0 it would repeat the same answer).
REASK_TEMPERATURE = 0.7
#: Test connection turns logprobs off when they make an answer more than this many times slower.
LOGPROBS_SLOWDOWN_LIMIT = 2.0
#: ...and when they add at least this many seconds per answer (below it, on a fast server, the
#: ratio of two tiny times is noise and costs nothing).
LOGPROBS_MIN_EXTRA_S = 0.05
#: The made-up model name Test connection asks for, to see whether a server ignores the name.
PROBE_MODEL = "distill-no-such-model-3f9c"
#: Seconds a text may take, all attempts and pauses together, unless a policy says otherwise.
DEFAULT_GIVE_UP_S = 300.0
_CHAT_PATH = "/chat/completions"


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before asking again, and when to give up.

    Attempt ``i`` (0-based) that failed with 429, 5xx, a timeout, a dropped connection or a
    malformed body is followed by a pause of ``uniform(0, min(max_delay, base_delay * 2**i))``
    seconds ("full jitter"), or by the server's ``retry-after-ms``/``Retry-After`` when it sends
    one (capped at ``max_retry_after``). At most ``max_attempts`` requests per question, and at
    most ``give_up_s`` seconds per text (every request, pause and the re-ask together; ``None``:
    no time limit): a request never waits longer than the time left, and no pause starts that
    would end past it. One request's own limit is ``Endpoint.timeout_s``.
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 120.0
    give_up_s: float | None = DEFAULT_GIVE_UP_S


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


# --- structured output and feature negotiation ---------------------------------------------


def structured_fields(form: StructuredForm, codebook: Codebook) -> dict[str, Any]:
    """The request fields that ask for structured output in ``form`` (none for "none").

    - ``json_schema``: OpenAI's ``response_format: {"type": "json_schema", "json_schema": …}``;
      also Azure (api-version 2024-08-01-preview and later), vLLM, Ollama's /v1 (it hands the
      schema to its native ``format``), LM Studio and llama.cpp's llama-server.
    - ``json_object_schema``: ``response_format: {"type": "json_object", "schema": …}``, the
      form of llama-cpp-python's server (which answers json_schema with a 500) and llama-server.
    - ``guided_json``: vLLM's guided decoding field (versions before 0.12, which removed it in
      favour of ``structured_outputs``; every vLLM that knows ``structured_outputs`` accepts
      ``json_schema`` as well, so that field is not tried).
    """
    schema = answer_schema(codebook)
    if form == "json_schema":
        return {"response_format": {"type": "json_schema", "json_schema": schema}}
    if form == "json_object_schema":
        return {"response_format": {"type": "json_object", "schema": schema["schema"]}}
    if form == "guided_json":
        return {"guided_json": schema["schema"]}
    return {}


_STRUCTURED_FIELDS = ("response_format", "guided_json")
# Words in an error body that say the structured-output part of the request was the problem.
_STRUCTURED_WORDS = (
    "response_format",
    "response format",
    "json_schema",
    "json_object",
    "guided_json",
    "guided decoding",
    "structured output",
    "grammar",
)


def _rejected_feature(exc: BaseException, body: Mapping[str, Any]) -> str | None:
    """Which optional part of ``body`` the server rejected: "structured", "logprobs" or
    "max_tokens"; ``None`` when the failure is something else.

    A rejection is a 400 or 422, or a 5xx, whose error names the part (its message or body
    mentions e.g. ``response_format``, ``json_schema`` or ``logprobs``); a 422 that names
    nothing drops the structured form, then logprobs. A 5xx that names nothing is a server
    failure (retried), never a rejection.
    """
    if not isinstance(exc, openai.APIStatusError):
        return None
    status = exc.status_code
    if status not in (400, 422) and status < 500:
        return None
    raw = json.dumps(getattr(exc, "body", None), default=str)
    text = f"{server_reason(exc, 4000) or ''} {raw}".lower()
    structured = any(f in body for f in _STRUCTURED_FIELDS)
    if "logprobs" in body and "logprob" in text:
        return "logprobs"
    if structured and any(word in text for word in _STRUCTURED_WORDS):
        return "structured"
    if "max_tokens" in body and "max_tokens" in text and "max_completion_tokens" in text:
        return "max_tokens"
    if status == 422:  # a validation error that names nothing: drop extras in turn
        if structured:
            return "structured"
        if "logprobs" in body:
            return "logprobs"
    return None


# --- confidence --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token, its log-probability and the server's ``top_logprobs`` there
    (alternative token, log-probability), most likely first."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


_JSON_LABEL = re.compile(r'"label"\s*:\s*"((?:[^"\\]|\\.)*)"')


def label_confidence(
    raw: str, tokens: Sequence[TokenLogprob], label_names: Sequence[str], label: str | None
) -> float | None:
    """The probability the model gave ``label`` among the codebook's labels, from logprobs.

    The answer's label value is located in ``raw`` (the string value of ``"label"`` in a JSON
    answer, else the label's text in a plain answer). Walking its tokens from the first that
    reaches into the value, each token's ``top_logprobs`` alternatives are read as
    continuations of the value so far, and each alternative is attributed to the candidate
    labels it continues (case-insensitive; an alternative that runs past a label's end
    continues it only if the value ends there). At each token

        q = (mass of alternatives that continue only labels the chosen token continues)
            / (mass of alternatives that continue any candidate label),

    with mass = exp(logprob); alternatives that continue no label (other words, JSON
    syntax) are renormalised away, and the candidates narrow to the labels the chosen token
    continues. The walk stops when one label is left; the confidence is the product of the
    q's. So the probability is read at the first token that distinguishes the labels: when
    labels' first tokens collide ("econ|omy", "econ|omic"), the shared token's q is the share
    of that group of labels, and the next token splits it; the labels' later tokens are taken
    as determined once their first distinct token is chosen (as they are under a grammar).
    Labels whose tokens are not among the ``top_logprobs`` (``TOP_LOGPROBS`` alternatives) get
    no share. If the answer ends while several labels are still possible (one label is the
    other's beginning, "health" and "health care", and the server shows no token after it),
    the share of that group is returned.

    1.0 for a one-label codebook. ``None`` when there are no logprobs, the tokens do not spell
    the answer exactly (byte-level tokens), no token carries ``top_logprobs``, the label's text
    is not in the answer as such (an escaped JSON string), or the answer is not a label.
    """
    if not tokens or label is None or label not in label_names:
        return None
    if len(label_names) == 1:
        return 1.0
    if "".join(t.token for t in tokens) != raw or not any(t.top for t in tokens):
        return None
    m = _JSON_LABEL.search(raw)
    if m:
        start, end = m.span(1)
    else:
        start = raw.lower().find(label.lower())
        end = start + len(label)
    if start < 0 or raw[start:end].lower() != label.lower():
        return None
    json_mode = m is not None
    candidates = [n.lower() for n in label_names]
    target = label.lower()
    confidence, pos = 1.0, 0
    for tok in tokens:
        a, pos = pos, pos + len(tok.token)
        if pos <= start or len(candidates) == 1:
            continue
        if a > end:
            break
        where = (raw[a:start], len(raw[start:a]), candidates)
        chosen = _continued(tok.token, *where, json_mode=json_mode)
        if target not in chosen:
            return None
        masses = [
            (_continued(t, *where, json_mode=json_mode), math.exp(lp))
            for t, lp in _alternatives(tok)
        ]
        total = sum(mass for group, mass in masses if group)
        inside = sum(mass for group, mass in masses if group and group <= chosen)
        if total <= 0:
            return None
        confidence *= inside / total
        candidates = [n for n in candidates if n in chosen]
    return min(1.0, max(confidence, 1e-300))


def _continued(
    alternative: str, pre: str, offset: int, candidates: Sequence[str], *, json_mode: bool
) -> frozenset[str]:
    """The candidate labels (lower case) that token ``alternative`` continues, when the value's
    first ``offset`` characters are generated and the token's first characters are ``pre``
    (the part before the value); none when it does not begin with ``pre`` or is only that."""
    if not alternative.startswith(pre) or len(alternative) == len(pre):
        return frozenset()
    rest = alternative[len(pre) :].lower()
    return frozenset(n for n in candidates if _continues(n[offset:], rest, json_mode=json_mode))


def _alternatives(tok: TokenLogprob) -> list[tuple[str, float]]:
    """The token's alternatives, the chosen token among them (sampling can pick one outside)."""
    alts = list(dict(tok.top).items())
    if tok.token not in dict(alts):
        alts.append((tok.token, tok.logprob))
    return alts


def _continues(rest_of_label: str, text: str, *, json_mode: bool) -> bool:
    """Whether generated ``text`` continues a label whose remaining characters are
    ``rest_of_label``: it is a beginning of them, or it spells them and then ends the value
    (a closing quote in JSON; any character but a letter or digit in a plain answer)."""
    if rest_of_label.startswith(text):
        return True
    if not text.startswith(rest_of_label):
        return False
    after = text[len(rest_of_label)]
    return after == '"' if json_mode else not after.isalnum()


# --- the teacher -------------------------------------------------------------------------------


@dataclass
class _Completion:
    content: str | None
    tokens: list[TokenLogprob]
    prompt_tokens: int
    completion_tokens: int
    attempts: int
    form: StructuredForm
    request: dict[str, Any] = field(default_factory=dict)
    latency_s: float = 0.0  # the answered request's own time
    model: str | None = None  # the model name the answer carries
    waited_s: float = 0.0  # waiting for another request to settle the features

    @property
    def structured(self) -> bool:
        return self.form != "none"


def _read_completion(data: Any) -> tuple[str | None, list[TokenLogprob], int, int, str | None]:
    """Content, token logprobs, usage and model name of a chat-completion JSON body; raise if
    malformed. Logprobs come in the chat form (``logprobs.content``: token, logprob,
    top_logprobs) or the legacy completions form (``tokens``, ``token_logprobs``,
    ``top_logprobs`` as token → logprob maps) that some servers send for chat too."""
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
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    model = data.get("model")
    return (
        content,
        _read_logprobs(choice.get("logprobs")),
        prompt,
        completion,
        model if isinstance(model, str) and model else None,
    )


def _read_logprobs(logprobs: Any) -> list[TokenLogprob]:
    if not isinstance(logprobs, dict):
        return []
    tokens: list[TokenLogprob] = []
    items = logprobs.get("content")
    if isinstance(items, list):
        for item in items:
            if not isinstance(item, dict) or not _number(item.get("logprob")):
                continue
            if not isinstance(token := item.get("token"), str):
                continue
            top = [
                (alt.get("token"), float(alt.get("logprob")))
                for alt in item.get("top_logprobs") or []
                if isinstance(alt, dict)
                and isinstance(alt.get("token"), str)
                and _number(alt.get("logprob"))
            ]
            tokens.append(TokenLogprob(token, float(item["logprob"]), tuple(top)))
        return tokens
    names, values = logprobs.get("tokens"), logprobs.get("token_logprobs")
    tops = logprobs.get("top_logprobs") or []
    if isinstance(names, list) and isinstance(values, list) and len(names) == len(values):
        for i, (token, lp) in enumerate(zip(names, values, strict=True)):
            if not isinstance(token, str) or not _number(lp):
                continue
            alts = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
            top = [(t, float(v)) for t, v in alts.items() if isinstance(t, str) and _number(v)]
            tokens.append(TokenLogprob(token, float(lp), tuple(sorted(top, key=lambda x: -x[1]))))
    return tokens


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: Any) -> int:
    return int(value) if _number(value) else 0


_PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


def aiohttp_usable() -> bool:
    """True when aiohttp is installed and no proxy variable is set (it ignores them)."""
    import importlib.util
    import os

    if any(os.environ.get(var) for var in _PROXY_VARS):
        return False
    return importlib.util.find_spec("aiohttp") is not None


def azure_parts(base_url: str) -> tuple[str, str, dict[str, str]] | None:
    """(base URL without its query, api-version, other query values) for an Azure OpenAI
    deployment URL, recognised by its ``api-version`` query; ``None`` for any other URL."""
    parts = urlsplit(base_url)
    query = dict(parse_qsl(parts.query))
    version = query.pop("api-version", None)
    if not version:
        return None
    return urlunsplit(parts._replace(query="")), version, query


def _answer_value(content: str | None) -> str:
    """What an answer said as its label: the JSON ``label`` value, else the text, shortened."""
    text = (content or "").strip()
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("label"), str):
        text = data["label"]
    return text if len(text) <= 200 else text[:199] + "…"


def correction_messages(
    codebook: Codebook, answer: str | None, *, structured: bool
) -> list[dict[str, str]]:
    """The turns a re-ask adds after the first ask's messages: the invalid answer as the
    assistant's turn (when it said anything) and a user turn naming it and the allowed labels
    exactly."""
    answer = mask(answer)  # a careless server may have repeated the key in it
    said = _answer_value(answer)
    labels = ", ".join(json.dumps(n, ensure_ascii=False) for n in codebook.label_names)
    how = STRUCTURED_ANSWER_INSTRUCTION if structured else PLAIN_ANSWER_INSTRUCTION
    opening = (
        f"{json.dumps(said, ensure_ascii=False)} is not one of the labels."
        if said
        else "The answer was empty."
    )
    turns = [{"role": "assistant", "content": answer}] if (answer or "").strip() else []
    turns.append(
        {
            "role": "user",
            "content": f"{opening} The labels are exactly: {labels}. Choose one of them, "
            f"spelled exactly as written there. {how}",
        }
    )
    return turns


class OpenAITeacher(Teacher):
    """Labels texts by asking an OpenAI-compatible chat-completions endpoint.

    ``structured``: ask for structured output (negotiated: see the module docstring);
    ``logprobs``: ask for token logprobs (for ``Answer.confidence``; off for a server on which
    they are slow); ``capabilities``: what was settled for this endpoint before (a saved
    endpoint's record), so that nothing is negotiated again (``logprobs=False`` still wins).
    ``teacher.capabilities`` is what is settled now.

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
        capabilities: Capabilities | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        transport: str = "auto",
    ) -> None:
        self.endpoint = endpoint
        self.retry = retry or RetryPolicy()
        self.concurrency = max(1, int(concurrency))
        known = capabilities or Capabilities()
        self._known = known  # what Test connection measured, kept in ``capabilities``
        # The features in use; one a server rejects stays off for the rest of the teacher's life.
        self.form: StructuredForm = (known.structured or "json_schema") if structured else "none"
        self._form_settled = known.structured is not None or not structured
        self._tried_forms: set[str] = set()
        # What the server said about logprobs (a user's switch is no property of the server).
        server = None if known.logprobs_off == "switched off" else known.logprobs
        self.use_logprobs = logprobs and server is not False
        self.logprobs_off: LogprobsOff | None = None
        if not self.use_logprobs:
            self.logprobs_off = known.logprobs_off if logprobs else "switched off"
        self._logprobs_settled = server is not None or not logprobs
        self.use_max_completion_tokens = known.max_completion_tokens
        #: What the server rejected while negotiating: (what, the server's reason).
        self.rejections: list[tuple[str, str]] = []
        self._rng = rng or random.Random()
        self._sleep = sleep  # tests pass a recorder to see the delays without waiting
        if transport not in ("auto", "aiohttp", "httpx"):
            raise ValueError(f"Unknown transport '{transport}': use 'auto', 'aiohttp' or 'httpx'.")
        self.transport = transport
        self._client: openai.AsyncOpenAI | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._negotiating: asyncio.Lock | None = None
        self._unreached = False  # a negotiating request failed without an answer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Task[None] | None = None
        self._refusal: str | None = None  # "" once the base URL passed the policy

    def __repr__(self) -> str:
        return f"OpenAITeacher({self.endpoint!r}, concurrency={self.concurrency})"

    @property
    def display_name(self) -> str:  # type: ignore[override]
        return f"{self.endpoint.model} at {self.endpoint.base_url}"

    @property
    def use_structured(self) -> bool:
        return self.form != "none"

    @property
    def negotiated(self) -> bool:
        """True once the structured form and logprobs are settled (given, or answered)."""
        return self._form_settled and self._logprobs_settled

    @property
    def capabilities(self) -> Capabilities:
        """What is settled for this endpoint now (to remember with a saved endpoint)."""
        return replace(
            self._known,
            structured=self.form if self._form_settled else None,
            logprobs=self.use_logprobs if self._logprobs_settled else None,
            logprobs_off=None if self.use_logprobs else self.logprobs_off,
            max_completion_tokens=self.use_max_completion_tokens,
        )

    def params(self) -> dict[str, Any]:
        """Base URL, model, temperature, max tokens and seed: what decides the answers.

        Stable for the teacher's life (callers key caches on it): the timeout is left out, and
        so are the features negotiated with the server (each ``Answer`` records whether it
        was structured, and its request the form).
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
            common: dict[str, Any] = {
                "api_key": self.endpoint.resolved_key(),
                "max_retries": 0,
                "timeout": timeout,
                "http_client": http_client,
            }
            azure = azure_parts(self.endpoint.base_url)
            if azure is not None:
                base, version, query = azure
                self._client = openai.AsyncAzureOpenAI(
                    base_url=base, api_version=version, default_query=query or None, **common
                )
            else:
                self._client = openai.AsyncOpenAI(base_url=self.endpoint.base_url, **common)
            self._semaphore = asyncio.Semaphore(self.concurrency)
            self._negotiating = asyncio.Lock()
            self._loop = loop
        return self._client, self._semaphore

    async def aclose(self) -> None:
        client, loop = self._client, self._loop
        self._client = self._semaphore = self._loop = None
        if client is not None and loop is asyncio.get_running_loop():
            await client.close()

    # -- requests -----------------------------------------------------------------------------

    def request_body(
        self,
        codebook: Codebook,
        text: str,
        *,
        extra_messages: Sequence[Mapping[str, str]] = (),
        temperature: float | None = None,
        logprobs: bool | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        """The JSON body for one question, with the features in use (never the key).

        ``extra_messages`` follow the rendered ones (a re-ask's correction); ``temperature``,
        ``logprobs`` and ``model`` replace the endpoint's or the teacher's for this request.
        """
        ep = self.endpoint
        structured = self.form != "none"
        body: dict[str, Any] = {
            "model": model or ep.model,
            "messages": render_messages(codebook, text, structured=structured)
            + [dict(m) for m in extra_messages],
            "temperature": ep.temperature if temperature is None else temperature,
        }
        body["max_completion_tokens" if self.use_max_completion_tokens else "max_tokens"] = (
            ep.max_tokens
        )
        if ep.seed is not None:
            body["seed"] = ep.seed
        body.update(structured_fields(self.form, codebook))
        if self.use_logprobs if logprobs is None else logprobs:
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
        self,
        codebook: Codebook,
        text: str,
        *,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
        **overrides: Any,
    ) -> _Completion:
        """One question with retries and feature fallbacks; raise ``RequestFailed`` on giving up.

        ``deadline``: the ``time.monotonic()`` by which to give up (the text's time budget);
        ``overrides`` go to ``request_body``. Until the features are settled, requests go
        one at a time (the first answer settles them for the others).
        """
        refused = self.refusal()
        if refused:
            raise RequestFailed(refused, attempts=0, request=self.request_body(codebook, text))
        self._ensure_client()
        if self.negotiated or self._negotiating is None or self._unreached:
            return await self._complete(codebook, text, retry, deadline, overrides)
        t0 = time.monotonic()
        async with self._negotiating:
            waited = time.monotonic() - t0  # not this text's time: its budget moves on
            if deadline is not None:
                deadline += waited
            # Still unsettled: this request negotiates; else the lock is left at once.
            done = None
            if not self.negotiated and not self._unreached:
                try:
                    done = await self._complete(codebook, text, retry, deadline, overrides)
                except RequestFailed:
                    # It failed for want of an answer, not over a feature: the others need
                    # not queue behind each other's retries (a server that is down is found
                    # out at full concurrency); each still falls back on its own.
                    self._unreached = True
                    raise
        if done is None:
            done = await self._complete(codebook, text, retry, deadline, overrides)
        done.waited_s = waited
        return done

    async def _complete(
        self,
        codebook: Codebook,
        text: str,
        retry: RetryPolicy | None,
        deadline: float | None,
        overrides: dict[str, Any],
    ) -> _Completion:
        policy = retry or self.retry
        client, semaphore = self._ensure_client()
        began = time.monotonic()
        if deadline is None and policy.give_up_s is not None:
            deadline = began + policy.give_up_s
        attempts = retries = fallbacks = 0
        while True:
            body = self.request_body(codebook, text, **overrides)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise RequestFailed(
                    self._out_of_time(None, attempts, began, policy),
                    attempts=attempts,
                    request=body,
                )
            attempts += 1
            options: dict[str, Any] = {}  # a shorter timeout when less time is left
            if left is not None and left < self.endpoint.timeout_s:
                options["timeout"] = max(left, 0.001)
            try:
                async with semaphore:
                    # The client's own POST (auth, base URL, error types, timeout) with our
                    # plain JSON body and a plain dict back: chat.completions.create would
                    # re-walk the body through its TypedDicts and build pydantic models, which
                    # costs more CPU per request than everything else here together. The body
                    # goes as ready JSON bytes, so the client does not deep-copy the messages.
                    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
                    t0 = time.perf_counter()
                    data = await client.post(
                        _CHAT_PATH, content=payload, cast_to=object, options=options
                    )
                    latency = time.perf_counter() - t0
                content, tokens, prompt, completion, model = _read_completion(data)
                self._settle(body, tokens)
                form = self.form if any(f in body for f in _STRUCTURED_FIELDS) else "none"
                return _Completion(
                    content, tokens, prompt, completion, attempts, form, body, latency, model
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if fallbacks <= len(STRUCTURED_FORMS) + 2 and self._drop_rejected(exc, body):
                    fallbacks += 1
                    continue
                status = exc.status_code if isinstance(exc, openai.APIStatusError) else None
                delay = retry_delay(exc, retries, policy, self._rng)
                out_of_time = deadline is not None and time.monotonic() + delay >= deadline
                if not is_retryable(exc) or retries + 1 >= policy.max_attempts or out_of_time:
                    message = describe_error(exc)
                    if isinstance(exc, openai.APITimeoutError) and "timeout" in options:
                        message = "The server did not answer in the time left for this text."
                    if is_retryable(exc) and out_of_time:
                        message = self._out_of_time(message, attempts, began, policy)
                    elif retries and is_retryable(exc):
                        message = message[:-1] + f"; gave up after {attempts} attempts."
                    raise RequestFailed(
                        message, attempts=attempts, request=body, status=status
                    ) from None
                await self._sleep(delay)
                retries += 1

    @staticmethod
    def _out_of_time(message: str | None, attempts: int, began: float, policy: RetryPolicy) -> str:
        spent = time.monotonic() - began
        took = f"{spent:.1f}" if spent < 10 else f"{spent:.0f}"
        limit = (
            f" (the time allowed per text is {policy.give_up_s:g} s)" if policy.give_up_s else ""
        )
        tried = f"after {attempts} attempt{'s' if attempts != 1 else ''} in {took} s{limit}"
        if message is None:
            return f"Gave up {tried}."
        return message[:-1] + f"; gave up {tried}."

    def _settle(self, body: Mapping[str, Any], tokens: Sequence[TokenLogprob]) -> None:
        """An answer came back: the features it was asked with are settled."""
        if any(f in body for f in _STRUCTURED_FIELDS) or self.form == "none":
            self._form_settled = True
        if body.get("logprobs") and not self._logprobs_settled:
            if not tokens:
                self.use_logprobs, self.logprobs_off = False, "not returned"
            self._logprobs_settled = True
        elif not self.use_logprobs:
            self._logprobs_settled = True

    def _drop_rejected(self, exc: BaseException, body: Mapping[str, Any]) -> bool:
        """Turn off (or move on from) the part of the request the server rejected; False when
        the failure was not such a rejection."""
        feature = _rejected_feature(exc, body)
        if feature is None:
            return False
        reason = server_reason(exc) or describe_error(exc)
        status = getattr(exc, "status_code", "")
        if feature == "structured":
            self.rejections.append(
                (f"structured output as {FORM_NAMES[self.form]}", f"{status}: {reason}")
            )
            self._tried_forms.add(self.form)
            self.form = next(
                (f for f in STRUCTURED_FORMS if f not in self._tried_forms and f != "none"), "none"
            )
            self._form_settled = self.form == "none"
        elif feature == "logprobs":
            self.rejections.append(("logprobs", f"{status}: {reason}"))
            self.use_logprobs, self.logprobs_off, self._logprobs_settled = False, "rejected", True
        else:
            self.use_max_completion_tokens = True
        return True

    def turn_logprobs_off(self, why: LogprobsOff) -> None:
        """Stop asking for logprobs for the rest of this teacher's life (``why`` is recorded)."""
        self.use_logprobs, self.logprobs_off, self._logprobs_settled = False, why, True

    def note_measurement(self, **values: Any) -> None:
        """Keep what Test connection measured (``Capabilities`` fields) in ``capabilities``."""
        self._known = replace(self._known, **values)

    def _reask_temperature(self) -> float:
        t = self.endpoint.temperature
        return t if t > 0 else REASK_TEMPERATURE

    async def ask(self, codebook: Codebook, text: str, *, repeat_index: int = 0) -> Answer:
        """Ask for the label of ``text``; a non-label answer is asked again once as a
        correction (``correction_messages``; at ``REASK_TEMPERATURE`` when the endpoint's is
        0), then it is ``invalid``. Only an exact label, or one that differs in case, spacing,
        quotes or a final period (``codebook.match_label``), counts: "defence" is not "defense".
        """
        started = utcnow()
        names = codebook.label_names
        deadline = (
            time.monotonic() + self.retry.give_up_s if self.retry.give_up_s is not None else None
        )
        attempts = prompt = completion = 0
        done: list[_Completion] = []
        try:
            while len(done) < 2:
                extra = {}
                if done:
                    extra = {
                        "extra_messages": correction_messages(
                            codebook, done[0].content, structured=self.form != "none"
                        ),
                        "temperature": self._reask_temperature(),
                    }
                last = await self.complete(codebook, text, deadline=deadline, **extra)
                if deadline is not None:
                    deadline += last.waited_s
                done.append(last)
                attempts += last.attempts
                prompt += last.prompt_tokens
                completion += last.completion_tokens
                label = parse_answer(last.content, names) if last.content is not None else None
                if label is not None:
                    return Answer(
                        label=label,
                        status="ok",
                        raw=mask(last.content),
                        confidence=label_confidence(last.content or "", last.tokens, names, label),
                        prompt_tokens=prompt,
                        completion_tokens=completion,
                        attempts=attempts,
                        structured=last.structured,
                        started_at=started,
                        finished_at=utcnow(),
                        request=last.request,
                        reasked=len(done) > 1,
                    )
        except RequestFailed as failed:
            return Answer(
                label=None,
                status="error",
                raw=None,
                prompt_tokens=prompt,
                completion_tokens=completion,
                attempts=attempts + failed.attempts,
                structured=any(f in failed.request for f in _STRUCTURED_FIELDS),
                error=failed.message,
                started_at=started,
                finished_at=utcnow(),
                request=failed.request,
                reasked=bool(done),
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
                reasked=bool(done),
            )
        last = done[-1]
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
            reasked=True,
        )


# --- connection test ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionResult:
    """Outcome of ``test_connection``: ``ok`` when the server answered; ``message`` says what
    happened in one sentence (on failure with the server's own reason); ``capabilities`` what
    was settled and measured (``capabilities.describe()``: the features in use); ``notes``
    further sentences (what the server rejected, logprobs turned off, a model name ignored).
    Every text is masked (``keys.mask``)."""

    ok: bool
    message: str
    raw: str | None = None
    label: str | None = None
    latency_s: float = 0.0  # seconds per answer, as settled
    capabilities: Capabilities | None = None
    notes: tuple[str, ...] = ()

    @property
    def features(self) -> str:
        return self.capabilities.describe() if self.capabilities else ""


async def check_connection(
    endpoint: Endpoint, codebook: Codebook, text: str, *, logprobs: bool = True
) -> ConnectionResult:
    """Async form of ``test_connection``."""
    teacher = OpenAITeacher(
        endpoint,
        concurrency=1,
        retry=RetryPolicy(max_attempts=1, give_up_s=None),
        logprobs=logprobs,
    )
    refused = teacher.refusal()
    if refused:
        return ConnectionResult(False, refused)
    try:
        first = await teacher.complete(codebook, text)
    except RequestFailed as failed:
        await teacher.aclose()
        notes = tuple(_rejection_notes(teacher))
        return ConnectionResult(False, failed.message, notes=notes)
    try:
        seconds = await _measure_logprobs(teacher, codebook, text, first)
        ignores = await _ignores_model_name(teacher, codebook, text)
    finally:
        await teacher.aclose()
    caps = replace(
        teacher.capabilities,
        seconds_per_answer=seconds,
        ignores_model_name=ignores,
        reported_model=first.model,
        checked_at=utcnow(),
    )
    label = parse_answer(first.content, codebook.label_names) if first.content is not None else None
    if label is None:
        message = (
            f"Connected ({seconds:.1f} s per answer), but the answer "
            f"{(first.content or '')[:80]!r} is not one of the codebook's labels."
        )
    else:
        message = f"Connected: {endpoint.model} answered '{label}' in {seconds:.1f} s per answer."
    notes = [*_rejection_notes(teacher), *_logprobs_notes(caps), *_model_notes(caps, endpoint)]
    return ConnectionResult(
        True,
        mask(message),
        mask(first.content),
        label,
        seconds,
        caps,
        tuple(mask(n) for n in notes),
    )


async def _timed(teacher: OpenAITeacher, codebook: Codebook, text: str, on: bool) -> float:
    done = await teacher.complete(codebook, text, logprobs=on)
    return done.latency_s


async def _measure_logprobs(
    teacher: OpenAITeacher, codebook: Codebook, text: str, first: _Completion
) -> float:
    """Seconds per answer as settled. Where the server gives logprobs, ask without and with
    them in turn (a second pair only when the first is near ``LOGPROBS_SLOWDOWN_LIMIT``) and
    turn them off when they slow an answer by more than the limit and by at least
    ``LOGPROBS_MIN_EXTRA_S`` (or time out when an answer without them did not). The first answer (model loading, negotiation) is not counted."""
    if not teacher.use_logprobs:
        return first.latency_s
    off: list[float] = []
    on: list[float] = []
    for _ in range(2):
        try:
            off.append(await _timed(teacher, codebook, text, False))
        except RequestFailed:
            break
        t0 = time.perf_counter()
        try:
            on.append(await _timed(teacher, codebook, text, True))
        except RequestFailed:  # it failed (timed out) with logprobs only: slow at least this much
            teacher.note_measurement(
                logprobs_slowdown=(time.perf_counter() - t0) / max(off[-1], 1e-6)
            )
            teacher.turn_logprobs_off("slow")
            return sum(off) / len(off)
        ratio = (sum(on) / len(on)) / max(sum(off) / len(off), 1e-6)
        if not LOGPROBS_SLOWDOWN_LIMIT / 1.5 <= ratio <= LOGPROBS_SLOWDOWN_LIMIT * 1.5:
            break
    if not on:
        return first.latency_s
    with_them, without = sum(on) / len(on), sum(off) / len(off)
    ratio = with_them / max(without, 1e-6)
    teacher.note_measurement(logprobs_slowdown=ratio)
    if ratio > LOGPROBS_SLOWDOWN_LIMIT and with_them - without >= LOGPROBS_MIN_EXTRA_S:
        teacher.turn_logprobs_off("slow")
        return without
    return with_them


async def _ignores_model_name(teacher: OpenAITeacher, codebook: Codebook, text: str) -> bool | None:
    """Ask for ``PROBE_MODEL``: answered, the server ignores the model name (True); refused
    with a 4xx, it does not (False); anything else: not known (None)."""
    try:
        await teacher.complete(codebook, text, model=PROBE_MODEL, logprobs=False)
    except RequestFailed as failed:
        return False if failed.status is not None and 400 <= failed.status < 500 else None
    return True


def _rejection_notes(teacher: OpenAITeacher) -> list[str]:
    return [
        f"The server rejected {what} ({why}), so it is not used."
        for what, why in teacher.rejections
    ]


def _logprobs_notes(caps: Capabilities) -> list[str]:
    if caps.logprobs_off != "slow":
        return []
    return [
        f"Logprobs are turned off: with them an answer took {caps.logprobs_slowdown or 0:.1f} "
        f"times as long on this server (the limit is {LOGPROBS_SLOWDOWN_LIMIT:g}×), so "
        "answers carry no confidence (repeats still give a consistency score)."
    ]


def _model_notes(caps: Capabilities, endpoint: Endpoint) -> list[str]:
    reported = caps.reported_model
    named = (
        f" (its answers name the model '{reported}')"
        if reported and reported != endpoint.model
        else ""
    )
    if caps.ignores_model_name:
        return [
            f"The server ignores the model name: a request for the made-up model "
            f"'{PROBE_MODEL}' was answered too, so it answers with whatever model it serves"
            f"{named}, whichever name is given."
        ]
    if reported and not reported.startswith(endpoint.model):
        return [f"Asked for '{endpoint.model}', the server answered as '{reported}'."]
    return []


def test_connection(
    endpoint: Endpoint, codebook: Codebook, text: str, *, logprobs: bool = True
) -> ConnectionResult:
    """Test connection: ask for one text's label and say in one sentence whether the endpoint
    works, settling and measuring its capabilities (``check_connection``).

    The first request negotiates the structured form and logprobs; then, where logprobs
    come back, the same text is asked without and with them in turn to measure their cost
    (``LOGPROBS_SLOWDOWN_LIMIT``); last, a request for the made-up model ``PROBE_MODEL``
    tells whether the server ignores the model name. Each request is tried once. For callers
    without an event loop (a page, the command line); never raises for a network, key or
    model problem.
    """
    return asyncio.run(check_connection(endpoint, codebook, text, logprobs=logprobs))


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
