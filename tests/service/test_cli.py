from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"LOG_LEVEL": "LOUD"}, [], "unknown log level"),
        ({"PIPETRACE_PORT": "http"}, [], "port"),
        ({}, ["--port", "70000"], "port"),
        ({}, ["--threads", "0"], "threads"),
        ({}, ["--grpc-port", "70000"], "--grpc-port"),
        ({"PIPETRACE_GRPC_PORT": "4318"}, [], "give grpc another one"),
    ],
)
def test_serve_refuses_bad_settings_with_a_clear_message(
    env: dict[str, str], args: list[str], message: str
) -> None:
    result = CliRunner().invoke(main, ["serve", *args], env=env)
    assert result.exit_code == 2
    assert "invalid settings" in result.output and message in result.output.lower()


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and "0.1.0" in result.output


def test_serve_says_plainly_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "pipetrace"),
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    # Only this line: nothing (such as "pipetrace ready") before it, for a service that never ran.
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert result.stdout == ""


BAD_SETTINGS = [
    ("MAX_RETRY_ATTEMPTS", "-3", "greater than or equal to 0"),
    ("ENABLE_FAULT_TOLERANCE", "maybe", "valid boolean"),
    ("PIPETRACE_REDACT_PATTERNS", "[unclosed", "not valid JSON"),
    ("PIPETRACE_REDACT_PATTERNS", '["[unclosed"]', "not a regular expression"),
]
# The spool commands read only the exporters' settings (retry, breaker, spool), not the service's.
CASES = [
    pytest.param(command, *setting, id=f"{' '.join(command)} {setting[0]}={setting[1]}")
    for command in (["serve"], ["config", "check"], ["run", "simple"], ["spool", "status"])
    for setting in BAD_SETTINGS
    if command[0] != "spool" or not setting[0].startswith("PIPETRACE_")
]


@pytest.mark.parametrize(("command", "variable", "value", "problem"), CASES)
def test_every_command_refuses_a_bad_setting_in_one_line_naming_it(
    command: list[str], variable: str, value: str, problem: str
) -> None:
    result = CliRunner().invoke(main, command, env={variable: value})
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert variable in lines[0] and problem in lines[0]


def _pipetrace(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "pipetrace"), *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=cwd,
    )  # fmt: skip


def test_run_names_the_parameter_whose_file_cannot_be_read(tmp_path: Path) -> None:
    result = _pipetrace("run", "dlt_code", "--param", "code=@/nonexistent.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: Invalid value for --param: code: cannot read /nonexistent.py: No such file or directory"
    ]


@pytest.mark.parametrize(
    ("text", "problem"), [("file_format: [\n", "Failed to parse YAML"), ("", "Configuration file is empty")]
)
def test_config_check_of_a_broken_file_says_it_once_without_a_traceback(
    tmp_path: Path, text: str, problem: str
) -> None:
    (tmp_path / "broken.yaml").write_text(text)
    result = _pipetrace("config", "check", "broken.yaml", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith("invalid configuration: broken.yaml") and problem in lines[0]
    )


def test_config_check_is_valid_only_when_the_settings_are_too(tmp_path: Path) -> None:
    good = CliRunner().invoke(main, ["config", "check"], env={"MAX_RETRY_ATTEMPTS": "7"})
    assert good.exit_code == 0 and "valid" in good.output.splitlines()[-1]
    bad = CliRunner().invoke(main, ["config", "check"], env={"CIRCUIT_BREAKER_THRESHOLD": "0"})
    assert bad.exit_code == 2 and "valid" not in bad.output.replace("invalid", "")
    assert "CIRCUIT_BREAKER_THRESHOLD" in bad.output
