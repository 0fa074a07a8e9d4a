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
        ({}, ["--grpc-port", "70000"], "grpc_port"),
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
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr
