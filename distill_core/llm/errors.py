"""What went wrong with a request to an LLM endpoint, in one sentence a user can act on, and
whether asking again can help. Every teacher, the runner, the jobs and the command line use
these words; none of them includes request headers, and every one goes through ``keys.mask``
(a server may repeat the key in its error body)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import openai

from distill_core.keys import mask
from distill_core.llm.policy import EndpointRefused


class MalformedResponse(Exception):
    """The server answered 200 but the body is not a usable chat completion."""


class RequestFailed(Exception):
    """A question gave up; ``str(e)`` is one sentence without the key (masked); ``status`` is
    the last HTTP status the server answered with (``None``: no answer)."""

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        request: dict[str, Any],
        status: int | None = None,
    ) -> None:
        message = mask(message)
        super().__init__(message)
        self.message = message
        self.attempts = attempts
        self.request = request
        self.status = status


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes/contexts, outermost first."""
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 20:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _request_url(exc: BaseException) -> str:
    """The URL an openai error was about, without its query string ("the server" if unknown)."""
    try:
        url = exc.request.url  # type: ignore[attr-defined]
        return str(url.copy_with(query=None))
    except Exception:
        return "the server"


def _timeout_of(exc: BaseException) -> float | None:
    try:
        timeout = exc.request.extensions.get("timeout") or {}  # type: ignore[attr-defined]
        value = timeout.get("read") or timeout.get("connect")
        return float(value) if value is not None else None
    except Exception:
        return None


def server_reason(exc: BaseException, limit: int = 200) -> str | None:
    """What the server itself wrote as the reason in its error body, shortened and masked:
    OpenAI's ``{"error": {"message": …}}``, vLLM's ``{"message": …}``, LM Studio's
    ``{"error": "…"}``, or a body that is plain text; ``None`` when the body says nothing."""
    body = getattr(exc, "body", None)
    message: Any = None
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, Mapping) else inner
        if isinstance(message, Mapping | list):
            message = json.dumps(message)
    elif isinstance(body, str):
        message = body
    if not message:
        return None
    return mask(_shorten(str(message), limit))


def _shorten(message: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", message).strip().rstrip(".")
    text = re.sub(r"^Error code: \d+ - ", "", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _server_message(exc: BaseException, limit: int = 200) -> str:
    """The server's reason (``server_reason``), else the exception's own message, shortened."""
    reason = server_reason(exc, limit)
    if reason:
        return reason
    return _shorten(str(getattr(exc, "message", None) or exc), limit)


def _error_code(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return str(code or "")


def describe_error(exc: BaseException) -> str:
    """One sentence a user can act on for any failure of a request to an LLM endpoint.

    This is the single place where exceptions become messages (runs, the connection test and
    the command line all use it). It never includes request headers, and what a server wrote
    is masked (``keys.mask``), so it never holds a key.
    """
    return mask(_describe(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RequestFailed):
        return exc.message
    if isinstance(exc, EndpointRefused):
        return str(exc)
    if isinstance(exc, openai.APIConnectionError | TimeoutError):
        # Look at the causes first: some transports report a refused or dropped connection
        # as a timeout.
        reason = _connection_failure(exc)
        if reason is None and isinstance(exc, openai.APITimeoutError | TimeoutError):
            seconds = _timeout_of(exc)
            within = f"within {seconds:g} s" if seconds is not None else "in time"
            return f"The server did not answer {within}."
        return f"Could not reach {_request_url(exc)}: {reason or 'the connection failed'}."
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = _server_message(exc)
        if status == 401:
            return "The server rejected the API key (401)."
        if status == 403:
            return f"The server refused access (403): {detail}."
        if status == 404:
            model = _request_model(exc)
            low = detail.lower()
            if model and ("model" in low or _error_code(exc) == "model_not_found"):
                return f"The model '{model}' was not found on the server (404)."
            return (
                f"The server has no chat-completions endpoint at {_request_url(exc)} (404); "
                "check the base URL (it often ends in /v1)."
            )
        if status == 429:
            if "quota" in detail.lower() or _error_code(exc) == "insufficient_quota":
                return f"The account has no quota left (429): {detail}."
            return "The server kept answering 'too many requests' (429); lower the concurrency or try later."
        if status >= 500:
            reason = server_reason(exc)
            return f"The server failed with an internal error ({status})" + (
                f": {reason}." if reason else "."
            )
        if 300 <= status < 400:
            return (
                f"The server answered with a redirect ({status}), which is not followed; use the "
                "address it redirects to as the base URL."
            )
        return f"The server rejected the request ({status}): {detail}."
    if isinstance(
        exc, MalformedResponse | json.JSONDecodeError | openai.APIResponseValidationError
    ):
        return "The server sent a response that is not a valid chat completion."
    if isinstance(exc, openai.OpenAIError):
        return f"The request failed: {_server_message(exc)}."
    return f"The request failed unexpectedly ({type(exc).__name__}: {_server_message(exc)})."


def _connection_failure(exc: BaseException) -> str | None:
    """Why a connection failed, from the exception's causes; ``None`` when nothing specific."""
    for cause in _chain(exc):
        causes = [cause, getattr(cause, "os_error", None)]
        for item in causes:
            if item is None:
                continue
            name = type(item).__name__
            text = str(item).lower()
            if isinstance(item, ConnectionRefusedError) or "refused" in text:
                return "connection refused"
            if name == "gaierror" or "name or service not known" in text or "nodename" in text:
                return "the host name could not be resolved"
            if "ssl" in name.lower() or "certificate" in text:
                return "the secure connection (TLS) failed"
            if (
                name in ("RemoteProtocolError", "ServerDisconnectedError", "ReadError")
                or "disconnected" in text
                or isinstance(item, ConnectionResetError)
            ):
                return "the server closed the connection without answering"
    return None


def _request_model(exc: BaseException) -> str | None:
    try:
        body = json.loads(exc.request.content)  # type: ignore[attr-defined]
        return str(body.get("model")) if isinstance(body, dict) and body.get("model") else None
    except Exception:
        return None


def is_retryable(exc: BaseException) -> bool:
    """429 (but not an exhausted quota), 5xx, timeouts, dropped connections, malformed bodies."""
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429:
            return _error_code(exc) != "insufficient_quota"
        return exc.status_code >= 500
    return isinstance(
        exc,
        openai.APIConnectionError  # includes APITimeoutError
        | MalformedResponse
        | json.JSONDecodeError
        | openai.APIResponseValidationError
        | TimeoutError,
    )
