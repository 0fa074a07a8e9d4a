"""The browser the UI tests drive, obtained by the test run itself when the machine lacks it.

Debian's Chromium (``/usr/bin/chromium``) where apt is usable, as root; otherwise Playwright's own
build (``playwright install chromium``). When neither can be had the browser tests fail with one line
saying what to install: never a silent skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

DEFAULT_CHROMIUM = "/usr/bin/chromium"

# (command, extra environment) -> (exit code, last line it printed)
Runner = Callable[[Sequence[str], dict[str, str]], tuple[int, str]]


class BrowserUnavailable(RuntimeError):
    """No Chromium could be found or installed; the message is the one line the tests fail with."""


def run_quietly(command: Sequence[str], env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run(
        list(command), env={**os.environ, **env}, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    lines = [line.strip() for line in (done.stderr.strip() or done.stdout.strip()).splitlines()]
    # apt says "E: ...", Playwright "Error: ..." followed by a stack: the first such line is the reason.
    reasons = [line for line in lines if line.startswith(("E:", "Error"))]
    return done.returncode, (reasons or lines or ["no output"])[0 if reasons else -1]


def obtain_chromium(
    wanted: str = DEFAULT_CHROMIUM,
    *,
    is_root: bool | None = None,
    apt_get: str | None = None,
    run: Runner = run_quietly,
    debian_path: str = DEFAULT_CHROMIUM,
) -> str | None:
    """The Chromium executable to launch, or None for Playwright's own build, installing one if needed."""
    if Path(wanted).is_file() and os.access(wanted, os.X_OK):
        return wanted
    is_root = os.geteuid() == 0 if is_root is None else is_root
    apt_get = shutil.which("apt-get") if apt_get is None else apt_get
    tried = []
    if is_root and apt_get and wanted == debian_path:  # apt installs only Debian's path
        apt_env = {"DEBIAN_FRONTEND": "noninteractive"}
        code, said = run([apt_get, "update", "-qq"], apt_env)
        if code == 0:
            code, said = run([apt_get, "install", "-y", "-qq", "chromium"], apt_env)
        if code == 0 and Path(wanted).is_file():
            return wanted
        tried.append(f"apt-get install chromium: {said}")
    code, said = run([sys.executable, "-m", "playwright", "install", "chromium"], {})
    if code == 0:
        return None
    tried.append(f"playwright install chromium: {said}")
    raise BrowserUnavailable(
        f"the browser tests need Chromium at {wanted}: install Debian's chromium package "
        f"(apt-get install chromium) or run `playwright install chromium` ({'; '.join(tried)})"
    )
