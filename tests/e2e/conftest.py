"""Browser tests: `streamlit run app.py` on a free port with a fresh DISTILL_HOME, driven by
Playwright in Debian's Chromium. Waits use the app's own markers (connection state, script
state, the server's "script finished" messages), never fixed sleeps: `idle(page)` waits for a
script run that finished since the last call. A failed test leaves a screenshot and the
server log in test-artifacts/."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

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
#: Timeout of every `expect(...)` assertion (Playwright's default, 5 s, is too short for a rerun
#: that starts a job or loads a model on a small CI machine).
expect.set_options(timeout=30_000)

#: Counts finished script runs as the server reports them: every ForwardMsg on the app's
#: websocket whose `script_finished` field (number 6, a varint) is set, except
#: FINISHED_EARLY_FOR_RERUN (2; a `st.rerun()` goes on). The count goes up two animation frames
#: after the message, once the app has rendered it. (`data-test-script-state` alone is not
#: enough: a quick rerun's "running" can be batched away, and right after an action it still
#: reads "notRunning" from the run before.) Installed before the app's code runs.
RUN_COUNTER_JS = """
(() => {
  window.__distillRuns = 0;
  window.__distillSeen = 0;
  const varint = (b, i) => {
    let v = 0, mul = 1;
    for (;;) { const x = b[i++]; v += (x & 0x7f) * mul; mul *= 128; if (x < 0x80) return [v, i]; }
  };
  const finishedStatus = (b) => {
    let i = 0;
    while (i < b.length) {
      let key; [key, i] = varint(b, i);
      const field = Math.floor(key / 8), wire = key % 8;
      if (wire === 0) { let v; [v, i] = varint(b, i); if (field === 6) return v; }
      else if (wire === 2) { let n; [n, i] = varint(b, i); i += n; }
      else if (wire === 1) { i += 8; }
      else if (wire === 5) { i += 4; }
      else { return null; }
    }
    return null;
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        if (!(event.data instanceof ArrayBuffer)) return;
        const status = finishedStatus(new Uint8Array(event.data));
        if (status === null || status === 2) return;
        requestAnimationFrame(() => requestAnimationFrame(() => { window.__distillRuns += 1; }));
      });
    }
  };
})();
"""

_IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && window.__distillRuns > window.__distillSeen
    && app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED'
    && !document.querySelector('[data-testid="stSkeleton"]');
}"""


def idle(page: Page, timeout: float = 60) -> None:
    """Wait until a script run has finished since the last `idle` (or the page load), the app
    shows it as not running, is connected and no element is still a loading skeleton
    (`stSkeleton`, e.g. a lazily loaded data editor): call it after each action that reruns."""
    try:
        page.wait_for_function(_IDLE_JS, timeout=timeout * 1000, polling=50)
    except PlaywrightError as exc:
        state = page.evaluate(
            """() => { const a = document.querySelector('[data-testid="stApp"]');
              return {script: a && a.getAttribute('data-test-script-state'),
                      connection: a && a.getAttribute('data-test-connection-state'),
                      runs: window.__distillRuns, seen: window.__distillSeen}; }"""
        )
        raise AssertionError(
            f"the app did not finish a new script run within {timeout:.0f} s ({state}); "
            "did the last action rerun the app?"
        ) from exc
    page.evaluate("() => { window.__distillSeen = window.__distillRuns; }")


def choose_tab(page: Page, name: str) -> None:
    """Click the tab ``name`` of a page whose tabs are computed only when chosen (Validate's and
    Codebook's, ``st.tabs(on_change="rerun")``) and wait for the run it starts (``idle``)."""
    tab = page.get_by_role("tab", name=name, exact=True)
    tab.click()
    idle(page)
    expect(tab).to_have_attribute("aria-selected", "true")


def pytest_collection_modifyitems(config, items):
    """No Chromium: skip the browser tests, or fail loudly where DISTILL_REQUIRE_BROWSER=1 (CI)."""
    browser_tests = [item for item in items if item.get_closest_marker("e2e")]
    if CHROMIUM.exists() or not browser_tests:
        return
    if os.environ.get("DISTILL_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(
            f"{CHROMIUM} is missing but DISTILL_REQUIRE_BROWSER=1: install it (apt-get install chromium)."
        )
    skip = pytest.mark.skip(
        reason=f"{CHROMIUM} not found (apt-get install chromium); browser tests skipped"
    )
    for item in browser_tests:
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
        #: The app's database, as `Settings.from_env()` finds it for this DISTILL_HOME.
        from distill_core.config import Settings

        self.database_url = Settings.from_env({"DISTILL_HOME": str(home)}).database_url
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
        from distill_core.jobs.queue import Supervisor

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


def app_env(home: Path, **extra: str) -> dict[str, str]:
    """The app's environment: a fresh DISTILL_HOME, offline, with the tests' key and none of
    the outside database, queue or endpoint settings of the machine running the tests."""
    env = dict(os.environ)
    env.update(
        DISTILL_HOME=str(home),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OPENAI_API_KEY="sk-e2e-test-key",
        **extra,
    )
    for name in ("DISTILL_DATABASE_URL", "DISTILL_REDIS_URL", "OPENAI_BASE_URL", "OPENAI_MODEL"):
        env.pop(name, None)
    return env


@contextlib.contextmanager
def fresh_app(home: Path):
    """The app on a fresh DISTILL_HOME (``app_env``)."""
    server = App(home, app_env(home))
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def coding_app(home: Path, name: str, texts: list[str], labels: dict[str, str], *, seed: int):
    """The app on a fresh DISTILL_HOME whose local user owns one project (the demo deleted):
    ``texts`` (ids t0, t1, …), a codebook of ``labels`` (name: definition) and a sample of
    every text, half of it held out; ``server.project_id`` is the project."""
    from distill_core.codebook import Codebook, Label
    from distill_core.corpus import prepare_corpus, read_table
    from distill_core.store import Store
    from distill_core.study import projects, validation
    from tests.fakes import local_user

    with fresh_app(home) as server:
        store = Store(server.database_url)
        store.migrate()
        csv = "id,text\n" + "".join(f"t{i},{t}\n" for i, t in enumerate(texts))
        table = read_table(csv.encode(), "texts.csv")
        with store.session() as s:
            user = local_user(s)
            for p in projects.list_projects(s, user):
                projects.delete_project(s, user, p.id)
            pid = projects.create_project(s, user, name).id
            projects.save_corpus(s, user, pid, table, prepare_corpus(table, "text", "id"))
            codebook = Codebook(
                name=name,
                instructions="Pick the topic.",
                labels=[Label(n, d) for n, d in labels.items()],
            )
            projects.save_codebook(s, user, pid, codebook.validate())
            validation.draw_sample(s, user, pid, n=len(texts), seed=seed, test_share=0.5)
            user.last_project_id = pid
        store.dispose()
        server.project_id = pid
        yield server


@contextlib.contextmanager
def app_page(browser, server: App, name: str):
    """A fresh browser page for ``server`` (1400×1000, the run counter installed); a failure
    inside leaves ``name``.png and the server log in test-artifacts/."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(RUN_COUNTER_JS)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        with contextlib.suppress(Exception):  # a crashed page cannot be photographed
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        (ARTIFACTS / f"{name}.server.log").write_bytes(server.log.read_bytes())
        raise
    finally:
        context.close()


def shown_doc_id(page: Page, total: int) -> str:
    """The id of the text the coding panel shows ("Text 3 of 25 · id h07")."""
    caption = page.get_by_text(re.compile(rf"Text \d+ of {total} · id ")).inner_text()
    return caption.rsplit("id ", 1)[1].strip()


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    with fresh_app(tmp_path_factory.mktemp("e2e") / "home") as server:
        yield server


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
    context.add_init_script(RUN_COUNTER_JS)
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
