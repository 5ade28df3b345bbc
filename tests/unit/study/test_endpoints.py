"""Endpoints saved in a project: owners and researchers only, the key encrypted at rest and
shown as its hint, the URL policy on saving, testing and starting, and jobs that refer to an
endpoint by id with the worker decrypting its key."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import inspect, text

from distill_core import keys
from distill_core.codebook import Codebook
from distill_core.jobs import kinds
from distill_core.jobs.label import LabelRequest, start_label_job
from distill_core.llm import Endpoint
from distill_core.llm.policy import EndpointRefused
from distill_core.store import Job, Store
from distill_core.study import demo, endpoints, projects
from distill_core.study.access import AccessDenied, ProjectError
from tests.fakes import local_user
from tests.llm_server import LoopbackLLM, ServerConfig

SECRET = "the lab's server secret, any string"


@pytest.fixture(autouse=True)
def env(no_key_settings):
    no_key_settings.setenv("DISTILL_SECRET_KEY", SECRET)


@pytest.fixture
def key() -> str:
    return f"sk-proj-{uuid.uuid4().hex}"


@pytest.fixture
def project(store: Store) -> int:
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = demo.ensure_demo_project(s, user).id
        for role in ("researcher", "coder", "viewer"):
            projects.ensure_user(s, f"{role}-user")
            projects.set_member(s, user, pid, f"{role}-user", role)
    return pid


@pytest.fixture
def server(key):
    with LoopbackLLM(ServerConfig(api_key=key, keywords={"tax": "economy"})) as srv:
        yield srv


def save(store, pid, key=None, *, name="Lab vLLM", base_url="http://127.0.0.1:9/v1", as_="local"):
    with store.session() as s:
        user = projects.ensure_user(s, as_)
        return endpoints.save_endpoint(
            s,
            user,
            pid,
            name=name,
            endpoint=Endpoint(base_url=base_url, model="m", temperature=0.5, seed=7),
            api_key=key,
        )


def dump(store: Store) -> str:
    """Every row of every table of the database, as text."""
    out = []
    with store.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                out.append(f"{table}: {tuple(row)!r}")
    return "\n".join(out)


def test_a_saved_key_is_encrypted_at_rest_and_shown_only_as_its_hint(store, project, key) -> None:
    saved = save(store, project, key)
    assert saved.key_hint == f"sk-…{key[-4:]}" and saved.has_key
    assert key not in saved.title and saved.key_hint in saved.title
    with store.session() as s:
        listed = endpoints.list_endpoints(s, local_user(s), project)
    assert [(e.name, e.model, e.temperature, e.seed) for e in listed] == [("Lab vLLM", "m", 0.5, 7)]
    assert "api_key" not in repr(listed) and key not in repr(listed)
    rows = dump(store)
    assert key not in rows and key[8:24] not in rows  # no plaintext, not even a part
    with store.session() as s:
        token = s.scalar(text("SELECT key_encrypted FROM project_endpoints"))
    assert keys.decrypt(token, SECRET) == key
    with pytest.raises(keys.SecretError):
        keys.decrypt(token, "a wrong secret")


def test_without_the_server_secret_a_key_is_refused_and_nothing_saved(
    store, project, key, monkeypatch
) -> None:
    monkeypatch.delenv("DISTILL_SECRET_KEY")
    with pytest.raises(keys.SecretError) as refused:
        save(store, project, key)
    assert "DISTILL_SECRET_KEY" in str(refused.value) and str(refused.value).count(". ") == 0
    with store.session() as s:
        assert endpoints.list_endpoints(s, local_user(s), project) == []
    assert not save(store, project, None).has_key  # an endpoint without a key needs no secret


def test_saving_under_the_same_name_replaces_it_and_keeps_its_key(store, project, key) -> None:
    first = save(store, project, key)
    again = save(store, project, None, base_url="http://127.0.0.1:10/v1", as_="researcher-user")
    assert again.id == first.id and again.base_url == "http://127.0.0.1:10/v1"
    assert again.key_hint == first.key_hint
    with store.session() as s:
        user = local_user(s)
        forgotten = endpoints.save_endpoint(
            s, user, project, name="Lab vLLM", endpoint=again.endpoint(), forget_key=True
        )
        assert not forgotten.has_key
        endpoints.delete_endpoint(s, user, project, first.id)
        assert endpoints.list_endpoints(s, user, project) == []
    with pytest.raises(ProjectError, match="name"):
        save(store, project, name="  ")


def test_coders_and_viewers_never_see_an_endpoint(store, project, key) -> None:
    saved = save(store, project, key)
    with store.session() as s:
        for name in ("coder-user", "viewer-user", "stranger"):
            user = projects.ensure_user(s, name)
            with pytest.raises(AccessDenied):
                endpoints.list_endpoints(s, user, project)
            with pytest.raises(AccessDenied):
                endpoints.endpoint_with_key(s, user, project, saved.id)
        other = projects.create_project(s, local_user(s), "Another study").id
        with pytest.raises(ProjectError, match="not part of this project"):
            endpoints.endpoint_with_key(s, local_user(s), other, saved.id)


def test_hosted_mode_refuses_to_save_a_private_address(store, project, monkeypatch) -> None:
    monkeypatch.setenv("DISTILL_AUTH", "accounts")
    with pytest.raises(EndpointRefused, match="private address"):
        save(store, project, base_url="http://10.0.0.5:8000/v1")
    with pytest.raises(EndpointRefused, match="user name or password"):
        save(store, project, base_url="https://u:p@api.example.com/v1")


def connection(store, pid, **kw):
    with store.session() as s:
        cb = Codebook.from_dict(projects.latest_codebook(s, local_user(s), pid).content)
        return endpoints.check_endpoint(
            s, local_user(s), pid, codebook=cb, text="Taxes rise again", **kw
        )


def test_the_connection_test_uses_the_stored_key(store, project, key, server, monkeypatch) -> None:
    saved = save(store, project, key, base_url=server.base_url)
    result = connection(store, project, endpoint_id=saved.id)
    assert result.ok and result.label == "economy", result.message
    assert set(server.auth_headers) == {f"Bearer {key}"}
    unsaved = connection(store, project, endpoint=saved.endpoint())
    assert not unsaved.ok and "rejected the API key" in unsaved.message  # no key, no fallback
    typed = connection(store, project, endpoint=saved.endpoint(), api_key=key)
    assert typed.ok
    monkeypatch.setenv("DISTILL_SECRET_KEY", "a different secret")
    wrong = connection(store, project, endpoint_id=saved.id)
    assert not wrong.ok and "another secret" in wrong.message and key not in wrong.message


def label_job(store, pid, request: LabelRequest, n: int = 10) -> tuple[int, int]:
    with store.session() as s:
        user = local_user(s)
        corpus = projects.get_corpus(s, user, pid)
        version = projects.latest_codebook(s, user, pid)
        docs = projects.load_documents(s, user, pid, with_extra=False)
        return start_label_job(
            s,
            user,
            pid,
            corpus_id=corpus.id,
            codebook_version_id=version.id,
            codebook=Codebook.from_dict(version.content),
            doc_ids=list(docs["doc_id"][:n]),
            request=request,
        )


def job_of(store, job_id) -> Job:
    with store.session() as s:
        return s.get(Job, job_id)


def test_a_job_refers_to_the_endpoint_and_the_worker_decrypts_its_key(
    store, project, key, server
) -> None:
    saved = save(store, project, key, base_url=server.base_url)
    job_id, _ = label_job(store, project, LabelRequest("openai", None, endpoint_id=saved.id))
    job = job_of(store, job_id)
    assert job.params["endpoint_id"] == saved.id
    assert job.params["endpoint"]["base_url"] == server.base_url and key not in str(job.params)
    kinds.execute(store, job_id)  # what the worker does: no key handed over
    job = job_of(store, job_id)
    assert job.status == "done" and "10 labelled" in job.message, job.message
    assert set(server.auth_headers) == {f"Bearer {key}"}


def test_a_job_whose_endpoint_was_deleted_or_changed_fails_with_a_sentence(
    store, project, key, server
) -> None:
    saved = save(store, project, key, base_url=server.base_url)
    deleted, _ = label_job(store, project, LabelRequest("openai", None, endpoint_id=saved.id))
    moved, _ = label_job(store, project, LabelRequest("openai", None, endpoint_id=saved.id))
    save(store, project, None, base_url="http://127.0.0.1:9/v1")  # same name: a new URL
    kinds.execute(store, moved)
    assert job_of(store, moved).status == "failed"
    assert "base URL was changed" in job_of(store, moved).message
    with store.session() as s:
        endpoints.delete_endpoint(s, local_user(s), project, saved.id)
    kinds.execute(store, deleted)
    assert job_of(store, deleted).status == "failed"
    assert "was deleted" in job_of(store, deleted).message
    assert server.stats()["requests"] == 0


def test_hosted_mode_refuses_to_start_a_job_on_a_loopback_url(store, project, monkeypatch) -> None:
    saved = save(store, project, None)
    monkeypatch.setenv("DISTILL_AUTH", "oidc")
    for request in (
        LabelRequest("openai", None, endpoint_id=saved.id),
        LabelRequest("openai", Endpoint(base_url="http://localhost:11434/v1", model="m")),
    ):
        with pytest.raises(EndpointRefused, match="loopback, link-local or private"):
            label_job(store, project, request)
    with store.session() as s:
        assert s.query(Job).count() == 0
