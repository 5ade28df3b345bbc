"""The teacher against every server family the stand-in reproduces (``tests.llm_server.PROFILES``),
through the real ``openai`` client: each ends labelling with valid answers in the form it
accepts, and Test connection says what was settled."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from distill_core.codebook import Codebook, Label
from distill_core.llm import Answer, Endpoint, run_items
from distill_core.llm import openai_teacher as ot
from distill_core.llm.base import Capabilities
from distill_core.llm.openai_teacher import OpenAITeacher, RetryPolicy
from tests.llm_server import PROFILES, LoopbackLLM, ServerConfig

KEY = "sk-profile-test-3c9d0e1f2a4b"
KEYWORDS = {"vaccine": "health", "hospital": "health", "tax": "economy", "army": "defense"}
TEXTS = [
    ("1", "A vaccine for everyone"),
    ("2", "Raise the tax on fuel"),
    ("3", "Send the army home"),
    ("4", "The hospital closes"),
    ("5", "Tax cuts for families"),
    ("6", "A new army base"),
]
CODEBOOK = Codebook(
    name="Policy topics",
    instructions="Assign the one topic that best fits the text.",
    labels=(
        Label("health", "Health care, disease, hospitals, vaccines."),
        Label("economy", "Taxes, jobs, trade, prices."),
        Label("defense", "The army, weapons, wars."),
    ),
)


@dataclass(frozen=True)
class Expected:
    form: str  # the structured-output form that ends up in use
    logprobs: bool  # whether answers carry logprobs (so a confidence)
    ignores_model_name: bool  # what Test connection reports


EXPECTED = {
    "generic": Expected("json_schema", True, False),
    "openai": Expected("json_schema", True, False),
    "azure": Expected("json_schema", True, True),  # the deployment in the URL decides
    "vllm": Expected("json_schema", True, False),
    "vllm-0.5": Expected("guided_json", True, False),
    "ollama": Expected("json_schema", False, False),
    "lmstudio": Expected("json_schema", False, True),
    "llamacpp": Expected("json_object_schema", True, True),
}
MODEL = "served-model"


def test_every_profile_has_an_expectation():
    assert set(EXPECTED) == set(PROFILES)


@pytest.fixture(params=sorted(PROFILES))
def profile(request) -> str:
    return request.param


@pytest.fixture
def server(profile):
    config = ServerConfig(profile=profile, keywords=dict(KEYWORDS), api_key=KEY, models=[MODEL])
    if profile == "azure":
        config.models = ["gpt-4o"]  # the deployment
    with LoopbackLLM(config) as srv:
        yield srv


def endpoint_for(srv: LoopbackLLM, profile: str, **kwargs) -> Endpoint:
    url = srv.azure_url("gpt-4o") if profile == "azure" else srv.base_url
    return Endpoint(base_url=url, model=MODEL, api_key=KEY, timeout_s=5, **kwargs)


def label_all(teacher: OpenAITeacher, texts=TEXTS) -> dict[str, Answer]:
    answers: dict[str, Answer] = {}

    async def main():
        try:
            return await run_items(
                teacher,
                CODEBOOK,
                texts,
                concurrency=3,
                on_answer=lambda key, r, a: answers.__setitem__(key, a),
            )
        finally:
            await teacher.aclose()

    asyncio.run(main())
    return answers


def test_each_profile_ends_labelling_with_valid_answers_in_the_form_it_accepts(server, profile):
    expected = EXPECTED[profile]
    teacher = OpenAITeacher(endpoint_for(server, profile), retry=RetryPolicy(max_attempts=2))
    answers = label_all(teacher)
    assert {k: a.label for k, a in answers.items()} == {
        "1": "health",
        "2": "economy",
        "3": "defense",
        "4": "health",
        "5": "economy",
        "6": "defense",
    }
    assert all(a.status == "ok" and a.structured and not a.reasked for a in answers.values())
    assert teacher.capabilities.structured == expected.form
    assert ot.structured_fields(expected.form, CODEBOOK).items() <= answers["6"].request.items()
    confidences = {a.confidence for a in answers.values()}
    if expected.logprobs:  # the stand-in's probability among the labels
        assert all(c == pytest.approx(0.8) for c in confidences), confidences
        assert teacher.capabilities.logprobs is True
    else:
        assert confidences == {None}
        assert teacher.capabilities.logprobs is False
        assert teacher.capabilities.logprobs_off == "not returned"
    rejected = len(server.bodies) - len(TEXTS)
    # Negotiation happens once, one request at a time: one rejected request per form tried.
    tried = ot.STRUCTURED_FORMS.index(expected.form)
    assert rejected == tried, [b.get("response_format") for b in server.bodies]


def test_test_connection_says_what_each_profile_settled(server, profile):
    expected = EXPECTED[profile]
    result = ot.test_connection(endpoint_for(server, profile), CODEBOOK, "A vaccine for all")
    assert result.ok and result.label == "health", result.message
    caps = result.capabilities
    assert caps.structured == expected.form
    assert caps.logprobs is expected.logprobs
    assert caps.ignores_model_name is expected.ignores_model_name
    assert caps.seconds_per_answer and caps.seconds_per_answer > 0
    if expected.form != "json_schema":  # the rejection is shown with the server's reason
        assert result.notes[0].startswith("The server rejected structured output as json_schema")
    if profile == "llamacpp":
        assert (
            "(500: " in result.notes[0]
            and "Input should be 'text' or 'json_object'" in (result.notes[0])
        )
    if expected.ignores_model_name:
        assert any("ignores the model name" in n for n in result.notes)


def test_a_teacher_given_the_capabilities_does_not_negotiate_again(server, profile):
    found = ot.test_connection(endpoint_for(server, profile), CODEBOOK, "tax").capabilities
    stored = Capabilities.from_dict(found.to_dict())
    assert stored == found
    server.reset()
    teacher = OpenAITeacher(endpoint_for(server, profile), capabilities=stored)
    answers = label_all(teacher)
    assert all(a.status == "ok" for a in answers.values())
    assert server.stats()["requests"] == len(TEXTS)  # not one rejected request
    assert teacher.capabilities.structured == found.structured


def test_a_server_failure_keeps_its_own_reason_in_each_error_shape(server, profile):
    server.config.fail_500_marker = "[boom]"
    teacher = OpenAITeacher(
        endpoint_for(server, profile),
        retry=RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.002),
    )
    answers = label_all(teacher, [("x", "[boom] a text")])
    tried = ot.STRUCTURED_FORMS.index(EXPECTED[profile].form)  # rejected while negotiating
    assert answers["x"].error == (
        "The server failed with an internal error (500): The server had an error while "
        f"processing your request; gave up after {2 + tried} attempts."
    )


def test_a_model_name_the_server_does_not_have(server, profile):
    endpoint = endpoint_for(server, profile)
    teacher = OpenAITeacher(
        Endpoint(base_url=endpoint.base_url, model="no-such-model", api_key=KEY),
        retry=RetryPolicy(max_attempts=1),
    )
    answer = label_all(teacher, [("x", "tax")])["x"]
    if EXPECTED[profile].ignores_model_name:
        assert answer.status == "ok"
    else:
        assert answer.error == "The model 'no-such-model' was not found on the server (404)."


def test_azure_gets_its_key_in_the_api_key_header_and_the_version_as_a_query():
    with LoopbackLLM(ServerConfig(profile="azure", api_key=KEY)) as srv:
        answers = label_all(OpenAITeacher(endpoint_for(srv, "azure")), TEXTS[:2])
        assert all(a.status == "ok" for a in answers.values())
        assert set(srv.state.api_key_headers) == {KEY}
        assert not any(KEY in h for h in srv.auth_headers)  # no Bearer copy of the key
        assert all(
            p.startswith("/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21")
            for p in srv.state.paths
        )
        wrong = OpenAITeacher(
            Endpoint(base_url=srv.azure_url(), api_key="sk-wrong-key-000000"),
            retry=RetryPolicy(max_attempts=1),
        )
        assert label_all(wrong, TEXTS[:1])["1"].error == "The server rejected the API key (401)."


def test_azure_before_json_schema_support_labels_with_a_plain_prompt():
    """api-version 2024-06-01 knows no json_schema: every structured form is refused (with
    Azure's reasons) and the plain prompt's answers are parsed strictly."""
    with LoopbackLLM(ServerConfig(profile="azure", keywords=dict(KEYWORDS))) as srv:
        url = srv.azure_url(api_version="2024-06-01")
        result = ot.test_connection(Endpoint(base_url=url), CODEBOOK, "Send the army home")
        assert result.ok and result.label == "defense"
        assert result.capabilities.structured == "none"
        assert "enabled only for api versions 2024-08-01-preview and later" in result.notes[0]
        answers = label_all(OpenAITeacher(Endpoint(base_url=url)), TEXTS)
        assert {a.label for a in answers.values()} == {"health", "economy", "defense"}
        assert not any(a.structured for a in answers.values())


def test_slow_logprobs_on_llamacpp_are_turned_off_by_test_connection():
    config = ServerConfig(profile="llamacpp", latency=0.01, logprobs_latency=0.3)
    with LoopbackLLM(config) as srv:
        result = ot.test_connection(Endpoint(base_url=srv.base_url, model="m"), CODEBOOK, "tax")
    caps = result.capabilities
    assert caps.structured == "json_object_schema" and caps.logprobs is False
    assert caps.logprobs_off == "slow" and caps.logprobs_slowdown > ot.LOGPROBS_SLOWDOWN_LIMIT
    assert result.features.startswith(
        "structured output: json_object schema; logprobs: off (slow on this server: "
    )
