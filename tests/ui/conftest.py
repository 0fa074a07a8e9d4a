"""The UI tests' browser: found, or installed once per session (see ``browser_setup``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.ui.browser_setup import DEFAULT_CHROMIUM, BrowserUnavailable, obtain_chromium

# Read at import: the suite's autouse fixture clears PIPETRACE_* variables before each test.
WANTED = os.environ.get("PIPETRACE_CHROMIUM", DEFAULT_CHROMIUM)
_OBTAINED = pytest.StashKey[str | BrowserUnavailable | None]()


def _obtain(config: pytest.Config) -> str | BrowserUnavailable | None:
    if _OBTAINED not in config.stash:
        try:
            config.stash[_OBTAINED] = obtain_chromium(WANTED)
        except BrowserUnavailable as error:
            config.stash[_OBTAINED] = error
    return config.stash[_OBTAINED]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Obtain the browser right after collection, when a selected test needs it: an install here is
    outside any test's timeout, and a run without browser tests (or --collect-only) installs nothing."""
    if not config.option.collectonly and any("chromium" in getattr(i, "fixturenames", ()) for i in items):
        _obtain(config)


@pytest.fixture(scope="session")
def chromium(pytestconfig: pytest.Config) -> str | None:
    """The executable to launch (None: Playwright's own build); without one, each browser test fails
    with the same single line."""
    obtained = _obtain(pytestconfig)
    if isinstance(obtained, BrowserUnavailable):
        pytest.fail(str(obtained), pytrace=False)
    return obtained


@pytest.fixture(scope="module")
def browser(chromium: str | None) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium,
            # Chromium's own background traffic is refused on a closed network; it is not needed.
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
        )  # fmt: skip
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a context of its own, sized by the test module's ``VIEWPORT`` (1400 x 900 when it
    sets none); a script error in the page fails the test."""
    viewport = getattr(request.module, "VIEWPORT", {"width": 1400, "height": 900})
    context = browser.new_context(viewport=viewport)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == [], f"script errors in the page: {errors}"
