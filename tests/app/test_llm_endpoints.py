"""The LLM labels page in AppTest: save an endpoint with its key (shown back only as its hint),
test it with the stored key, start a job that refers to it by id; without the server secret
saving a key is refused with one sentence."""

from __future__ import annotations

import uuid

import pytest

import ui.jobs
from distill_core.config import Settings
from distill_core.store import Job, Store
from tests.app.conftest import open_page, texts
from tests.llm_server import LoopbackLLM, ServerConfig


@pytest.fixture
def key(monkeypatch) -> str:
    for name in ("DISTILL_AUTH", "DISTILL_SERVER_KEY_URLS", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return f"sk-app-{uuid.uuid4().hex}"


def fill_new_endpoint(at, base_url: str, key: str, name: str = "Loopback") -> None:
    at.text_input(key="llm_base_url").input(base_url)
    at.text_input(key="llm_model").input("loopback-model")
    at.text_input(key="llm_api_key").input(key)
    at.text_input(key="llm_endpoint_name").input(name)
    next(b for b in at.button if b.label == "Save endpoint").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_a_saved_endpoint_shows_its_hint_tests_and_starts_a_job_by_id(
    home, key, monkeypatch
) -> None:
    monkeypatch.setenv("DISTILL_SECRET_KEY", "app test secret")
    submitted = []
    monkeypatch.setattr(
        ui.jobs, "submit_job", lambda ctx, job_id, api_key=None: submitted.append((job_id, api_key))
    )
    with LoopbackLLM(ServerConfig(api_key=key)) as srv:
        at = open_page("steps/llm_labels.py")
        assert at.selectbox(key="llm_endpoint").format_func(None) == "New endpoint…"
        fill_new_endpoint(at, srv.base_url, key)
        chosen = at.selectbox(key="llm_endpoint")
        assert chosen.value is not None and "Loopback" in chosen.format_func(chosen.value)
        shown = texts(at) + chosen.format_func(chosen.value)
        assert f"sk-…{key[-4:]}" in shown and key not in shown
        assert not [t for t in at.text_input if t.key == "llm_api_key"]  # no key field now
        next(b for b in at.button if b.label == "Test connection").click()
        at.run()
        assert at.success and "Connected" in at.success[0].value, texts(at)
        assert set(srv.auth_headers) == {f"Bearer {key}"}
        at.radio(key="llm_scope").set_value("A random subset")
        at.run()
        at.number_input(key="llm_n").set_value(5)
        at.run()
        next(b for b in at.button if b.label == "Start labelling").click()
        at.run()
        assert not at.exception and not at.error, texts(at)
    assert len(submitted) == 1 and submitted[0][1] is None  # no key leaves the page
    store = Store(Settings.from_env().database_url)
    with store.session() as s:
        job = s.get(Job, submitted[0][0])
        assert job.params["endpoint_id"] == chosen.value and key not in str(job.params)
    store.dispose()


def test_without_the_server_secret_saving_a_key_is_one_sentence(home, key, monkeypatch) -> None:
    monkeypatch.delenv("DISTILL_SECRET_KEY", raising=False)
    at = open_page("steps/llm_labels.py")
    fill_new_endpoint(at, "http://127.0.0.1:9/v1", key)
    assert len(at.error) == 1 and "DISTILL_SECRET_KEY" in at.error[0].value
    assert at.selectbox(key="llm_endpoint").value is None  # nothing was saved
    assert key not in texts(at)
