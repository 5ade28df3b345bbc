"""Which base URLs the server calls, and which of them get the server's own key.

* **The server's key** (``OPENAI_API_KEY``, from the environment or secrets.toml) is sent only
  to base URLs an administrator allowed: ``DISTILL_SERVER_KEY_URLS``, comma-separated URL
  prefixes. Unset or empty: ``https://api.openai.com/v1`` (and ``OPENAI_BASE_URL`` when set)
  in local mode, none in hosted modes; ``none``: no URL. Any other URL gets the key typed or
  stored for it, else none (the placeholder "not-needed" that local servers accept).
* **Addresses**: a base URL must be http(s), without a user name or password and without a key
  in it. In hosted modes (``DISTILL_AUTH`` other than local: ``config.Settings.hosted``) one
  whose host is, or resolves to, a loopback, link-local, private or otherwise non-global
  address (every address the name resolves to is checked, IPv4 and IPv6) is refused unless it
  matches a prefix of ``DISTILL_ALLOWED_PRIVATE_URLS``; in local mode loopback and private
  addresses are fine (Ollama, llama.cpp on localhost).

A prefix matches a URL with the same scheme, host and port whose path is the prefix's path or
lies below it (``https://api.openai.com/v1`` matches ``https://api.openai.com/v1/`` but not
``https://api.openai.com.evil.example/v1`` nor ``https://api.openai.com/v10``). Refusals are
``EndpointRefused`` (a ``ValueError``) with one sentence.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from distill_core import keys
from distill_core.config import Settings

SERVER_KEY_URLS_ENV = "DISTILL_SERVER_KEY_URLS"
ALLOWED_PRIVATE_ENV = "DISTILL_ALLOWED_PRIVATE_URLS"
OPENAI_URL = "https://api.openai.com/v1"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

Resolver = Callable[[str, int], list[str]]


class EndpointRefused(ValueError):
    """A base URL this server does not call; ``str(e)`` is one sentence."""


def _prefixes(raw: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (raw or "").split(",") if p.strip())


def _resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None
    return parts


def _port(parts: SplitResult) -> int | None:
    return parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())


def matches(url: str, prefix: str) -> bool:
    """Whether ``url`` lies under the URL prefix ``prefix`` (same scheme, host and port; the
    path at or below the prefix's path, at a ``/`` boundary)."""
    u, p = _split(url), _split(prefix)
    if u is None or p is None or not u.hostname or not p.hostname:
        return False
    if u.username is not None or u.password is not None:
        return False
    if u.scheme.lower() != p.scheme.lower() or u.hostname.lower() != p.hostname.lower():
        return False
    if _port(u) != _port(p):
        return False
    base = p.path.rstrip("/")
    return not base or u.path == base or u.path.startswith(base + "/")


def _unwrap(address: ipaddress.IPv4Address | ipaddress.IPv6Address):
    """The IPv4 address inside an IPv4-mapped or NAT64 IPv6 address, else the address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_public(address: str) -> bool:
    """Whether an IP address is a global unicast address (not loopback, link-local, private,
    shared, reserved, unspecified or multicast)."""
    ip = _unwrap(ipaddress.ip_address(address.split("%", 1)[0]))
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class UrlPolicy:
    """Where the server sends requests and its own key (see the module docstring)."""

    hosted: bool = False
    server_key_urls: tuple[str, ...] = (OPENAI_URL,)
    allowed_private_urls: tuple[str, ...] = ()

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, settings: Settings | None = None
    ) -> UrlPolicy:
        """The policy from ``DISTILL_SERVER_KEY_URLS``, ``DISTILL_ALLOWED_PRIVATE_URLS`` and
        the mode of ``settings`` (default: ``Settings.from_env``, i.e. ``DISTILL_AUTH``)."""
        env = os.environ if env is None else env
        hosted = (settings or Settings.from_env(dict(env))).hosted
        raw = (env.get(SERVER_KEY_URLS_ENV) or "").strip()
        if raw.lower() == "none":
            server_urls: tuple[str, ...] = ()
        elif raw:
            server_urls = _prefixes(raw)
        elif hosted:
            server_urls = ()
        else:
            server_urls = (OPENAI_URL, *_prefixes(env.get("OPENAI_BASE_URL")))
        return cls(
            hosted=hosted,
            server_key_urls=server_urls,
            allowed_private_urls=_prefixes(env.get(ALLOWED_PRIVATE_ENV)),
        )

    def server_key_allowed(self, base_url: str) -> bool:
        """Whether the server's own key may be sent to ``base_url``."""
        return any(matches(base_url, prefix) for prefix in self.server_key_urls)

    def check_url(self, base_url: str, resolve: Resolver = _resolve) -> None:
        """Raise ``EndpointRefused`` (one sentence) unless this server may call ``base_url``;
        in hosted modes the host name is resolved (``resolve``) and every address checked."""
        parts = _split(base_url or "")
        if parts is None:
            raise EndpointRefused(f"The base URL '{keys.mask(base_url)}' is not a valid URL.")
        if parts.scheme.lower() not in _DEFAULT_PORTS:
            raise EndpointRefused("The base URL must start with http:// or https://.")
        if parts.username is not None or parts.password is not None:
            raise EndpointRefused(
                "The base URL must not hold a user name or password; put the key in the key field."
            )
        if not parts.hostname:
            raise EndpointRefused("The base URL has no host name.")
        if keys.mask(base_url) != base_url:
            raise EndpointRefused(
                "The base URL seems to hold a key; put the key in the key field instead."
            )
        if not self.hosted or any(matches(base_url, p) for p in self.allowed_private_urls):
            return
        host = parts.hostname
        try:
            addresses = [str(ipaddress.ip_address(host.split("%", 1)[0]))]
        except ValueError:
            try:
                addresses = resolve(host, _port(parts) or 443)
            except (OSError, UnicodeError):
                raise EndpointRefused(f"The host name '{host}' could not be resolved.") from None
        if not addresses:
            raise EndpointRefused(f"The host name '{host}' could not be resolved.")
        for address in addresses:
            try:
                public = is_public(address)
            except ValueError:
                public = False
            if not public:
                shown = host if address == host else f"{host} ({address})"
                raise EndpointRefused(
                    f"The base URL points to {shown}, a loopback, link-local or private address, "
                    "which this shared server does not call (an administrator can allow it in "
                    "DISTILL_ALLOWED_PRIVATE_URLS)."
                )


def server_key(env: Mapping[str, str] | None = None) -> str | None:
    """The server's own key, ``OPENAI_API_KEY`` (secrets.toml's is exported there too)."""
    env = os.environ if env is None else env
    return env.get("OPENAI_API_KEY") or None
