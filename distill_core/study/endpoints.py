"""LLM endpoints saved in a project: name, base URL, model, parameters, the capabilities
settled for it (``llm.Capabilities``: the structured-output form the server accepts, logprobs
on or off, what Test connection measured) and a key encrypted at rest (``keys.encrypt`` under
``DISTILL_SECRET_KEY``).

Only owners and researchers (``Capability.EDIT``) list, save, test or delete them: coders and
viewers never see an endpoint. A stored key is never returned: a ``SavedEndpoint`` carries its
hint (``sk-…abcd``), and only ``endpoint_with_key`` (the worker, when a job runs; the
connection test) decrypts it. Every base URL passes ``llm.policy`` before it is saved, tested
or used. Test connection on a saved endpoint remembers its capabilities (in the row's params;
an older row has none), so a job's teacher starts from them instead of negotiating again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from distill_core import keys
from distill_core.llm import Endpoint
from distill_core.llm.base import Capabilities
from distill_core.llm.policy import EndpointRefused, UrlPolicy
from distill_core.store.models import ProjectEndpoint, User
from distill_core.study import activity
from distill_core.study.access import Capability, ProjectError, belongs, entry

if TYPE_CHECKING:
    from distill_core.codebook import Codebook
    from distill_core.llm.openai_teacher import ConnectionResult


@dataclass(frozen=True)
class SavedEndpoint:
    """A saved endpoint as the app shows it: everything but the key, of which only the hint."""

    id: int
    name: str
    base_url: str
    model: str
    temperature: float = 0.0
    max_tokens: int = 50
    seed: int | None = None
    key_hint: str | None = None  # None: no key stored
    capabilities: Capabilities | None = None  # None: never tested

    @property
    def has_key(self) -> bool:
        return self.key_hint is not None

    def endpoint(self) -> Endpoint:
        """The endpoint's settings, without its key."""
        return Endpoint(
            base_url=self.base_url,
            model=self.model,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=self.seed,
        )

    @property
    def title(self) -> str:
        key = f"key {self.key_hint}" if self.has_key else "no key stored"
        return f"{self.name}: {self.model} at {self.base_url} ({key})"


def _saved(row: ProjectEndpoint) -> SavedEndpoint:
    params: dict[str, Any] = row.params or {}
    return SavedEndpoint(
        id=row.id,
        name=row.name,
        base_url=row.base_url,
        model=row.model,
        temperature=float(params.get("temperature", 0.0)),
        max_tokens=int(params.get("max_tokens", 50)),
        seed=params.get("seed"),
        key_hint=row.key_hint if row.key_encrypted else None,
        capabilities=Capabilities.from_dict(params.get("capabilities")),
    )


def _remember(row: ProjectEndpoint, capabilities: Capabilities | None) -> None:
    params = {k: v for k, v in (row.params or {}).items() if k != "capabilities"}
    if capabilities is not None:
        params["capabilities"] = capabilities.to_dict()
    row.params = params  # a new dict: the JSON column sees the change


def _row(session: Session, project_id: int, endpoint_id: int) -> ProjectEndpoint:
    return belongs(session.get(ProjectEndpoint, endpoint_id), project_id, "endpoint")


@entry(Capability.EDIT)
def list_endpoints(session: Session, user: User, project_id: int) -> list[SavedEndpoint]:
    """The project's saved endpoints, by name."""
    rows = session.scalars(
        select(ProjectEndpoint)
        .where(ProjectEndpoint.project_id == project_id)
        .order_by(ProjectEndpoint.name)
    )
    return [_saved(r) for r in rows]


@entry(Capability.EDIT)
def get_endpoint(session: Session, user: User, project_id: int, endpoint_id: int) -> SavedEndpoint:
    """One saved endpoint of the project (without its key)."""
    return _saved(_row(session, project_id, endpoint_id))


@entry(Capability.EDIT)
def save_endpoint(
    session: Session,
    user: User,
    project_id: int,
    *,
    name: str,
    endpoint: Endpoint,
    api_key: str | None = None,
    forget_key: bool = False,
    capabilities: Capabilities | None = None,
) -> SavedEndpoint:
    """Save an endpoint under ``name`` (one of that name is replaced; its key is kept unless a
    new ``api_key`` is given or ``forget_key``). The base URL must pass the policy; a key is
    stored encrypted, which needs ``DISTILL_SECRET_KEY`` (else one sentence, nothing saved).
    ``capabilities`` (a Test connection's, for these settings) are remembered; without them,
    the replaced endpoint's are kept while its base URL and model stay the same."""
    name = " ".join((name or "").split())
    if not name:
        raise ProjectError("Give the endpoint a name to save it under.")
    if len(name) > 200:
        raise ProjectError("The endpoint's name is too long (200 characters at most).")
    if not endpoint.model.strip():
        raise ProjectError("Give the endpoint a model name.")
    UrlPolicy.from_env().check_url(endpoint.base_url)
    api_key = (api_key or "").strip() or None
    token = keys.encrypt(api_key) if api_key else None  # before any change: refused, nothing saved
    row = session.scalar(
        select(ProjectEndpoint).where(
            ProjectEndpoint.project_id == project_id, ProjectEndpoint.name == name
        )
    )
    if row is None:
        row = ProjectEndpoint(project_id=project_id, name=name, created_by=user.id)
        session.add(row)
    same_server = (row.base_url, row.model) == (endpoint.base_url.strip(), endpoint.model.strip())
    known = _saved(row).capabilities if row.params and same_server else None
    row.base_url = endpoint.base_url.strip()
    row.model = endpoint.model.strip()
    row.params = {
        "temperature": float(endpoint.temperature),
        "max_tokens": int(endpoint.max_tokens),
        "seed": endpoint.seed,
    }
    _remember(row, capabilities or known)
    if token is not None:
        row.key_encrypted, row.key_hint = token, keys.hint(api_key)
    elif forget_key:
        row.key_encrypted = row.key_hint = None
    session.flush()
    activity.record(
        session,
        user,
        project_id,
        "saved an endpoint",
        name=name,
        base_url=row.base_url,
        model=row.model,
        key="stored" if row.key_encrypted else "none",
    )
    return _saved(row)


@entry(Capability.EDIT)
def delete_endpoint(session: Session, user: User, project_id: int, endpoint_id: int) -> None:
    """Delete a saved endpoint and its key (jobs that used it keep their records)."""
    row = _row(session, project_id, endpoint_id)
    activity.record(session, user, project_id, "deleted an endpoint", name=row.name)
    session.delete(row)
    session.flush()


@entry(Capability.EDIT)
def endpoint_with_key(session: Session, user: User, project_id: int, endpoint_id: int) -> Endpoint:
    """The saved endpoint with its key decrypted (registered for ``keys.mask``); for the worker
    that runs a job and for the connection test, never for a page. A ``SecretError`` (one
    sentence) when the server secret is missing or another one."""
    row = _row(session, project_id, endpoint_id)
    endpoint = _saved(row).endpoint()
    if row.key_encrypted:
        endpoint = replace(endpoint, api_key=keys.decrypt(row.key_encrypted))
    return endpoint


@entry(Capability.EDIT)
def remember_capabilities(
    session: Session, user: User, project_id: int, endpoint_id: int, capabilities: Capabilities
) -> SavedEndpoint:
    """Keep what was settled for a saved endpoint (a teacher's ``capabilities`` after a run)."""
    row = _row(session, project_id, endpoint_id)
    _remember(row, capabilities)
    session.flush()
    return _saved(row)


@entry(Capability.EDIT)
def check_endpoint(
    session: Session,
    user: User,
    project_id: int,
    *,
    codebook: Codebook,
    text: str,
    endpoint_id: int | None = None,
    endpoint: Endpoint | None = None,
    api_key: str | None = None,
    logprobs: bool = True,
) -> ConnectionResult:
    """Test connection (``llm.test_connection``: a labelling request, the logprob timing, the
    model-name check) to a saved endpoint (``endpoint_id``, its stored key) or to unsaved
    settings (``endpoint`` with the ``api_key`` typed for the session, if any); ``logprobs``
    False when they are switched off. A saved endpoint that answered remembers the
    capabilities found. A refused URL or an unreadable key is a failed result with one
    sentence; the message and the raw answer are masked."""
    from distill_core.llm.openai_teacher import ConnectionResult, test_connection

    try:
        if endpoint_id is not None:
            chosen = endpoint_with_key(session, user, project_id, endpoint_id)
        elif endpoint is not None:
            chosen = replace(endpoint, api_key=(api_key or "").strip() or None)
        else:
            raise ProjectError("Choose an endpoint to test.")
        if api_key and endpoint_id is not None:
            chosen = replace(chosen, api_key=api_key.strip())
        UrlPolicy.from_env().check_url(chosen.base_url)
    except (keys.SecretError, EndpointRefused, ProjectError) as exc:
        return ConnectionResult(False, keys.mask(str(exc)))
    result = test_connection(chosen, codebook, text, logprobs=logprobs)
    if endpoint_id is not None and result.ok and result.capabilities is not None:
        _remember(_row(session, project_id, endpoint_id), result.capabilities)
        session.flush()
    return result
