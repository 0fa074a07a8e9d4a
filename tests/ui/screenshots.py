"""The README's screenshots, taken by the browser tests."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shot(page: Page, name: str) -> None:
    """The README's screenshots, at 1400 px (``name.png``) and 800 px (``name-800.png``) wide."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for width, suffix in ((1400, ""), (800, "-800")):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{name}{suffix}.png"), full_page=True)
    if size:
        page.set_viewport_size(size)
