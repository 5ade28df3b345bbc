"""API keys: masking every message that could carry one, and keys encrypted at rest.

``mask(text)`` replaces every secret this process knows (a process-wide registry: keys typed
for a session, stored keys once decrypted, and ``OPENAI_API_KEY`` and ``DISTILL_SECRET_KEY``
from the environment, read at each call) and whatever looks like a key (``Bearer <token>``,
``sk-…`` keys of 16+ characters, ``api_key=…``, ``Authorization: …``) with ``****``. Job
messages, stored answers, the connection test and the command line go through it before a
message is stored or shown.

``encrypt``/``decrypt`` keep an endpoint's key in the database as a Fernet token (AES-128-CBC
with HMAC-SHA256, from ``cryptography``) under a key derived with HKDF-SHA256 (fixed salt) from
the server secret ``DISTILL_SECRET_KEY``, any string. Streamlit 1.67 exports the root-level
string and number values of ``.streamlit/secrets.toml`` as environment variables when
``streamlit run`` starts (``streamlit.web.bootstrap`` parses the file at start-up and
``streamlit.runtime.secrets.Secrets`` sets ``os.environ[k] = str(v)``, replacing a variable of
the same name; checked in the installed 1.67.0), so ``DISTILL_SECRET_KEY`` and
``OPENAI_API_KEY`` may live there: the app reads them from ``os.environ`` and the local worker
it starts inherits them. A ``huey_consumer`` on another machine reads no secrets.toml: set the
variable in its environment, to the same value as the app's.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Mapping
from typing import Any

#: What a masked secret becomes.
MASK = "****"
#: Environment variables whose values are secrets (masked wherever they appear).
SECRET_ENV = ("OPENAI_API_KEY", "DISTILL_SECRET_KEY")
#: The server secret that encrypts stored keys (and signs queue messages: ``jobs.queue``).
SECRET_KEY_ENV = "DISTILL_SECRET_KEY"
#: What is sent to a server when there is no key (local servers accept any).
NO_KEY = "not-needed"
#: Shorter values are not registered: masking every "abc" in a message would garble it.
MIN_SECRET_LENGTH = 6

_SALT = b"distill/endpoint-keys/v1"
_INFO = b"fernet key for stored API keys"

NO_SECRET = (
    "Saving an API key needs the server secret DISTILL_SECRET_KEY, which is not set; ask the "
    "administrator to set it (environment or .streamlit/secrets.toml), or leave the key empty."
)
WRONG_SECRET = (
    "The stored API key cannot be decrypted with this server's DISTILL_SECRET_KEY (it was "
    "saved under another secret); save the endpoint's key again."
)

_PATTERNS = (
    # Authorization: <token> without a scheme (the schemes are handled below).
    (
        re.compile(
            r"""(?i)(authorization["']?\s*[:=]\s*["']?)(?!bearer\s|basic\s|\*)[^\s"',;}]+"""
        ),
        r"\1" + MASK,
    ),
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{4,}"), r"\1\2" + MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), MASK),
    (
        re.compile(r"""(?i)(api[_-]?key["']?\s*[=:]\s*["']?)(?!\*)[^\s&"',;}]+"""),
        r"\1" + MASK,
    ),
)

_known: set[str] = set()
_lock = threading.Lock()


class SecretError(ValueError):
    """A stored key cannot be written or read (no server secret, or another one); one
    sentence."""


def register(secret: str | None) -> None:
    """Remember a secret value so that ``mask`` replaces it everywhere in this process."""
    if not secret:
        return
    value = str(secret).strip()
    if len(value) < MIN_SECRET_LENGTH or value == NO_KEY:
        return
    with _lock:
        _known.add(value)


def known_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """The registered secrets and those of the environment, longest first."""
    env = os.environ if env is None else env
    found = {v.strip() for name in SECRET_ENV if (v := env.get(name))}
    found = {v for v in found if len(v) >= MIN_SECRET_LENGTH and v != NO_KEY}
    with _lock:
        found |= _known
    return sorted(found, key=len, reverse=True)


def mask(text: Any) -> Any:
    """``text`` with every known secret and anything that looks like a key replaced by
    ``****``; ``None`` stays ``None`` and a non-string is returned as it is."""
    if not isinstance(text, str) or not text:
        return text
    for secret in known_secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def mask_all(value: Any) -> Any:
    """``mask`` applied to every string inside dicts, lists and tuples (a job's result)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: mask_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_all(v) for v in value)
    return value


def hint(key: str) -> str:
    """How a stored key is shown: its first three and last four characters (``sk-…abcd``);
    a key shorter than 12 characters shows nothing of itself."""
    key = key.strip()
    return f"{key[:3]}…{key[-4:]}" if len(key) >= 12 else "…" + MASK


def server_secret(env: Mapping[str, str] | None = None) -> str | None:
    """``DISTILL_SECRET_KEY`` (None when unset or empty)."""
    env = os.environ if env is None else env
    return env.get(SECRET_KEY_ENV) or None


def _fernet(secret: str):
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(
        secret.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(raw))


def encrypt(plaintext: str, secret: str | None = None) -> str:
    """A Fernet token (ASCII) for ``plaintext`` under ``secret`` (default
    ``DISTILL_SECRET_KEY``); without a secret a ``SecretError`` (``NO_SECRET``)."""
    secret = secret or server_secret()
    if not secret:
        raise SecretError(NO_SECRET)
    register(secret)
    register(plaintext)
    return _fernet(secret).encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(token: str, secret: str | None = None) -> str:
    """The plaintext of a token from ``encrypt`` (registered for masking); a ``SecretError``
    without a secret or under another one."""
    from cryptography.fernet import InvalidToken

    secret = secret or server_secret()
    if not secret:
        raise SecretError(
            "The stored API key cannot be read: the server secret DISTILL_SECRET_KEY is not "
            "set here (a worker needs the same value as the app)."
        )
    try:
        plaintext = _fernet(secret).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError, UnicodeError):
        raise SecretError(WRONG_SECRET) from None
    register(secret)
    register(plaintext)
    return plaintext
