"""A loopback OpenAI-compatible chat-completions server for tests, browser tests and benchmarks.

Standard library only. It answers every request with a codebook label chosen by a fixed rule,
so results are deterministic, and it can inject the faults a real endpoint shows (latency, 429
with Retry-After, 500, malformed JSON, dropped connections, off-codebook answers, near-misses
such as "defence" for "defense", rejected ``response_format`` or ``logprobs``, slow logprobs,
wrong key, unknown model, and a careless server that repeats the request's Authorization
header in what it sends back: ``echo_auth``). It counts requests per text and the most
requests it had in flight.

``ServerConfig.profile`` makes it answer as one server family does (``PROFILES``), with that
server's documented request and error shapes: which structured-output forms it accepts and how
it rejects the others (status and body), whether it returns logprobs, whether it checks or
echoes the model name, its usage fields, and for Azure the deployment path, ``api-version``
query and ``api-key`` header. "generic" (the default) accepts every form.

In-process::

    with LoopbackLLM(ServerConfig(latency=0.01)) as srv:
        Endpoint(base_url=srv.base_url, model="loopback")
        srv.config.fail_500_first = 2      # change faults at run time
        srv.stats()["per_text"]

    with LoopbackLLM(ServerConfig(profile="llamacpp")) as srv:
        Endpoint(base_url=srv.base_url, model="anything")

As a process (the URL is the first line of stdout; ``GET /stats`` returns the counters,
``POST /config`` with a JSON object changes the config, ``POST /reset`` zeroes the counters)::

    python -m tests.llm_server --port 0 --latency 0.1 --profile ollama

How a label is chosen: the labels come from the request's schema's enum (any structured form),
else from the ``Labels:`` list of the system message (``- name: definition`` lines). The text
is the last user message that holds one (inside its triple quotes; a re-ask's correction comes
after it). The first ``keywords`` entry whose key occurs in the text (case-insensitive) names
the label; otherwise a label that occurs as a whole word in the text; otherwise
``labels[sha256(text) % len(labels)]``. ``scripted`` overrides this: the i-th request for a
text gets the i-th answer of its list (cycling).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import random
import re
import socket
import sys
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_LABEL_LINE = re.compile(r"^- (.+?)(?::\s.*|:)?$")
_QUOTED_TEXT = re.compile(r'"""\n(.*)\n"""', re.DOTALL)
_TOKEN = re.compile(r"\w+|[^\w\s]+|\s+")
_AZURE_PATH = re.compile(r"^/openai/deployments/([^/]+)/chat/completions$")


@dataclass
class ServerConfig:
    """What the server does; change attributes at run time (reads are per request)."""

    latency: float = 0.0  # seconds per answer
    jitter: float = 0.0  # + uniform(0, jitter) seconds
    keywords: dict[str, str] = field(default_factory=dict)  # keyword -> label
    label_probability: float = 0.8  # confidence the logprobs encode for the label tokens
    fail_429_first: int = 0  # the first N chat requests get 429
    fail_429_every: int = 0  # every Nth chat request gets 429 (0: never)
    retry_after: str | None = "0"  # Retry-After header sent with a 429 (None: none)
    retry_after_ms: str | None = None  # retry-after-ms header sent with a 429
    fail_500_first: int = 0  # the first N chat requests (after 429s) get 500
    fail_500_rate: float = 0.0  # share of chat requests that get 500 (seeded random)
    fail_500_marker: str | None = None  # texts containing this always get 500
    malformed_first: int = 0  # the first N chat requests get a truncated JSON body
    malformed_marker: str | None = None  # texts containing this always get malformed JSON
    drop_first: int = 0  # the first N chat requests: connection closed without an answer
    off_codebook_marker: str | None = None  # texts containing this always get a non-label
    off_codebook_first: bool = False  # the first answer for each text is a non-label
    off_codebook_answer: str = "unsure"
    scripted: dict[str, list[str]] = field(default_factory=dict)  # text -> answers, in turn
    # label -> what a first ask (not a correction) answers instead, e.g. {"defense": "defence"}
    near_miss: dict[str, str] = field(default_factory=dict)
    reject_response_format: bool = False  # 400 for any structured output: "… is not supported"
    reject_logprobs: bool = False  # 400 "logprobs are not supported"
    logprobs_latency: float = 0.0  # extra seconds per answer when logprobs are asked for
    profile: str = "generic"  # which server family to answer as: a key of PROFILES
    api_key: str | None = None  # required Bearer key (401 otherwise)
    models: list[str] | None = None  # known models (404 for others); None accepts any
    # Repeat the request's Authorization header: "error" answers 400 with the header and the
    # bare token in the error message; "answer" answers 200 with them as the content.
    echo_auth: str | None = None
    seed: int = 0


class _State:
    """Counters shared by the handler threads."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.random = random.Random(config.seed)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests = 0  # chat requests
            self.answered = 0  # chat requests answered with 200
            self.in_flight = 0
            self.max_in_flight = 0
            self.per_text: Counter[str] = Counter()
            self.statuses: Counter[str] = Counter()
            self.bodies: list[dict[str, Any]] = []  # the last chat request bodies (max 1000)
            self.auth_headers: list[str] = []
            self.api_key_headers: list[str] = []  # Azure's api-key header
            self.paths: list[str] = []  # the chat requests' paths, with their query

    def stats(self) -> dict[str, Any]:
        with self.lock:
            n_texts = len(self.per_text)
            return {
                "requests": self.requests,
                "answered": self.answered,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "distinct_texts": n_texts,
                "requests_per_text": (self.requests / n_texts) if n_texts else 0.0,
                "per_text": dict(self.per_text),
                "statuses": dict(self.statuses),
            }


def request_form(body: dict[str, Any]) -> str:
    """Which structured-output form a request asks for: "json_schema", "json_object_schema",
    "json_object", "guided_json", "structured_outputs" or "none"."""
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return "json_schema"
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return "json_object_schema" if "schema" in fmt else "json_object"
    for name in ("guided_json", "structured_outputs"):
        if body.get(name) is not None:
            return name
    return "none"


def _schema_of(body: dict[str, Any]) -> Any:
    fmt = body.get("response_format") or {}
    if isinstance(fmt, dict) and isinstance(fmt.get("json_schema"), dict):
        return fmt["json_schema"].get("schema")
    if isinstance(fmt, dict) and "schema" in fmt:
        return fmt["schema"]
    outputs = body.get("structured_outputs")
    return outputs.get("json") if isinstance(outputs, dict) else body.get("guided_json")


def labels_from(body: dict[str, Any]) -> list[str]:
    """The label names of a request: the schema's enum, else the system message's list."""
    try:
        enum = _schema_of(body)["properties"]["label"]["enum"]
        if enum:
            return [str(x) for x in enum]
    except (KeyError, TypeError):
        pass
    for message in body.get("messages") or []:
        if message.get("role") != "system":
            continue
        content = str(message.get("content") or "")
        section = content.split("Labels:\n", 1)
        if len(section) < 2:
            continue
        names = []
        for line in section[1].split("\n\n", 1)[0].splitlines():
            m = _LABEL_LINE.match(line)
            if m:
                names.append(m.group(1).strip())
        if names:
            return names
    return []


def _users(body: dict[str, Any]) -> list[str]:
    return [
        str(m.get("content") or "") for m in body.get("messages") or [] if m.get("role") == "user"
    ]


def text_from(body: dict[str, Any]) -> str:
    """The text being labelled: the last user message with a triple-quoted text, unwrapped."""
    users = _users(body)
    for content in reversed(users):
        m = _QUOTED_TEXT.search(content)
        if m:
            return m.group(1)
    return users[-1] if users else ""


def is_correction(body: dict[str, Any]) -> bool:
    """True for a re-ask: the last user message is a correction, not a text to label."""
    users = _users(body)
    return bool(users) and not _QUOTED_TEXT.search(users[-1])


def choose_label(text: str, labels: list[str], keywords: dict[str, str]) -> str:
    """The deterministic label for a text (see the module docstring)."""
    low = text.lower()
    for key, label in keywords.items():
        if key.lower() in low:
            return label
    for label in labels:
        if re.search(r"\b" + re.escape(label.lower()) + r"\b", low):
            return label
    if not labels:
        return "unknown"
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return labels[int.from_bytes(digest[:8], "big") % len(labels)]


def _value_start(content: str, structured: bool) -> int:
    """Where the label value starts in an answer: inside the JSON string, or the text."""
    if structured:
        return content.index('"', content.index(":")) + 1
    return 0


def _logprobs(
    content: str, label: str, labels: list[str], structured: bool, probability: float, top: int
) -> dict[str, Any]:
    """Token logprobs in the chat form: the value's first token has ``probability``, and its
    ``top_logprobs`` give the other labels' first tokens the rest, shared equally (a few junk
    tokens fill up to ``top``); every other token is near-certain. So the probability among
    the labels is ``probability`` (when the other labels' first tokens differ from it)."""
    tokens = _TOKEN.findall(content)
    start = _value_start(content, structured)
    others: dict[str, float] = {}
    for name in labels:
        first = _TOKEN.findall(name)[0] if name else ""
        if name != label and first:
            others[first] = others.get(first, 0.0) + 1.0
    pos, items = 0, []
    for tok in tokens:
        first_of_value = pos <= start < pos + len(tok)
        pos += len(tok)
        if first_of_value and others:
            lp = math.log(probability)
            share = (1.0 - probability) / sum(others.values())
            alts = [(tok, lp)] + [(t, math.log(max(share * n, 1e-12))) for t, n in others.items()]
        else:
            lp = -1e-4
            alts = [(tok, lp)]
        alts += [(f"alt{j}", -20.0 - j) for j in range(top)]
        top_items = [
            {"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in alts[: max(top, 0)]
        ]
        items.append(
            {"token": tok, "logprob": lp, "bytes": list(tok.encode()), "top_logprobs": top_items}
        )
    return {"content": items, "refusal": None}


def _rough_tokens(text: str) -> int:
    return max(1, len(text) // 4)


# --- server families ---------------------------------------------------------------------------

_PYDANTIC_LITERAL = (
    "[{{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input "
    "should be 'text' or 'json_object'\", 'input': '{got}', 'ctx': {{'expected': \"'text' or "
    "'json_object'\"}}}}]"
)
_PYDANTIC_EXTRA = (
    "[{{'type': 'extra_forbidden', 'loc': ('body', {where}), 'msg': 'Extra inputs are not "
    "permitted', 'input': {{...}}}}]"
)
_UNRECOGNISED = "Unrecognized request argument supplied: {field}"
_AZURE_JSON_SCHEMA_SINCE = "2024-08-01-preview"
# OpenAI's (and Azure's) 400s for the forms other servers accept.
_OPENAI_REJECTS = {
    "json_object_schema": (400, "Unknown parameter: 'response_format.schema'."),
    "guided_json": (400, _UNRECOGNISED.format(field="guided_json")),
    "structured_outputs": (400, _UNRECOGNISED.format(field="structured_outputs")),
}


@dataclass(frozen=True)
class Profile:
    """How one server family answers a chat-completions request.

    ``rejects``: structured-output form (``request_form``) -> (status, message) of its error
    (forms not named are accepted; a form a server does not know but silently ignores is
    listed in ``ignores``, and its answers then come back unstructured). ``error_shape``: the
    body an error comes in ("openai": ``{"error": {"message", "type", "param", "code"}}``,
    "azure": ``{"error": {"code", "message"}}``, "vllm": ``{"object": "error", "message", …}``,
    "lmstudio": ``{"error": "…"}``). ``logprobs``: whether asked-for logprobs come back.
    ``checks_model``: whether an unknown model name (``ServerConfig.models``) is refused
    (404) or answered by whatever model is served; ``answers_as``: the model name answers
    carry (``None``: the requested one; "{model}" is replaced by it).
    """

    name: str
    rejects: dict[str, tuple[int, str]] = field(default_factory=dict)
    ignores: frozenset[str] = frozenset()
    error_shape: str = "openai"
    logprobs: bool = True
    checks_model: bool = True
    answers_as: str | None = None
    model_not_found: str = "The model '{model}' does not exist."
    azure: bool = False


PROFILES: dict[str, Profile] = {
    # Everything accepted: the default the other tests use.
    "generic": Profile("generic"),
    # api.openai.com: json_schema; an unknown field or response_format key is a 400; the
    # answer names the dated snapshot of the model asked for.
    "openai": Profile(
        "openai",
        rejects=_OPENAI_REJECTS,
        answers_as="{model}-2024-07-18",
        model_not_found="The model `{model}` does not exist or you do not have access to it.",
    ),
    # Azure OpenAI: /openai/deployments/D/chat/completions?api-version=V with an api-key
    # header; the deployment decides the model (the body's is ignored); json_schema needs
    # api-version 2024-08-01-preview or later.
    "azure": Profile(
        "azure",
        rejects=_OPENAI_REJECTS,
        error_shape="azure",
        checks_model=False,
        answers_as="gpt-4o-2024-08-06",
        azure=True,
    ),
    # vLLM 0.6 and later: json_schema, json_object (a "schema" key beside it is ignored),
    # guided_json before 0.12 and structured_outputs from 0.10.2; errors at the top level.
    "vllm": Profile(
        "vllm",
        error_shape="vllm",
        model_not_found="The model `{model}` does not exist.",
    ),
    # vLLM 0.5: response_format knows only text and json_object, extra inputs are forbidden
    # (pydantic, answered 400); guided decoding by guided_json.
    "vllm-0.5": Profile(
        "vllm-0.5",
        rejects={
            "json_schema": (400, _PYDANTIC_LITERAL.format(got="json_schema")),
            "json_object_schema": (
                400,
                _PYDANTIC_EXTRA.format(where="'response_format', 'schema'"),
            ),
            "structured_outputs": (400, _PYDANTIC_EXTRA.format(where="'structured_outputs'")),
        },
        error_shape="vllm",
        model_not_found="The model `{model}` does not exist.",
    ),
    # Ollama's /v1: json_schema becomes its native "format" (json_object its JSON mode);
    # fields it does not know (guided_json; logprobs before 0.12.11) are ignored.
    "ollama": Profile(
        "ollama",
        ignores=frozenset({"guided_json", "structured_outputs"}),
        logprobs=False,
        model_not_found='model "{model}" not found, try pulling it first',
    ),
    # LM Studio: json_schema only (a 400 with the error as a bare string otherwise); logprobs
    # are accepted but not returned; the loaded model answers whatever the name.
    "lmstudio": Profile(
        "lmstudio",
        rejects={
            "json_object": (400, "'response_format.type' must be 'json_schema'"),
            "json_object_schema": (400, "'response_format.type' must be 'json_schema'"),
        },
        ignores=frozenset({"guided_json", "structured_outputs"}),
        error_shape="lmstudio",
        logprobs=False,
        checks_model=False,
        answers_as="qwen2.5-7b-instruct",
    ),
    # llama-cpp-python's server (0.3): response_format type must be text or json_object (its
    # validation error surfaces as a 500), json_object takes a "schema"; logprobs with
    # top_logprobs; any model name is answered by the loaded model, echoing the name.
    "llamacpp": Profile(
        "llamacpp",
        rejects={"json_schema": (500, _PYDANTIC_LITERAL.format(got="json_schema"))},
        ignores=frozenset({"guided_json", "structured_outputs"}),
        checks_model=False,
    ),
}


def error_body(shape: str, status: int, message: str, code: str | None = None) -> dict:
    """An error body in a server family's shape (see ``Profile``)."""
    if shape == "azure":
        return {"error": {"code": code or str(status), "message": message}}
    if shape == "vllm":
        kind = {400: "BadRequestError", 404: "NotFoundError"}.get(status, "InternalServerError")
        return {"object": "error", "message": message, "type": kind, "param": None, "code": status}
    if shape == "lmstudio":
        return {"error": message}
    kind = "internal_server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _azure_version_too_old(version: str) -> bool:
    return version[:10] < _AZURE_JSON_SCHEMA_SINCE[:10]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True
    server_version = "LoopbackLLM/1.0"
    state: _State  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing -----------------------------------------------------------------------------

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
        for key, value in (headers or {}).items():
            lines.append(f"{key}: {value}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + body)  # one write: no Nagle / delayed-ACK stall

    def _error(self, status: int, message: str, code: str | None = None, **headers: str) -> None:
        shape = PROFILES[self.state.config.profile].error_shape
        self._send(status, error_body(shape, status, message, code), headers)

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw or b"{}")

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # -- routes -------------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        cfg = self.state.config
        if path in ("/v1/models", "/models"):
            names = cfg.models or ["loopback"]
            data = [
                {"id": n, "object": "model", "created": 0, "owned_by": "loopback"} for n in names
            ]
            self._send(200, {"object": "list", "data": data})
        elif path == "/stats":
            self._send(200, self.state.stats())
        elif path == "/config":
            self._send(200, asdict(cfg))
        else:
            self._error(404, f"No route {path}.")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            body = self._read_json()
        except (ValueError, UnicodeDecodeError):
            self._error(400, "The request body is not JSON.")
            return
        if path in ("/v1/chat/completions", "/chat/completions") or _AZURE_PATH.match(path):
            self._chat(body)
        elif path == "/config" and isinstance(body, dict):
            names = {f.name for f in fields(ServerConfig)}
            for key, value in body.items():
                if key in names:
                    setattr(self.state.config, key, value)
            self._send(200, asdict(self.state.config))
        elif path == "/reset":
            self.state.reset()
            self._send(200, {"reset": True})
        else:
            self._error(404, f"No route {path}.")

    def _chat(self, body: dict[str, Any]) -> None:
        state, cfg = self.state, self.state.config
        text = text_from(body)
        with state.lock:
            state.requests += 1
            n = state.requests
            state.per_text[text] += 1
            seen = state.per_text[text]
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            if len(state.bodies) < 1000:
                state.bodies.append(body)
            state.auth_headers.append(self.headers.get("Authorization") or "")
            state.api_key_headers.append(self.headers.get("api-key") or "")
            state.paths.append(self.path)
            fail_500_random = cfg.fail_500_rate > 0 and state.random.random() < cfg.fail_500_rate
        status = 200
        try:
            delay = cfg.latency + (random.uniform(0, cfg.jitter) if cfg.jitter else 0.0)
            if body.get("logprobs"):
                delay += cfg.logprobs_latency
            if delay > 0:
                time.sleep(delay)
            status = self._chat_answer(body, text, n, seen, fail_500_random)
        finally:
            with state.lock:
                state.in_flight -= 1
                state.statuses[str(status)] += 1
                if status == 200:
                    state.answered += 1

    def _chat_answer(
        self, body: dict[str, Any], text: str, n: int, seen: int, fail_500_random: bool
    ) -> int:
        """Write the response for chat request number ``n``; return its HTTP status (0: dropped)."""
        cfg = self.state.config
        profile = PROFILES[cfg.profile]
        refused = self._refusal(body, profile)
        if refused is not None:
            status, message, code = refused
            self._error(status, message, code)
            return status
        if cfg.echo_auth in ("error", "answer"):
            auth = self.headers.get("Authorization") or ""
            token = auth.removeprefix("Bearer ").strip()
            echoed = f"Request with 'Authorization: {auth}' refused; key {token} is not valid."
            if cfg.echo_auth == "error":
                self._error(400, echoed, "invalid_request")
                return 400
            self._send(200, _completion(n, str(body.get("model") or ""), echoed, None))
            return 200
        if n <= cfg.drop_first:
            self._drop()
            return 0
        if n <= cfg.fail_429_first or (cfg.fail_429_every and n % cfg.fail_429_every == 0):
            headers = {}
            if cfg.retry_after is not None:
                headers["Retry-After"] = str(cfg.retry_after)
            if cfg.retry_after_ms is not None:
                headers["retry-after-ms"] = str(cfg.retry_after_ms)
            self._error(429, "Rate limit reached; slow down.", "rate_limit_exceeded", **headers)
            return 429
        first_500 = cfg.drop_first + cfg.fail_429_first
        in_first_500 = first_500 < n <= first_500 + cfg.fail_500_first
        if in_first_500 or fail_500_random or _has(text, cfg.fail_500_marker):
            self._error(500, "The server had an error while processing your request.")
            return 500
        if n <= cfg.malformed_first or _has(text, cfg.malformed_marker):
            self._send(200, b'{"id": "x", "choices": [{"message": {"content": "')
            return 200
        self._send(200, self._answer(body, text, n, seen, profile))
        return 200

    def _refusal(
        self, body: dict[str, Any], profile: Profile
    ) -> tuple[int, str, str | None] | None:
        """Why the request is refused before any fault: key, api-version, model, a rejected
        structured-output form or logprobs (status, message, code); ``None`` to answer it."""
        cfg = self.state.config
        auth = self.headers.get("Authorization") or ""
        model = str(body.get("model") or "")
        if profile.azure:
            path, _, query = self.path.partition("?")
            version = dict(urllib.parse.parse_qsl(query)).get("api-version")
            deployment = _AZURE_PATH.match(path.rstrip("/"))
            if not version or not deployment:
                return 404, "Resource not found", "404"
            if cfg.api_key is not None and self.headers.get("api-key") != cfg.api_key:
                return 401, _AZURE_DENIED, "401"
            if cfg.models is not None and deployment.group(1) not in cfg.models:
                return 404, _AZURE_NO_DEPLOYMENT, "DeploymentNotFound"
            if request_form(body) == "json_schema" and _azure_version_too_old(version):
                return 400, _AZURE_OLD_VERSION.format(version=version), "BadRequest"
        elif cfg.api_key is not None and auth != f"Bearer {cfg.api_key}":
            return 401, "Incorrect API key provided.", "invalid_api_key"
        if cfg.echo_auth in ("error", "answer"):
            return None
        if profile.checks_model and cfg.models is not None and model not in cfg.models:
            return 404, profile.model_not_found.format(model=model), "model_not_found"
        rejected = profile.rejects.get(request_form(body))
        if rejected is not None:
            return rejected[0], rejected[1], None
        if cfg.reject_response_format and request_form(body) != "none":
            named = "response_format" if "response_format" in body else request_form(body)
            return 400, f"{named} is not supported by this server.", None
        if cfg.reject_logprobs and body.get("logprobs"):
            return 400, "logprobs are not supported by this server.", None
        return None

    def _answer(
        self, body: dict[str, Any], text: str, n: int, seen: int, profile: Profile
    ) -> dict[str, Any]:
        """The chat completion for a request that is answered."""
        cfg = self.state.config
        labels = labels_from(body)
        off = _has(text, cfg.off_codebook_marker) or (cfg.off_codebook_first and seen == 1)
        label = cfg.off_codebook_answer if off else choose_label(text, labels, cfg.keywords)
        script = cfg.scripted.get(text)
        if script:
            label = script[(seen - 1) % len(script)]
        if not is_correction(body):
            label = cfg.near_miss.get(label, label)
        form = request_form(body)
        structured = form != "none" and form not in profile.ignores
        content = json.dumps({"label": label}) if structured else label
        model = str(body.get("model") or "") or "loopback"
        if profile.answers_as is not None:
            model = profile.answers_as.format(model=model)
        logprobs = None
        if body.get("logprobs") and profile.logprobs:
            top = int(body.get("top_logprobs") or 0)
            logprobs = _logprobs(content, label, labels, structured, cfg.label_probability, top)
        prompt = sum(_rough_tokens(str(m.get("content") or "")) + 4 for m in body["messages"])
        return _completion(n, model, content, logprobs, prompt)


_AZURE_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
    "a valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)
_AZURE_NO_DEPLOYMENT = (
    "The API deployment for this resource does not exist. If you created the deployment "
    "within the last 5 minutes, please wait a moment and try again."
)
_AZURE_OLD_VERSION = (
    "response_format value as json_schema is enabled only for api versions "
    f"{_AZURE_JSON_SCHEMA_SINCE} and later (this request used {{version}})"
)


def _completion(
    n: int, model: str, content: str, logprobs: Any, prompt: int = 10
) -> dict[str, Any]:
    """A chat-completion body answering ``content``."""
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": content, "refusal": None},
        "finish_reason": "stop",
        "logprobs": logprobs,
    }
    completion = len(_TOKEN.findall(content))
    return {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model or "loopback",
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _has(text: str, marker: str | None) -> bool:
    return bool(marker) and marker in text


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True


class LoopbackLLM:
    """The server in a background thread of this process; a context manager."""

    def __init__(
        self, config: ServerConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ):
        self.config = config or ServerConfig()
        self.state = _State(self.config)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = _Server((host, port), handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (ends in /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the chat requests received (up to 1000)."""
        return self.state.bodies

    @property
    def auth_headers(self) -> list[str]:
        return self.state.auth_headers

    def azure_url(self, deployment: str = "gpt-4o", api_version: str = "2024-10-21") -> str:
        """An Azure OpenAI deployment URL on this server (for the "azure" profile)."""
        return (
            f"http://127.0.0.1:{self.port}/openai/deployments/{deployment}"
            f"?api-version={api_version}"
        )

    def reset(self) -> None:
        self.state.reset()

    def start(self) -> LoopbackLLM:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the server until interrupted; print its base URL on the first line of stdout."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--jitter", type=float, default=0.0)
    p.add_argument("--api-key", default=None)
    p.add_argument("--models", default=None, help="comma-separated list of known models")
    p.add_argument("--keywords", default=None, help='JSON object, e.g. {"vaccine": "health"}')
    p.add_argument("--fail-429-every", type=int, default=0)
    p.add_argument("--fail-500-rate", type=float, default=0.0)
    p.add_argument("--reject-response-format", action="store_true")
    p.add_argument("--reject-logprobs", action="store_true")
    p.add_argument("--echo-auth", choices=["error", "answer"], default=None)
    p.add_argument("--profile", choices=sorted(PROFILES), default="generic")
    p.add_argument("--logprobs-latency", type=float, default=0.0)
    args = p.parse_args(argv)
    config = ServerConfig(
        latency=args.latency,
        jitter=args.jitter,
        api_key=args.api_key,
        models=args.models.split(",") if args.models else None,
        keywords=json.loads(args.keywords) if args.keywords else {},
        fail_429_every=args.fail_429_every,
        fail_500_rate=args.fail_500_rate,
        reject_response_format=args.reject_response_format,
        reject_logprobs=args.reject_logprobs,
        echo_auth=args.echo_auth,
        profile=args.profile,
        logprobs_latency=args.logprobs_latency,
    )
    server = LoopbackLLM(config, host=args.host, port=args.port)
    print(f"http://{args.host}:{server.port}/v1", flush=True)
    try:
        server._server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server._server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
