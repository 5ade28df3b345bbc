"""Signing in to a hosted instance, in Chromium against the real app: OpenID Connect through
st.login and a real OpenID provider (`oidc-provider`, tests/oidc_provider.py), and built-in
accounts made with the command line (cookie across a reload, lockout after 5 failures)."""

from __future__ import annotations

import contextlib
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ARTIFACTS, REPO, RUN_COUNTER_JS, App, app_env, idle
from tests.oidc_provider import oidc_provider  # noqa: F401 - the fixture

pytestmark = pytest.mark.e2e

ADMITTING = "An administrator must admit you"


@contextlib.contextmanager
def hosted_app(home: Path, **extra: str):
    server = App(home, app_env(home, **extra))
    try:
        yield server
    finally:
        server.stop()


def admin_cli(home: Path, *args: str, password: str | None = None) -> None:
    """`python -m distill_core admin …` on the app's store, as the server's operator would."""
    env = app_env(home)
    cmd = [sys.executable, "-m", "distill_core", "admin", *args]
    if password is not None:
        cmd.append("--password-stdin")
    out = subprocess.run(
        cmd,
        cwd=REPO,
        env=env,
        input=f"{password}\n" if password else "",
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr


@pytest.fixture
def new_page(browser, request):
    """Fresh browser contexts (no cookies), each counting script runs for `idle`; a failed
    test leaves screenshots and the logs in test-artifacts/."""
    made: list = []
    logs: list[Path] = []

    def make(*log_files: Path) -> Page:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(RUN_COUNTER_JS)
        # the provider's pages import a web font; nothing outside this machine is reached
        context.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())
        page = context.new_page()
        page.set_default_timeout(30_000)
        made.append((context, page))
        logs.extend(log_files)
        return page

    yield make
    report = getattr(request.node, "rep_call", None)
    failed = report is not None and report.failed
    name = request.node.name.replace("/", "_")
    for i, (context, page) in enumerate(made):
        if failed:
            ARTIFACTS.mkdir(exist_ok=True)
            with contextlib.suppress(Exception):
                page.screenshot(path=str(ARTIFACTS / f"{name}-{i}.png"), full_page=True)
        context.close()
    if failed:
        for log in logs:
            if log.exists():
                (ARTIFACTS / f"{name}.{log.name}").write_bytes(log.read_bytes())


# ---------------------------------------------------------------- OpenID Connect


@pytest.fixture(scope="module")
def oidc_app(oidc_provider, tmp_path_factory):  # noqa: F811 - the imported fixture
    root = tmp_path_factory.mktemp("oidc-app")
    secrets_file = root / "secrets.toml"
    secrets_file.write_text(oidc_provider.secrets_toml(cookie_secret=secrets.token_hex(32)))
    with hosted_app(
        root / "home",
        DISTILL_AUTH="oidc",
        DISTILL_ADMINS="alice@lab-a.test",
        # Streamlit's `secrets.files` option (the flag --secrets.files) from the environment:
        # the repository's own .streamlit/ stays untouched.
        STREAMLIT_SECRETS_FILES=str(secrets_file),
    ) as server:
        yield server


def _sign_in_at_provider(page: Page, provider, login: str) -> None:
    """From the app's sign-in page through the provider's login and consent forms, back."""
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{provider.issuer}/interaction/**")
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password: dev interactions take any")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # consent
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))


def _sign_out_at_provider(page: Page, provider, app: App) -> None:
    """Click "Sign out": Streamlit clears its cookie and has the provider end its session too
    (RP-initiated logout), whose confirmation sends the browser back to the app."""
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{provider.issuer}/session/end**")
    page.get_by_role("button", name="Yes, sign me out").click()
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))
    assert page.url.startswith(app.url)
    idle(page)


def test_oidc_sign_in_reload_and_sign_out(oidc_app, oidc_provider, new_page) -> None:  # noqa: F811
    page = new_page(oidc_app.log, oidc_provider.log)
    page.goto(oidc_app.url)
    idle(page)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    _sign_in_at_provider(page, oidc_provider, "alice")
    assert page.url.startswith(oidc_app.url)
    idle(page)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.get_by_text("Alice Example").first).to_be_visible()

    page.reload()
    idle(page)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.get_by_text("Alice Example").first).to_be_visible()
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)

    _sign_out_at_provider(page, oidc_provider, oidc_app)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Alice Example")).to_have_count(0)


def test_oidc_a_new_user_waits_until_an_admin_admits_them(
    oidc_app,
    oidc_provider,  # noqa: F811
    new_page,
) -> None:
    page = new_page(oidc_app.log, oidc_provider.log)
    page.goto(oidc_app.url)
    idle(page)
    _sign_in_at_provider(page, oidc_provider, "bob")
    idle(page)
    expect(page.get_by_text(ADMITTING)).to_be_visible()
    expect(page.get_by_role("heading", name="Projects")).to_have_count(0)

    _sign_out_at_provider(page, oidc_provider, oidc_app)  # the waiting page's own button
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    _sign_in_at_provider(page, oidc_provider, "bob")
    idle(page)
    expect(page.get_by_text(ADMITTING)).to_be_visible()  # the same user, still waiting

    admin_cli(oidc_app.home, "admit", "bob@lab-b.test")
    page.reload()
    idle(page)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.get_by_text(ADMITTING)).to_have_count(0)


def _create_project(page: Page, name: str) -> None:
    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_role("button", name="Create project").click()
    idle(page)
    expect(page.get_by_text(f"Current project: {name}")).to_be_visible()


def test_oidc_two_labs_never_reach_each_others_projects(
    oidc_app,
    oidc_provider,  # noqa: F811
    new_page,
) -> None:
    from distill_core.store import Project, Store
    from distill_core.study import access, accounts, runs

    alice = new_page(oidc_app.log, oidc_provider.log)
    alice.goto(oidc_app.url)
    idle(alice)
    _sign_in_at_provider(alice, oidc_provider, "alice")
    idle(alice)
    _create_project(alice, "Lab A study")
    bob = new_page(oidc_app.log, oidc_provider.log)
    bob.goto(oidc_app.url)
    idle(bob)
    _sign_in_at_provider(bob, oidc_provider, "bob")
    idle(bob)
    admin_cli(oidc_app.home, "admit", "bob@lab-b.test")
    bob.reload()
    idle(bob)
    _create_project(bob, "Lab B study")
    for page, mine, theirs in (
        (alice, "Lab A study", "Lab B study"),
        (bob, "Lab B study", "Lab A study"),
    ):
        page.reload()
        idle(page)
        body = page.inner_text("body")
        assert mine in body and theirs not in body
    store = Store(oidc_app.database_url)
    with store.session() as s:
        lab_a = s.query(Project).filter(Project.name == "Lab A study").one().id
        bob_user = accounts.find_user(s, "bob@lab-b.test")
        with pytest.raises(access.AccessDenied):
            runs.project_runs(s, bob_user, lab_a)
    store.dispose()


# ---------------------------------------------------------------- built-in accounts


@pytest.fixture(scope="module")
def accounts_app(tmp_path_factory):
    home = tmp_path_factory.mktemp("accounts-app") / "home"
    admin_cli(
        home,
        "create-user",
        "root",
        "--admin",
        "--display-name",
        "Rita Root",
        password="root password 1",
    )
    admin_cli(home, "create-user", "ada", password="ada password 1")
    with hosted_app(
        home, DISTILL_AUTH="accounts", DISTILL_SECRET_KEY=secrets.token_hex(32)
    ) as server:
        yield server


def _sign_in(page: Page, name: str, password: str) -> None:
    page.get_by_role("textbox", name="User name").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    idle(page)


def test_accounts_admin_signs_in_survives_a_reload_and_signs_out(accounts_app, new_page) -> None:
    page = new_page(accounts_app.log)
    page.goto(accounts_app.url)
    idle(page)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    _sign_in(page, "root", "root password 1")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.get_by_text("Rita Root").first).to_be_visible()

    page.reload()
    idle(page)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.get_by_text("Rita Root").first).to_be_visible()
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)

    page.get_by_role("button", name="Sign out").click()
    idle(page)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.reload()  # the cookie is gone: still signed out
    idle(page)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Rita Root")).to_have_count(0)


def test_accounts_five_wrong_passwords_lock_the_account(accounts_app, new_page) -> None:
    page = new_page(accounts_app.log)
    page.goto(f"{accounts_app.url}/validate")  # a link to a page: the sign-in form, nothing else
    idle(page)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Page not found")).to_have_count(0)
    expect(page.get_by_test_id("stSidebar")).to_be_hidden()  # no list of the pages there
    for attempt in range(1, 5):
        _sign_in(page, "ada", f"wrong password {attempt}")
        expect(page.get_by_text("The user name or the password is wrong.")).to_be_visible()
    _sign_in(page, "ada", "wrong password 5")
    locked = page.get_by_text(re.compile(r"locked for 15 minutes after 5 failed sign-ins"))
    expect(locked).to_be_visible()
    _sign_in(page, "ada", "ada password 1")  # the right one, too late
    expect(locked).to_be_visible()
    expect(page.get_by_role("heading", name="Projects")).to_have_count(0)
