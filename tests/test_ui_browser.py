"""The dashboard in a real browser (Debian's chromium, driven by Playwright for Python)
against a gateway serving stub traffic: the pages show the request log's numbers, the
request browser's filters work, a non-admin key is refused, a prompt carrying markup stays
text and runs nothing, no key appears in any URL, and the CSP blocks nothing of ours.

Screenshots of every page go to ``$POINTSMAN_TEST_ARTIFACTS/ui`` (default:
``test-artifacts/ui`` in the repository, ignored by git). Skipped when chromium is missing
(``scripts/install-browser.sh`` installs it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway_harness import running
from pointsman.config import load_config
from pointsman.gateway.app import create_app
from pointsman.testing.upstream import UpstreamStub
from ui_support import ADMIN, ALICE, BOB, HOSTILE, chat, logged, send_traffic, write_config

CHROMIUM = os.environ.get("POINTSMAN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"no chromium at {CHROMIUM} (scripts/install-browser.sh installs Debian's)",
                allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

ARTIFACTS = Path(os.environ.get("POINTSMAN_TEST_ARTIFACTS")
                 or Path(__file__).resolve().parent.parent / "test-artifacts") / "ui"
WAIT_MS = 30_000  # generous: a shared, loaded machine


@dataclass
class Session:
    url: str
    log: dict[str, Any]
    stub: UpstreamStub
    browser: Any
    urls: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def page(self) -> Any:
        """A fresh page (own sessionStorage) that records every URL it asks for and every
        console error or uncaught exception (a CSP violation is a console error)."""
        page = self.browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(str(e)))
        return page


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_factory.mktemp("ui-browser")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # chromium refuses root otherwise
    with UpstreamStub() as stub, running(create_app(load_config(write_config(tmp, stub)))) as url, \
            sync_playwright() as pw:
        send_traffic(url, stub)
        playwright_api.expect.set_options(timeout=WAIT_MS)
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield Session(url, logged(tmp / "requests.db"), stub, browser)
        finally:
            browser.close()


def sign_in(session: Session, key: str = ADMIN) -> Any:
    page = session.page()
    page.goto(f"{session.url}/ui")
    page.fill("#key", key)
    page.click("#login-form button[type=submit]")
    return page


def usd(value: float) -> str:
    """The page's format of a dollar amount (app.js ``usd``)."""
    a = abs(value)
    digits = 2 if a == 0 else 6 if a < 0.01 else 4 if a < 1 else 2
    return f"${value:.{digits}f}"


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def stat(page: Any, name: str) -> Any:
    return page.locator(f"[data-stat={name}] .value")


def test_non_admin_is_refused(session: Session) -> None:
    page = sign_in(session, ALICE)
    message = page.locator("#login-message.refused")
    playwright_api.expect(message).to_contain_text("admin key required")
    assert page.locator("#main").is_hidden()
    assert page.evaluate("sessionStorage.getItem('pointsman.adminKey')") is None
    shot(page, "refused")


def test_overview_shows_the_logs_numbers(session: Session) -> None:
    page = sign_in(session)
    log = session.log
    expect = playwright_api.expect
    expect(stat(page, "requests")).to_have_text(str(log["requests"]))
    expect(stat(page, "spend")).to_have_text(usd(log["cost_usd"]))
    expect(stat(page, "baseline")).to_have_text(usd(log["baseline_cost_usd"]))
    expect(stat(page, "savings")).to_have_text(usd(log["baseline_cost_usd"] - log["cost_usd"]))
    expect(page.locator("#chart-requests canvas")).to_have_count(1)
    expect(page.locator("#chart-spend canvas")).to_have_count(1)
    shot(page, "overview")


def test_routing_latency_budgets_pages(session: Session) -> None:
    page = sign_in(session)
    expect = playwright_api.expect
    expect(stat(page, "requests")).to_have_text(str(session.log["requests"]))
    page.click("a[data-tab=routing]")
    for model, n in session.log["by_model"].items():
        row = page.locator("#share-model tr", has=page.locator(f"td:text-is('{model}')"))
        expect(row.locator("td").nth(1)).to_have_text(str(n))
    expect(page.locator("#chart-reason canvas")).to_have_count(1)
    shot(page, "routing")
    page.click("a[data-tab=latency]")
    expect(page.locator("#latency-models")).to_contain_text("gpt-4o-mini")
    expect(page.locator("#latency-deployments")).to_contain_text("gpt-4.1@stub-openai")
    expect(page.locator("#health")).to_contain_text("closed")
    shot(page, "latency")
    page.click("a[data-tab=budgets]")
    expect(page.locator("#budget-positions")).to_contain_text("alice")
    expect(stat(page, "day")).to_have_text(usd(session.log["cost_usd"]))
    shot(page, "budgets")
    page.click("a[data-tab=experiments]")
    experiment = page.locator("[data-experiment=stricter]")
    expect(experiment).to_contain_text("control A")
    expect(experiment.locator("tbody tr")).to_have_count(2)
    expect(page.locator("#labels")).to_contain_text("gpt-4o-mini")
    shot(page, "experiments")


def test_request_browser_filters_and_hostile_prompt(session: Session) -> None:
    page = sign_in(session)
    expect = playwright_api.expect
    page.click("a[data-tab=requests]")
    rows = page.locator("#requests-table tbody tr")
    expect(rows).to_have_count(session.log["requests"])
    page.select_option("select[data-filter=user]", "alice")
    expect(rows).to_have_count(session.log["by_user"]["alice"])
    page.select_option("select[data-filter=outcome]", "ok")
    expect(rows).to_have_count(session.log["by_user"]["alice"])
    page.click("#filters button[type=reset]")
    expect(rows).to_have_count(session.log["requests"])
    page.select_option("select[data-filter=outcome]", "error")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("bob")
    page.click("#filters button[type=reset]")
    hostile = page.locator("#requests-table tbody tr", has_text="window.__pwned")
    expect(hostile).to_have_count(1)
    expect(hostile.locator(".prompt")).to_have_text(HOSTILE)
    hostile.click()
    expect(page.locator("#detail pre.message")).to_have_text(HOSTILE)
    expect(page.locator("#detail")).to_contain_text("requested explicitly")
    shot(page, "requests")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("#requests-table b, #detail b, script:not([src])").count() == 0


def test_decision_shows_scores_and_candidates(session: Session) -> None:
    page = sign_in(session)
    expect = playwright_api.expect
    page.click("a[data-tab=requests]")
    page.select_option("select[data-filter=user]", "alice")
    page.locator("#requests-table tbody tr", has_text="capital of France").first.click()
    detail = page.locator("#detail")
    expect(detail).to_contain_text("complexity")
    expect(detail.locator("tr.chosen")).to_contain_text("gpt-4o-mini")
    expect(detail).to_contain_text("gpt-4.1")
    expect(detail).to_contain_text("<i>great</i>")  # the label's comment, as text
    assert detail.locator("i").count() == 0
    shot(page, "decision")


def test_updates_live(session: Session) -> None:
    page = sign_in(session)
    before = session.log["requests"]
    playwright_api.expect(stat(page, "requests")).to_have_text(str(before))
    assert chat(session.url, BOB, "gpt-4.1", "one more").status_code == 200
    playwright_api.expect(stat(page, "requests")).to_have_text(str(before + 1))  # polled


def test_no_key_in_urls_and_no_console_errors(session: Session) -> None:
    """Last: over every page the tests above opened."""
    assert session.urls, "the tests above requested nothing"
    for url in session.urls:
        for key in (ADMIN, ALICE, BOB):
            assert key not in url
    problems = [p for p in session.problems if "status of 403" not in p]  # the refusals
    assert problems == []
