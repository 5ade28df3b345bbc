"""A real OpenID provider for the sign-in tests: the certified `oidc-provider` npm package,
run by Node.js from tests/oidc/provider.mjs on 127.0.0.1 and a free port, with one
confidential client, static test accounts and its built-in login form (any password).

`bash scripts/test.sh` installs it (`npm ci` into tests/oidc/node_modules). Without node, npm
or that install the tests that use the fixture are skipped with the reason, except under
DISTILL_REQUIRE_BROWSER=1 (CI), where they fail.

Use: ``from tests.oidc_provider import oidc_provider  # noqa: F401`` in a test module, then a
test (or fixture) takes ``oidc_provider``: an :class:`OidcProvider` that answers until the end
of the module.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

OIDC_DIR = Path(__file__).resolve().parent / "oidc"

#: The provider's accounts: login name at its form → claims (sub is the login name).
ACCOUNTS = {
    "alice": {"email": "alice@lab-a.test", "name": "Alice Example"},
    "bob": {"email": "bob@lab-b.test", "name": "Bob Example"},
}


@dataclass
class OidcProvider:
    """A running provider: its issuer, discovery URL and the one client registered there."""

    issuer: str
    client_id: str
    client_secret: str
    accounts: dict[str, dict[str, str]]
    log: Path
    proc: subprocess.Popen = field(repr=False)

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def secrets_toml(self, cookie_secret: str, redirect_uri: str | None = None) -> str:
        """An ``[auth]`` section for the app's secrets.toml (``{port}``: the app's port).

        The provider supports the prompts login and consent, not Streamlit's default
        ``select_account``, hence ``client_kwargs``."""
        redirect_uri = redirect_uri or "http://127.0.0.1:{port}/oauth2callback"
        return (
            "[auth]\n"
            f'redirect_uri = "{redirect_uri}"\n'
            f'cookie_secret = "{cookie_secret}"\n'
            f'client_id = "{self.client_id}"\n'
            f'client_secret = "{self.client_secret}"\n'
            f'server_metadata_url = "{self.metadata_url}"\n'
            'client_kwargs = { prompt = "login" }\n'
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def unavailable() -> str | None:
    """Why the provider cannot run here (None when it can)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are needed for the OpenID provider tests (apt-get install nodejs npm)"
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        return "tests/oidc/node_modules is missing: run `npm ci --prefix tests/oidc` (scripts/test.sh does)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_provider(
    log_dir: Path, accounts: dict | None = None, timeout: float = 30
) -> OidcProvider:
    """Start the provider and wait until its discovery document answers."""
    accounts = dict(ACCOUNTS if accounts is None else accounts)
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    client_id, client_secret = "distill-tests", "distill-tests-client-secret"
    log = log_dir / "oidc-provider.log"
    env = dict(
        os.environ,
        OIDC_PORT=str(port),
        OIDC_CLIENT_ID=client_id,
        OIDC_CLIENT_SECRET=client_secret,
        OIDC_ACCOUNTS=json.dumps(accounts),
        NODE_ENV="test",
    )
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            ["node", "provider.mjs"], cwd=OIDC_DIR, env=env, stdout=fh, stderr=subprocess.STDOUT
        )
    provider = OidcProvider(issuer, client_id, client_secret, accounts, log, proc)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(
                f"the OpenID provider exited with {proc.returncode}: {log.read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(provider.metadata_url, timeout=2) as resp:
                if json.load(resp).get("issuer") == issuer:
                    return provider
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            provider.stop()
            raise AssertionError(f"the OpenID provider did not answer within {timeout:.0f} s")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def oidc_provider(tmp_path_factory):
    """A running OpenID provider (skipped without node/npm, failing under
    DISTILL_REQUIRE_BROWSER=1); stopped when the module's tests are done."""
    reason = unavailable()
    if reason:
        if os.environ.get("DISTILL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"DISTILL_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    provider = start_provider(tmp_path_factory.mktemp("oidc"))
    try:
        yield provider
    finally:
        provider.stop()
