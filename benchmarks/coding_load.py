"""Many coders at once: N signed-in coders (built-in accounts) each code K texts of the same
validation sample in their own Chromium page, all at the same time. Prints p50/p95/max of the
time from a label click until the page shows the new count, and checks that the store holds
every code (none lost, none doubled).

    .venv/bin/python benchmarks/coding_load.py --coders 20 --codes 10

Needs Debian's chromium at /usr/bin/chromium (scripts/test.sh installs it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func  # noqa: E402

from distill_core.store import HumanCode, Store  # noqa: E402
from distill_core.study import accounts, demo, projects  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, App  # noqa: E402

PASSWORD = "coding-load-pass"


def prepare(database_url: str, coders: int) -> int:
    """A demo project owned by a PI with ``coders`` coder accounts; returns its id."""
    store = Store(database_url)
    store.migrate()
    with store.session() as s:
        pi = accounts.create_user(s, None, "pi", PASSWORD)
        pid = demo.ensure_demo_project(s, pi).id
        for i in range(coders):
            accounts.create_user(s, None, f"coder{i:02d}", PASSWORD)
            projects.set_member(s, pi, pid, f"coder{i:02d}", "coder")
    store.dispose()
    return pid


async def code_as(browser, url: str, username: str, k: int, times: list[float], errors: list[str]):
    """Sign in as ``username`` and code ``k`` texts, timing each click until the count moves."""
    context = await browser.new_context(viewport={"width": 1300, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(180_000)
    try:
        await page.goto(url)
        await page.get_by_role("textbox", name="User name").fill(username)
        await page.get_by_role("textbox", name="Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_text("Signed in as").first.wait_for()
        await page.goto(f"{url}/validate")
        await page.get_by_text(re.compile(r"^0 of \d+ coded$")).first.wait_for()
        for i in range(k):
            started = time.perf_counter()
            await page.get_by_role("button", name="economy").first.click()
            await page.get_by_text(re.compile(rf"^{i + 1} of \d+ coded$")).first.wait_for()
            times.append(time.perf_counter() - started)
    except Exception as exc:  # one coder's failure is reported, the others go on
        errors.append(f"{username}: {type(exc).__name__}: {exc}"[:300])
    finally:
        await context.close()


async def load(url: str, coders: int, k: int, times: list[float], errors: list[str]) -> float:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        started = time.perf_counter()
        await asyncio.gather(
            *(code_as(browser, url, f"coder{i:02d}", k, times, errors) for i in range(coders))
        )
        wall = time.perf_counter() - started
        await browser.close()
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--coders", type=int, default=20)
    parser.add_argument("--codes", type=int, default=10, help="texts each coder codes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="distill-load-") as tmp:
        home = Path(tmp) / "home"
        env = dict(os.environ, DISTILL_HOME=str(home), DISTILL_AUTH="accounts")
        env.setdefault("DISTILL_SECRET_KEY", "coding-load-benchmark-secret")
        env.pop("DISTILL_DATABASE_URL", None)
        from distill_core.config import Settings

        url = Settings.from_env({"DISTILL_HOME": str(home)}).database_url
        home.mkdir(parents=True)
        pid = prepare(url, args.coders)
        os.environ["DISTILL_SECRET_KEY"] = env["DISTILL_SECRET_KEY"]
        app = App(home, env)
        times: list[float] = []
        errors: list[str] = []
        try:
            wall = asyncio.run(load(app.url, args.coders, args.codes, times, errors))
        finally:
            app.stop()
        store = Store(url)
        with store.session() as s:
            stored = s.query(HumanCode).filter(HumanCode.project_id == pid).count()
            per_coder = {
                c: n
                for c, n in s.query(HumanCode.coder, func.count())
                .filter(HumanCode.project_id == pid, HumanCode.coder.like("coder%"))
                .group_by(HumanCode.coder)
            }
        store.dispose()
    expected = args.coders * args.codes
    ours = stored - 160  # the demo's two experts
    print(f"{args.coders} coders × {args.codes} codes at once, wall {wall:,.1f} s")
    if times:
        q = statistics.quantiles(times, n=20)
        print(
            f"time per submitted code: p50 {statistics.median(times):.2f} s, "
            f"p95 {q[18]:.2f} s, max {max(times):.2f} s (n = {len(times)})"
        )
    print(f"codes stored: {ours} of {expected} ({'none lost' if ours == expected else 'LOST'})")
    short = {c: n for c, n in per_coder.items() if n != args.codes}
    if short:
        print("coders with another count:", short)
    for e in errors:
        print("error:", e)


if __name__ == "__main__":
    main()
