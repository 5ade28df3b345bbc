"""The teacher interface: an endpoint's settings, one answer's record, and the ``Teacher`` base.

A teacher labels one text with a codebook and returns an ``Answer``; it never raises for a
failed request (the failure becomes ``status="error"`` with one sentence). Everything here is
free of network and of the API key: ``Endpoint`` hides the key from ``repr`` and from
``public_dict()``, registers it for ``keys.mask``, and ``Answer.request`` holds only what was
sent in the body. Which key goes where is ``llm.policy``'s rule.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

from distill_core import keys
from distill_core.clock import utcnow
from distill_core.llm.policy import UrlPolicy, server_key

if TYPE_CHECKING:
    from distill_core.codebook import Codebook

Status = Literal["ok", "invalid", "error"]
#: How a server is asked for structured output, in the order they are tried (``none``: a plain
#: prompt, its answer parsed strictly). See ``openai_teacher.structured_fields``.
StructuredForm = Literal["json_schema", "json_object_schema", "guided_json", "none"]
STRUCTURED_FORMS: tuple[str, ...] = get_args(StructuredForm)
#: Why a teacher does not ask for logprobs.
LogprobsOff = Literal["switched off", "rejected", "not returned", "slow"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask: any OpenAI-compatible chat-completions server.

    ``api_key`` (typed for a session, or a stored key once decrypted) is excluded from
    ``repr`` and from ``public_dict()`` (the form stored in records) and registered for
    ``keys.mask``; ``None`` means the server's own key when ``llm.policy`` allows it for this
    base URL, else none. ``timeout_s`` bounds one request (connect + answer).
    """

    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    api_key: str | None = field(default=None, repr=False, compare=False)
    temperature: float = 0.0
    max_tokens: int = 50
    seed: int | None = None
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        keys.register(self.api_key)

    def public_dict(self) -> dict[str, Any]:
        """Every setting except the key, for records, logs and the methods appendix."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "api_key"}

    def resolved_key(self, policy: UrlPolicy | None = None) -> str:
        """The key to send: the given one; else the server's ``OPENAI_API_KEY`` when
        ``policy`` (default ``UrlPolicy.from_env()``) allows it for this base URL; else the
        placeholder "not-needed" (local servers accept any key)."""
        if self.api_key:
            return self.api_key
        own = server_key()
        if own and (policy or UrlPolicy.from_env()).server_key_allowed(self.base_url):
            return own
        return keys.NO_KEY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Endpoint:
        """An endpoint from ``OPENAI_BASE_URL`` and ``OPENAI_MODEL``; the server's key
        (``OPENAI_API_KEY``) is not copied into it: ``resolved_key`` adds it where allowed."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            "base_url": env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            "model": env.get("OPENAI_MODEL") or DEFAULT_MODEL,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


FORM_NAMES = {
    "json_schema": "json_schema",
    "json_object_schema": "json_object schema",
    "guided_json": "guided_json",
    "none": "none (a plain prompt, its answer parsed strictly)",
}


@dataclass(frozen=True)
class Capabilities:
    """What was settled for one endpoint (server and model): the form of structured output it
    accepts, whether logprobs are asked for, and what Test connection measured.

    ``structured``: one of ``STRUCTURED_FORMS``, ``None`` while not yet known (then a teacher
    negotiates: it tries the forms in order). ``logprobs``: ``True`` (asked for, and the server
    gives them), ``False`` (not asked; ``logprobs_off`` says why), ``None`` (not yet known).
    ``logprobs_slowdown``: seconds per answer with logprobs divided by seconds without, where
    measured. ``ignores_model_name``: the server answered a request for a made-up model name
    (it serves whatever model it has loaded; ``reported_model`` is the name its answers carry).
    ``max_completion_tokens``: the server wants ``max_completion_tokens`` for ``max_tokens``.
    Stored in a saved endpoint's params (``to_dict``/``from_dict``; a row without it, or from
    a newer version, reads as nothing known).
    """

    structured: StructuredForm | None = None
    logprobs: bool | None = None
    logprobs_off: LogprobsOff | None = None
    logprobs_slowdown: float | None = None
    seconds_per_answer: float | None = None
    ignores_model_name: bool | None = None
    reported_model: str | None = None
    max_completion_tokens: bool = False
    checked_at: datetime | None = None

    VERSION = 1

    @property
    def settled(self) -> bool:
        """True when the structured form and logprobs are known (no negotiation needed)."""
        return self.structured is not None and self.logprobs is not None

    def describe(self) -> str:
        """The features in use, e.g. "structured output: json_object schema; logprobs: off
        (slow on this server: 12× slower)"."""
        form = FORM_NAMES.get(self.structured or "", "not yet known")
        return f"structured output: {form}; logprobs: {self.logprobs_text()}"

    def logprobs_text(self) -> str:
        """Logprobs on or off and why: "on (1.1× the time)", "off (the server rejects them)"."""
        if self.logprobs is None:
            return "not yet known"
        if self.logprobs:
            measured = self.logprobs_slowdown is not None
            return f"on ({_times(self.logprobs_slowdown)} the time)" if measured else "on"
        reason = {
            "switched off": "switched off",
            "rejected": "off (the server rejects them)",
            "not returned": "off (the server returns none)",
            "slow": f"off (slow on this server: {_times(self.logprobs_slowdown)} slower)",
        }
        return reason.get(self.logprobs_off or "", "off")

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["checked_at"] = self.checked_at.isoformat() if self.checked_at else None
        return {"version": self.VERSION, **data}

    @classmethod
    def from_dict(cls, data: Any) -> Capabilities | None:
        """The stored record, or ``None`` for no record, a newer version or an unreadable one."""
        if not isinstance(data, Mapping) or data.get("version") != cls.VERSION:
            return None
        try:
            structured = data.get("structured")
            off = data.get("logprobs_off")
            checked = data.get("checked_at")
            return cls(
                structured=structured if structured in STRUCTURED_FORMS else None,
                logprobs=_opt_bool(data.get("logprobs")),
                logprobs_off=off if off in get_args(LogprobsOff) else None,
                logprobs_slowdown=_opt_float(data.get("logprobs_slowdown")),
                seconds_per_answer=_opt_float(data.get("seconds_per_answer")),
                ignores_model_name=_opt_bool(data.get("ignores_model_name")),
                reported_model=str(data["reported_model"]) if data.get("reported_model") else None,
                max_completion_tokens=bool(data.get("max_completion_tokens", False)),
                checked_at=datetime.fromisoformat(checked) if checked else None,
            )
        except (TypeError, ValueError):
            return None


def _times(factor: float | None) -> str:
    """A slowdown as "2.4×" or "12×" ("several times" when not measured)."""
    if factor is None:
        return "several times"
    return f"{factor:.1f}×" if factor < 10 else f"{factor:.0f}×"


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _opt_float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass
class Answer:
    """One labelling request's outcome, as stored by the caller.

    ``status``: ``ok`` (``label`` is a codebook label), ``invalid`` (the answer was no label even
    when asked again; ``raw`` keeps it), ``error`` (no usable answer; ``error`` is one sentence).
    Tokens are summed over every attempt that got an answer; ``attempts`` counts HTTP requests.
    ``request`` is the body sent (messages and parameters), never the key: for a re-ask
    (``reasked``: the first answer was no label, so it was asked again as a correction) the
    re-ask's body, which holds the first answer and the correction.
    """

    label: str | None
    status: Status
    raw: str | None = None
    confidence: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0
    structured: bool = False
    error: str | None = None
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime = field(default_factory=utcnow)
    request: dict[str, Any] = field(default_factory=dict)
    reasked: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Teacher(ABC):
    """Something that labels texts with a codebook: an LLM endpoint or the local baseline.

    ``ask`` never raises for a failed request; it returns an ``Answer`` with status ``error``.
    """

    #: Short identifier stored with every run ("openai", "local").
    name: str = "teacher"
    #: What a user sees in the app.
    display_name: str = "Teacher"

    @abstractmethod
    async def ask(self, codebook: Codebook, text: str, *, repeat_index: int = 0) -> Answer:
        """Label one text; ``repeat_index`` numbers repeated asks of the same text (0, 1, ...)."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The model and parameters that define this teacher's answers (never the key)."""

    def set_concurrency(self, concurrency: int) -> None:  # noqa: B027 - optional hook
        """Size internal pools for ``concurrency`` requests in flight (called before a run)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the teacher may be used again afterwards (it reopens them)."""

    async def __aenter__(self) -> Teacher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def aggregate(answers: Sequence[Answer]) -> tuple[str | None, float | None, Status]:
    """Combine K repeated answers for one text into ``(modal label, consistency, status)``.

    The modal label is the most frequent label among ``ok`` answers; a tie goes to the label
    that occurred first. Consistency = (answers equal to the modal label) / (ok + invalid
    answers): an invalid answer counts as disagreeing, an ``error`` is no answer at all and is
    left out. Status is ``ok`` when any answer was a label, else ``invalid`` when any answer
    came back, else ``error`` (then label and consistency are ``None``).
    """
    labels = [a.label for a in answers if a.status == "ok" and a.label is not None]
    answered = sum(1 for a in answers if a.status in ("ok", "invalid"))
    if labels:
        counts = Counter(labels)
        top = max(counts.values())
        modal = next(label for label in labels if counts[label] == top)  # first occurrence
        return modal, top / answered, "ok"
    if answered:
        return None, 0.0, "invalid"
    return None, None, "error"
