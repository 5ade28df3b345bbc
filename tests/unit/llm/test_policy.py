"""The URL policy: which base URLs a shared server calls (no loopback, link-local or private
address, IPv4 or IPv6, literal or behind a DNS name, unless an administrator allowed it) and
which get the server's own key; and that the teacher and the connection test keep to it."""

from __future__ import annotations

import uuid

import pytest

from distill_core.codebook import Codebook, Label
from distill_core.llm import Endpoint
from distill_core.llm.openai_teacher import OpenAITeacher, RetryPolicy, test_connection
from distill_core.llm.policy import OPENAI_URL, EndpointRefused, UrlPolicy, is_public, matches
from tests.llm_server import LoopbackLLM, ServerConfig

HOSTED = UrlPolicy(hosted=True, server_key_urls=())
LOCAL = UrlPolicy(hosted=False)
CODEBOOK = Codebook(
    name="t", instructions="Pick one.", labels=(Label("economy", "Taxes."), Label("other", "Else."))
)


@pytest.fixture(autouse=True)
def clean_env(no_key_settings):
    """None of the settings that decide where a key may go (tests/conftest.py)."""


def resolver(*addresses: str):
    """A resolver that answers ``addresses`` for every name (no DNS needed)."""

    def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://127.1/v1",  # short form of 127.0.0.1
        "http://2130706433/v1",  # 127.0.0.1 as one number
        "http://0.0.0.0/v1",
        "http://10.1.2.3/v1",
        "http://172.16.0.9/v1",
        "http://192.168.1.20:11434/v1",
        "http://100.64.0.1/v1",  # shared address space (carrier-grade NAT)
        "http://169.254.169.254/latest/meta-data",  # cloud metadata, link-local
        "http://[::1]:8000/v1",
        "http://[fe80::1]/v1",
        "http://[fd00::1]/v1",
        "http://[::ffff:127.0.0.1]/v1",  # IPv4-mapped loopback
        "http://[::ffff:10.0.0.1]/v1",
        "http://[64:ff9b::a00:1]/v1",  # NAT64 of 10.0.0.1
        "http://localhost:8000/v1",  # a DNS name resolving to loopback
    ],
)
def test_hosted_mode_refuses_loopback_link_local_and_private_addresses(url: str) -> None:
    with pytest.raises(EndpointRefused, match="loopback, link-local or private") as refused:
        HOSTED.check_url(url)
    assert str(refused.value).count(". ") == 0  # one sentence


def test_a_dns_name_is_refused_when_any_of_its_addresses_is_private() -> None:
    with pytest.raises(EndpointRefused, match=r"llm\.example \(127\.0\.0\.1\)"):
        HOSTED.check_url("https://llm.example/v1", resolve=resolver("127.0.0.1"))
    with pytest.raises(EndpointRefused, match="::1"):
        HOSTED.check_url("https://llm.example/v1", resolve=resolver("93.184.216.34", "::1"))
    HOSTED.check_url("https://llm.example/v1", resolve=resolver("93.184.216.34", "2606:4700::1"))


def test_a_name_that_does_not_resolve_is_refused_in_hosted_mode() -> None:
    def fails(host, port):
        raise OSError("no such name")

    with pytest.raises(EndpointRefused, match="could not be resolved"):
        HOSTED.check_url("https://nowhere.invalid/v1", resolve=fails)


def test_public_addresses_pass_in_hosted_mode() -> None:
    HOSTED.check_url("https://93.184.216.34/v1")
    HOSTED.check_url("https://[2606:4700::1111]/v1")
    HOSTED.check_url("https://api.openai.com/v1", resolve=resolver("162.159.140.245"))


def test_allowed_prefixes_let_private_urls_through_in_hosted_mode() -> None:
    policy = UrlPolicy(
        hosted=True, allowed_private_urls=("http://10.0.0.5:8000/v1", "http://vllm.lab")
    )
    policy.check_url("http://10.0.0.5:8000/v1")
    policy.check_url("http://10.0.0.5:8000/v1/")
    policy.check_url("http://vllm.lab/v1", resolve=resolver("10.9.9.9"))
    for other in ("http://10.0.0.5:8001/v1", "http://10.0.0.6:8000/v1", "http://10.0.0.5:8000/v10"):
        with pytest.raises(EndpointRefused):
            policy.check_url(other, resolve=resolver("10.0.0.5"))
    with pytest.raises(EndpointRefused):
        policy.check_url("http://vllm.lab.evil.example/v1", resolve=resolver("10.0.0.1"))


def test_local_mode_allows_loopback_and_private_servers() -> None:
    for url in ("http://localhost:11434/v1", "http://127.0.0.1:8080/v1", "http://10.0.0.2/v1"):
        LOCAL.check_url(url, resolve=resolver("127.0.0.1"))


@pytest.mark.parametrize("policy", [LOCAL, HOSTED])
@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://example.com/v1", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://127.0.0.1:6379/_INFO", "http:// or https://"),
        ("https://user:pw@api.example.com/v1", "user name or password"),
        ("https://token@api.example.com/v1", "user name or password"),
        ("https:///v1", "no host name"),
        ("http://example.com:99999/v1", "not a valid URL"),
        ("https://api.example.com/v1?api_key=abcdef123", "seems to hold a key"),
    ],
)
def test_bad_urls_are_refused_in_every_mode(policy: UrlPolicy, url: str, fragment: str) -> None:
    with pytest.raises(EndpointRefused, match=fragment.replace("/", "/")) as refused:
        policy.check_url(url, resolve=resolver("93.184.216.34"))
    assert "abcdef123" not in str(refused.value) and "pw@" not in str(refused.value)


def test_is_public() -> None:
    assert is_public("8.8.8.8") and is_public("2001:4860:4860::8888")
    for address in ("127.0.0.1", "::1", "169.254.1.1", "fe80::1%eth0", "224.0.0.1", "ff02::1"):
        assert not is_public(address)


def test_prefixes_match_on_scheme_host_port_and_path_boundaries() -> None:
    assert matches("https://api.openai.com/v1", OPENAI_URL)
    assert matches("https://API.OpenAI.com:443/v1/", OPENAI_URL)
    assert matches("https://api.openai.com/v1/chat", OPENAI_URL)
    assert not matches("https://api.openai.com.evil.example/v1", OPENAI_URL)
    assert not matches("https://api.openai.com/v10", OPENAI_URL)
    assert not matches("http://api.openai.com/v1", OPENAI_URL)
    assert not matches("https://api.openai.com:8443/v1", OPENAI_URL)
    assert not matches("https://evil@api.openai.com/v1", OPENAI_URL)
    assert not matches("https://api.openai.com/", OPENAI_URL)
    assert matches("https://anything.example/v1", "https://anything.example")


def test_server_key_urls_default_to_openai_locally_and_to_none_when_hosted() -> None:
    local = UrlPolicy.from_env({})
    assert not local.hosted and local.server_key_urls == (OPENAI_URL,)
    assert local.server_key_allowed("https://api.openai.com/v1")
    assert not local.server_key_allowed("http://127.0.0.1:9/v1")
    hosted = UrlPolicy.from_env({"DISTILL_AUTH": "oidc"})
    assert hosted.hosted and hosted.server_key_urls == ()
    assert not hosted.server_key_allowed("https://api.openai.com/v1")
    assert UrlPolicy.from_env({"OPENAI_BASE_URL": "http://gpu:8000/v1"}).server_key_urls == (
        OPENAI_URL,
        "http://gpu:8000/v1",
    )
    chosen = UrlPolicy.from_env(
        {
            "DISTILL_AUTH": "accounts",
            "DISTILL_SERVER_KEY_URLS": " https://a.example/v1, https://b/ ",
        }
    )
    assert chosen.server_key_urls == ("https://a.example/v1", "https://b/")
    assert UrlPolicy.from_env({"DISTILL_SERVER_KEY_URLS": "none"}).server_key_urls == ()
    private = UrlPolicy.from_env({"DISTILL_ALLOWED_PRIVATE_URLS": "http://10.0.0.5:8000/v1"})
    assert private.allowed_private_urls == ("http://10.0.0.5:8000/v1",)


def test_the_server_key_goes_only_to_allowed_urls(monkeypatch) -> None:
    server_key = f"srv-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", server_key)
    assert Endpoint(base_url=OPENAI_URL).resolved_key() == server_key
    assert Endpoint(base_url="http://127.0.0.1:9/v1").resolved_key() == "not-needed"
    assert Endpoint(base_url="https://evil.example/v1").resolved_key() == "not-needed"
    assert Endpoint(base_url="https://evil.example/v1", api_key="typed-1234").resolved_key() == (
        "typed-1234"
    )
    assert Endpoint(base_url=OPENAI_URL).resolved_key(HOSTED) == "not-needed"
    monkeypatch.setenv("DISTILL_SERVER_KEY_URLS", "https://evil.example/v1")
    assert Endpoint(base_url="https://evil.example/v1/").resolved_key() == server_key
    assert Endpoint(base_url=OPENAI_URL).resolved_key() == "not-needed"
    assert Endpoint.from_env().api_key is None  # the environment's key is never copied in


def test_a_stand_in_server_on_another_port_never_gets_the_server_key(monkeypatch) -> None:
    """The reproduction: a base URL typed into the page, the server's key in the environment."""
    server_key = f"sk-server-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", server_key)
    with LoopbackLLM(ServerConfig()) as srv:
        for _ in range(10):
            result = test_connection(Endpoint(base_url=srv.base_url, model="m"), CODEBOOK, "Tax")
            assert result.ok, result.message
        assert set(srv.auth_headers) == {"Bearer not-needed"} and len(srv.auth_headers) >= 10


def test_hosted_mode_never_calls_a_loopback_server(monkeypatch) -> None:
    monkeypatch.setenv("DISTILL_AUTH", "accounts")
    with LoopbackLLM(ServerConfig()) as srv:
        endpoint = Endpoint(base_url=srv.base_url, model="m")
        result = test_connection(endpoint, CODEBOOK, "Taxes rise")
        assert not result.ok and "loopback, link-local or private" in result.message
        teacher = OpenAITeacher(endpoint, retry=RetryPolicy(max_attempts=1))
        import asyncio

        answer = asyncio.run(teacher.ask(CODEBOOK, "Taxes rise"))
        assert answer.status == "error" and "private address" in answer.error
        assert srv.stats()["requests"] == 0
        monkeypatch.setenv("DISTILL_ALLOWED_PRIVATE_URLS", srv.base_url)
        assert test_connection(endpoint, CODEBOOK, "Taxes rise").ok
        assert srv.stats()["requests"] >= 1


def test_a_redirect_is_not_followed(monkeypatch) -> None:
    """A public server could redirect to an internal address: the teacher stops at a 3xx."""
    import http.server
    import threading

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(307)
            self.send_header("Location", "http://169.254.169.254/latest")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        result = test_connection(Endpoint(base_url=url, model="m"), CODEBOOK, "Taxes rise")
    finally:
        server.shutdown()
        server.server_close()
    assert not result.ok and "redirect (307)" in result.message
