"""A loopback OpenAI-compatible chat-completions server for tests, browser tests and benchmarks.

Standard library only. It answers every request with a codebook label chosen by a fixed rule,
so results are deterministic, and it can inject the faults a real endpoint shows (latency, 429
with Retry-After, 500, malformed JSON, dropped connections, off-codebook answers, rejected
``response_format`` or ``logprobs``, wrong key, unknown model, and a careless server that
repeats the request's Authorization header in what it sends back: ``echo_auth``). It counts
requests per text and the most requests it had in flight.

In-process::

    with LoopbackLLM(ServerConfig(latency=0.01)) as srv:
        Endpoint(base_url=srv.base_url, model="loopback")
        srv.config.fail_500_first = 2      # change faults at run time
        srv.stats()["per_text"]

As a process (the URL is the first line of stdout; ``GET /stats`` returns the counters,
``POST /config`` with a JSON object changes the config, ``POST /reset`` zeroes the counters)::

    python -m tests.llm_server --port 0 --latency 0.1

How a label is chosen: the labels come from the ``response_format`` schema's enum, else from
the ``Labels:`` list of the system message (``- name: definition`` lines). The text is the
last user message (inside its triple quotes, if any). The first ``keywords`` entry whose key
occurs in the text (case-insensitive) names the label; otherwise a label that occurs as a whole
word in the text; otherwise ``labels[sha256(text) % len(labels)]``. ``scripted`` overrides
this: the i-th request for a text gets the i-th answer of its list (cycling).
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
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_LABEL_LINE = re.compile(r"^- (.+?)(?::\s.*|:)?$")
_QUOTED_TEXT = re.compile(r'"""\n(.*)\n"""', re.DOTALL)
_TOKEN = re.compile(r"\w+|[^\w\s]+|\s+")


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
    reject_response_format: bool = False  # 400 "response_format is not supported"
    reject_logprobs: bool = False  # 400 "logprobs are not supported"
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


def labels_from(body: dict[str, Any]) -> list[str]:
    """The label names of a request: the schema's enum, else the system message's list."""
    fmt = body.get("response_format") or {}
    try:
        enum = fmt["json_schema"]["schema"]["properties"]["label"]["enum"]
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


def text_from(body: dict[str, Any]) -> str:
    """The text being labelled: the last user message, unwrapped from its triple quotes."""
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    content = str(users[-1].get("content") or "") if users else ""
    m = _QUOTED_TEXT.search(content)
    return m.group(1) if m else content


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


def _logprobs(content: str, label: str, probability: float, top: int) -> dict[str, Any]:
    """Token logprobs whose label tokens multiply to ``probability``; the others are near 1."""
    tokens = _TOKEN.findall(content)
    start = content.find(label)
    end = start + len(label)
    label_idx = []
    pos = 0
    for i, tok in enumerate(tokens):
        if start >= 0 and pos < end and pos + len(tok) > start:
            label_idx.append(i)
        pos += len(tok)
    per = math.log(probability) / max(1, len(label_idx))
    items = []
    for i, tok in enumerate(tokens):
        lp = per if i in label_idx else -1e-4
        alts = [{"token": tok, "logprob": lp, "bytes": list(tok.encode())}]
        alts += [
            {"token": f"alt{j}", "logprob": lp - 2.0 - j, "bytes": list(f"alt{j}".encode())}
            for j in range(max(0, top - 1))
        ]
        items.append(
            {"token": tok, "logprob": lp, "bytes": list(tok.encode()), "top_logprobs": alts}
        )
    return {"content": items, "refusal": None}


def _rough_tokens(text: str) -> int:
    return max(1, len(text) // 4)


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
        err = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
        self._send(status, {"error": err}, headers)

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
        if path in ("/v1/chat/completions", "/chat/completions"):
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
            fail_500_random = cfg.fail_500_rate > 0 and state.random.random() < cfg.fail_500_rate
        status = 200
        try:
            delay = cfg.latency + (random.uniform(0, cfg.jitter) if cfg.jitter else 0.0)
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
        auth = self.headers.get("Authorization") or ""
        if cfg.api_key is not None and auth != f"Bearer {cfg.api_key}":
            self._error(401, "Incorrect API key provided.", "invalid_api_key")
            return 401
        if cfg.echo_auth in ("error", "answer"):
            token = auth.removeprefix("Bearer ").strip()
            echoed = f"Request with 'Authorization: {auth}' refused; key {token} is not valid."
            if cfg.echo_auth == "error":
                self._error(400, echoed, "invalid_request")
                return 400
            self._send(200, _completion(n, str(body.get("model") or ""), echoed, None))
            return 200
        model = str(body.get("model") or "")
        if cfg.models is not None and model not in cfg.models:
            self._error(404, f"The model '{model}' does not exist.", "model_not_found")
            return 404
        if cfg.reject_response_format and body.get("response_format") is not None:
            self._error(400, "response_format is not supported by this server.")
            return 400
        if cfg.reject_logprobs and body.get("logprobs"):
            self._error(400, "logprobs are not supported by this server.")
            return 400
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

        labels = labels_from(body)
        off = _has(text, cfg.off_codebook_marker) or (cfg.off_codebook_first and seen == 1)
        label = cfg.off_codebook_answer if off else choose_label(text, labels, cfg.keywords)
        script = cfg.scripted.get(text)
        if script:
            label = script[(seen - 1) % len(script)]
        structured = body.get("response_format") is not None
        content = json.dumps({"label": label}) if structured else label
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
        if body.get("logprobs"):
            top = int(body.get("top_logprobs") or 0)
            choice["logprobs"] = _logprobs(content, label, cfg.label_probability, top)
        prompt = sum(_rough_tokens(str(m.get("content") or "")) + 4 for m in body["messages"])
        completion = len(_TOKEN.findall(content))
        self._send(
            200,
            {
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
            },
        )
        return 200


def _completion(n: int, model: str, content: str, logprobs: Any) -> dict[str, Any]:
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
            "prompt_tokens": 10,
            "completion_tokens": completion,
            "total_tokens": 10 + completion,
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
