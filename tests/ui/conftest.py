"""The UI tests' browser: found, or installed once per session (see ``browser_setup``)."""

from __future__ import annotations

import os

import pytest

from tests.ui.browser_setup import DEFAULT_CHROMIUM, BrowserUnavailable, obtain_chromium

# Read at import: the suite's autouse fixture clears PIPETRACE_* variables before each test.
WANTED = os.environ.get("PIPETRACE_CHROMIUM", DEFAULT_CHROMIUM)


@pytest.fixture(scope="session")
def chromium() -> str | None:
    """The executable to launch (None: Playwright's own build). Failing here fails each browser test
    with the same single line; pytest keeps the failure, so nothing is installed twice."""
    try:
        return obtain_chromium(WANTED)
    except BrowserUnavailable as error:
        pytest.fail(str(error), pytrace=False)
