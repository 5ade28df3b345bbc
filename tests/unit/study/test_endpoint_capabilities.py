"""What was settled for a saved endpoint is remembered: Test connection stores its
capabilities in the endpoint's params, a teacher made from them does not negotiate again, and
changing the server or the model forgets them."""

from __future__ import annotations

import asyncio

import pytest

from distill_core.codebook import Codebook
from distill_core.llm import Endpoint
from distill_core.llm.base import Capabilities
from distill_core.llm.openai_teacher import OpenAITeacher
from distill_core.store import Store
from distill_core.store.models import ProjectEndpoint
from distill_core.study import demo, endpoints, projects
from distill_core.study.access import AccessDenied
from tests.fakes import local_user
from tests.llm_server import LoopbackLLM, ServerConfig


@pytest.fixture(autouse=True)
def env(no_key_settings):
    no_key_settings.setenv("DISTILL_SECRET_KEY", "capabilities test secret")


@pytest.fixture
def project(store: Store) -> int:
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = demo.ensure_demo_project(s, user).id
        projects.ensure_user(s, "viewer-user")
        projects.set_member(s, user, pid, "viewer-user", "viewer")
    return pid


@pytest.fixture
def llamacpp():
    with LoopbackLLM(ServerConfig(profile="llamacpp", keywords={"tax": "economy"})) as srv:
        yield srv


def save(store, pid, base_url, model="m", **kw):
    with store.session() as s:
        return endpoints.save_endpoint(
            s, local_user(s), pid, name="Lab llama.cpp", endpoint=Endpoint(base_url, model), **kw
        )


def check(store, pid, endpoint_id):
    with store.session() as s:
        cb = Codebook.from_dict(projects.latest_codebook(s, local_user(s), pid).content)
        return endpoints.check_endpoint(
            s, local_user(s), pid, codebook=cb, text="Taxes rise", endpoint_id=endpoint_id
        )


def saved(store, pid, endpoint_id):
    with store.session() as s:
        return endpoints.get_endpoint(s, local_user(s), pid, endpoint_id)


def test_test_connection_remembers_what_the_server_accepts(store, project, llamacpp) -> None:
    endpoint = save(store, project, llamacpp.base_url)
    assert endpoint.capabilities is None  # never tested
    result = check(store, project, endpoint.id)
    assert result.ok, result.message
    caps = saved(store, project, endpoint.id).capabilities
    assert caps == result.capabilities and caps.structured == "json_object_schema"
    assert caps.ignores_model_name is True and caps.checked_at is not None
    with store.session() as s:  # stored as JSON beside the parameters, with a version
        row = s.get(ProjectEndpoint, endpoint.id)
        assert row.params["capabilities"]["version"] == Capabilities.VERSION
        assert row.params["temperature"] == 0.0

    llamacpp.reset()
    teacher = OpenAITeacher(saved(store, project, endpoint.id).endpoint(), capabilities=caps)
    assert teacher.negotiated
    with store.session() as s:
        cb = Codebook.from_dict(projects.latest_codebook(s, local_user(s), project).content)
    answer = asyncio.run(teacher.ask(cb, "Tax"))
    assert answer.status == "ok" and llamacpp.stats()["statuses"] == {"200": 1}


def test_saving_again_keeps_them_unless_the_server_or_model_changes(
    store, project, llamacpp
) -> None:
    endpoint = save(store, project, llamacpp.base_url)
    check(store, project, endpoint.id)
    again = save(store, project, llamacpp.base_url)  # same server and model: kept
    assert again.capabilities is not None and again.id == endpoint.id
    other = save(store, project, llamacpp.base_url, model="another-model")
    assert other.capabilities is None
    given = Capabilities(structured="json_schema", logprobs=True)
    assert save(store, project, llamacpp.base_url, capabilities=given).capabilities == given


def test_a_run_can_remember_what_its_teacher_settled(store, project) -> None:
    endpoint = save(store, project, "http://127.0.0.1:9/v1")
    caps = Capabilities(structured="guided_json", logprobs=False, logprobs_off="rejected")
    with store.session() as s:
        updated = endpoints.remember_capabilities(s, local_user(s), project, endpoint.id, caps)
    assert updated.capabilities == caps == saved(store, project, endpoint.id).capabilities
    with store.session() as s, pytest.raises(AccessDenied):
        viewer = projects.ensure_user(s, "viewer-user")
        endpoints.remember_capabilities(s, viewer, project, endpoint.id, caps)


def test_a_failed_test_leaves_what_was_remembered(store, project, llamacpp) -> None:
    endpoint = save(store, project, llamacpp.base_url)
    check(store, project, endpoint.id)
    before = saved(store, project, endpoint.id).capabilities
    llamacpp.config.fail_500_marker = "Taxes"
    assert not check(store, project, endpoint.id).ok
    assert saved(store, project, endpoint.id).capabilities == before
