"""Browser tests: `streamlit run app.py` on a free port with a fresh DISTILL_HOME, driven by
Playwright in Debian's Chromium. Waits use the app's own markers (connection state, script
state), never fixed sleeps. A failed test leaves a screenshot and the server log in
test-artifacts/."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    if os.environ.get("DISTILL_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(
            f"{CHROMIUM} is missing but DISTILL_REQUIRE_BROWSER=1: install it (apt-get install chromium)."
        )
    skip = pytest.mark.skip(
        reason=f"{CHROMIUM} not found (apt-get install chromium); browser tests skipped"
    )
    for item in items:
        if "e2e" in item.nodeid:
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, every: float = 0.1):
    """Poll ``predicate`` until it is truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class App:
    """A running Streamlit server of the app, with its own DISTILL_HOME."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home.parent / "server.log"
        home.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.headless",
                "true",
                "--server.port",
                str(self.port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self.healthy, 90, "the app's health endpoint")

    def healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"streamlit exited with {self.proc.returncode}; see {self.log}")
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as resp:
                return resp.read().strip() == b"ok"
        except OSError:
            return False

    def stop(self) -> None:
        from distill_core.config import Settings
        from distill_core.jobs import Supervisor

        Supervisor(Settings.from_env({"DISTILL_HOME": str(self.home)})).stop()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


@pytest.fixture(scope="session")
def llm_server():
    """The tests' OpenAI-compatible server, in-process on 127.0.0.1."""
    from tests.llm_server import LoopbackLLM, ServerConfig

    config = ServerConfig(
        latency=0.01,
        keywords={"hospital": "health", "school": "education", "tax": "economy", "police": "crime"},
    )
    with LoopbackLLM(config) as srv:
        yield srv


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e") / "home"
    env = dict(os.environ)
    env.update(
        DISTILL_HOME=str(home),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OPENAI_API_KEY="sk-e2e-test-key",
    )
    env.pop("DISTILL_DATABASE_URL", None)
    env.pop("DISTILL_REDIS_URL", None)
    server = App(home, env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, app, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = request.node.name.replace("/", "_")
        with contextlib.suppress(Exception):  # a crashed page cannot be photographed
            pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        (ARTIFACTS / f"{name}.server.log").write_bytes(app.log.read_bytes())
        worker_log = app.home / "worker.log"
        if worker_log.exists():
            (ARTIFACTS / f"{name}.worker.log").write_bytes(worker_log.read_bytes())
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
