"""Headless Chromium on the test stack's Temporal Web UI: open a page, wait until the single-page app
has rendered what a test looks for, return the rendered text and keep a screenshot.

The browser is Debian's `/usr/bin/chromium` (installed by scripts/setup.sh), driven by Playwright's
async API so the saga worker sharing the test's event loop keeps running while a page renders;
nothing is downloaded at run time. Every wait is bounded and names what it waited for; a page that
never shows it still leaves its screenshot, so a failure can be looked at.

Screenshots go to `test-artifacts/webui/<test name>-<page>.png` (git-ignored; `CF_TEST_ARTIFACTS`
moves the `test-artifacts` directory).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from playwright.async_api import Browser, Error, Page, async_playwright

from core.settings import Settings, project_root

__all__ = ["CHROMIUM", "RenderedPage", "WebUI", "artifacts_dir", "chromium", "webui"]

#: Debian's browser; the helper never uses a browser build of Playwright's own.
CHROMIUM = Path("/usr/bin/chromium")
#: Wide enough that the list shows every default column.
_VIEWPORT = {"width": 1920, "height": 1080}
_POLL_S = 0.25

#: Each table row's visible text (the workflow list is a table).
_ROWS_JS = "() => Array.from(document.querySelectorAll('tr, [role=row]')).map(row => row.innerText)"


def artifacts_dir() -> Path:
    """Where the Web UI tests keep their screenshots."""
    root = Path(os.environ.get("CF_TEST_ARTIFACTS") or project_root() / "test-artifacts")
    return root / "webui"


@dataclass(frozen=True)
class RenderedPage:
    """What a person sees on one page: every frame's text, each table row's text, the screenshot."""

    url: str
    text: str
    rows: list[str]
    screenshot: Path

    def row_with(self, text: str) -> str:
        """The one list row that contains `text`; AssertionError naming the rows there are."""
        matching = [row for row in self.rows if text in row]
        assert len(matching) == 1, (
            f"{len(matching)} rows contain {text!r} at {self.url} (screenshot {self.screenshot}); "
            f"rows: {[' '.join(row.split()) for row in self.rows][:20]}"
        )
        return " ".join(matching[0].split())


class WebUI:
    """The test stack's Web UI, for one test: pages open in a fresh browser context, screenshots are
    named after the test."""

    def __init__(self, browser: Browser, settings: Settings, test_name: str) -> None:
        self.browser = browser
        self.base_url = settings.temporal_ui_url
        self.namespace = settings.temporal_namespace
        self.test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)

    def list_url(self, query: str | None = None) -> str:
        """The workflow list, as a person first sees it (no query) or filtered by a visibility query."""
        url = f"{self.base_url}/namespaces/{quote(self.namespace)}/workflows"
        return f"{url}?{urlencode({'query': query})}" if query else url

    def workflow_url(self, workflow_id: str, run_id: str | None = None, tab: str = "history") -> str:
        """A workflow's page; `tab` is the path segment of its tab: `timeline`, `history` (Event
        History), `relationships`, `user-metadata`, `query`, `memo`… A tab needs the run id; without
        one the UI opens the latest run on its default tab (Timeline). The Event History shows 100
        events a page, newest first: asked for 500, a saga's whole history is on the one page."""
        url = f"{self.base_url}/namespaces/{quote(self.namespace)}/workflows/{quote(workflow_id, safe='')}"
        if run_id is None:
            return url
        return f"{url}/{quote(run_id)}/{tab}" + ("?per-page=500" if tab == "history" else "")

    async def open(
        self,
        url: str,
        *,
        page: str,
        expect: Sequence[str],
        timeout_s: float = 60.0,
        reload_every_s: float | None = 5.0,
    ) -> RenderedPage:
        """Open `url`, wait until every string of `expect` is rendered (in any frame), screenshot it
        as `<test>-<page>.png` and return what it shows. The page is reloaded every `reload_every_s`
        while something is missing (the list does not refresh itself); after `timeout_s` an
        AssertionError names what was awaited and what was there instead."""
        shot = artifacts_dir() / f"{self.test_name}-{page}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        context = await self.browser.new_context(viewport=_VIEWPORT, locale="en-US", timezone_id="UTC")
        try:
            tab = await context.new_page()
            deadline = time.monotonic() + timeout_s
            await tab.goto(url, timeout=timeout_s * 1000)
            loaded = time.monotonic()
            missing = list(expect)
            text = ""
            while True:
                text = await _rendered_text(tab)
                missing = [wanted for wanted in expect if wanted not in text]
                now = time.monotonic()
                if not missing or now >= deadline:
                    break
                if reload_every_s is not None and now - loaded >= reload_every_s:
                    await tab.reload(timeout=max(deadline - now, 1.0) * 1000)
                    loaded = time.monotonic()
                else:
                    await tab.wait_for_timeout(_POLL_S * 1000)
            await tab.screenshot(path=str(shot), full_page=True)
            rows = await tab.evaluate(_ROWS_JS)
            assert not missing, (
                f"Web UI page {page!r} ({tab.url}) did not render {missing!r} within {timeout_s:g} s; "
                f"screenshot {shot}; it shows: {' '.join(text.split())[:2000]!r}"
            )
            return RenderedPage(url=tab.url, text=text, rows=rows, screenshot=shot)
        finally:
            await context.close()


async def _rendered_text(tab: Page) -> str:
    """The visible text of the page and of every frame in it: the Web UI draws Markdown (summaries,
    details, current details) in iframes of their own. A frame being replaced is skipped."""
    parts = []
    for frame in tab.frames:
        try:
            parts.append(await frame.evaluate("() => document.body ? document.body.innerText : ''"))
        except Error:
            continue
    return "\n".join(parts)


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    """One headless Debian Chromium for the session (a launch takes about a second)."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def webui(chromium: Browser, settings: Settings, request: pytest.FixtureRequest) -> WebUI:
    """The test stack's Web UI, its screenshots named after the requesting test."""
    return WebUI(chromium, settings, request.node.name)
