"""Masking (registered secrets, the environment's, anything that looks like a key) and keys
encrypted at rest (Fernet under DISTILL_SECRET_KEY)."""

from __future__ import annotations

import uuid

import pytest

from distill_core import keys


def fresh(prefix: str = "loc") -> str:
    """A key no earlier test registered (and that no generic pattern recognises)."""
    return f"{prefix}{uuid.uuid4().hex}"


def test_a_registered_secret_is_masked_wherever_it_appears() -> None:
    key = fresh()
    message = f"The key {key} is not valid (you sent {key})."
    assert keys.mask(message) == message  # not yet known, and no pattern matches it
    keys.register(key)
    assert keys.mask(message) == "The key **** is not valid (you sent ****)."


def test_the_environments_secrets_are_masked_without_registration(monkeypatch) -> None:
    server_key, secret = fresh("srv"), fresh("sec")
    monkeypatch.setenv("OPENAI_API_KEY", server_key)
    monkeypatch.setenv("DISTILL_SECRET_KEY", secret)
    assert keys.mask(f"a {server_key} b {secret} c") == "a **** b **** c"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-123_456", "Authorization: Bearer ****"),
        ("header bearer Zm9vYmFyYmF6cXV4", "header bearer ****"),
        ("Basic dXNlcjpwYXNzd29yZA==", "Basic ****"),
        ("key sk-proj-ABCDEFGHIJKLMNOPqrst was refused", "key **** was refused"),
        ("https://x.example/v1?api_key=abc123&x=1", "https://x.example/v1?api_key=****&x=1"),
        ('{"api-key": "abc123"}', '{"api-key": "****"}'),
        ("x-api-key: abc123", "x-api-key: ****"),
        ('{"Authorization": "raw-token-value"}', '{"Authorization": "****"}'),
    ],
)
def test_generic_patterns_are_masked(text: str, expected: str) -> None:
    assert keys.mask(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Connected in 0.2 s: gpt-4o-mini answered 'economy'.",
        "task-abcdefghijklmnopqrstuvwxyz is a task id",
        "sk-short",
        "The server rejected the API key (401).",
    ],
)
def test_ordinary_messages_are_left_alone(text: str) -> None:
    assert keys.mask(text) == text


def test_mask_keeps_none_and_non_strings_and_walks_results() -> None:
    key = fresh()
    keys.register(key)
    assert keys.mask(None) is None and keys.mask(3) == 3
    assert keys.mask_all({"a": [key, 1, None], "b": (f"x {key}",)}) == {
        "a": ["****", 1, None],
        "b": ("x ****",),
    }


def test_short_values_and_the_placeholder_are_never_registered() -> None:
    keys.register("abc")
    keys.register(keys.NO_KEY)
    assert keys.mask("abc not-needed") == "abc not-needed"


def test_a_hint_shows_only_the_ends_of_a_long_key() -> None:
    assert keys.hint("sk-proj-1234567890abcd") == "sk-…abcd"
    assert keys.hint("short-key") == "…****"


def test_encryption_round_trips_and_the_token_holds_no_plaintext() -> None:
    key, secret = fresh(), "any string will do"
    token = keys.encrypt(key, secret)
    assert key not in token and key[8:24] not in token
    assert keys.decrypt(token, secret) == key
    assert keys.encrypt(key, secret) != token  # a fresh IV each time


def test_the_secret_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("DISTILL_SECRET_KEY", "from the environment")
    key = fresh()
    assert keys.decrypt(keys.encrypt(key)) == key


def test_a_wrong_secret_refuses_with_one_sentence() -> None:
    token = keys.encrypt(fresh(), "the first secret")
    with pytest.raises(keys.SecretError) as refused:
        keys.decrypt(token, "another secret")
    message = str(refused.value)
    assert "another secret" in message and message.count(". ") == 0 and message.endswith(".")
    with pytest.raises(keys.SecretError):
        keys.decrypt("not a token at all", "the first secret")


def test_without_a_secret_nothing_is_encrypted(monkeypatch) -> None:
    monkeypatch.delenv("DISTILL_SECRET_KEY", raising=False)
    with pytest.raises(keys.SecretError, match="DISTILL_SECRET_KEY"):
        keys.encrypt(fresh())
    with pytest.raises(keys.SecretError, match="DISTILL_SECRET_KEY"):
        keys.decrypt("whatever")


def test_a_decrypted_key_is_masked_from_then_on() -> None:
    key = fresh()
    token = keys.encrypt(key, "s3cret-for-this-test")
    keys._known.discard(key)  # as in a worker that never saw it typed
    assert keys.mask(key) == key
    keys.decrypt(token, "s3cret-for-this-test")
    assert keys.mask(key) == "****"
