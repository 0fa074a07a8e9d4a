"""Shared fixtures: a fresh app on a temp data dir, and a real ``pipetrace serve`` process."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from service.app import close_app, create_app
from service.state import ServiceState, state

BIN = Path(sys.executable).parent
# The dlt_code template runs only behind the API token or with this, on loopback (the tests' case).
ALLOW_USER_CODE = {"PIPETRACE_ALLOW_USER_CODE": "true"}


SEED_VARIABLES = (
    "LOG_LEVEL", "LOG_RETENTION_DAYS", "ENABLE_FAULT_TOLERANCE", "ENABLE_FLASK_LOGGING", "MAX_RETRY_ATTEMPTS",
    "RETRY_DELAY_SECONDS", "CIRCUIT_BREAKER_THRESHOLD", "CIRCUIT_BREAKER_TIMEOUT", "ENABLE_FALLBACK_STORAGE",
    "FALLBACK_DIRECTORY", "FALLBACK_MAX_FILES", "ALLOW_ORIGINS",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's own settings; each spools into its own folder, without waits."""
    for name in list(os.environ):
        if name.startswith(("PIPETRACE_", "OTEL_")) or name in SEED_VARIABLES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("FALLBACK_DIRECTORY", str(tmp_path / "fallback"))
    monkeypatch.setenv("RETRY_DELAY_SECONDS", "0")
    # No gRPC receiver unless a test asks for one on a free port: other programs here use 4317.
    monkeypatch.setenv("PIPETRACE_GRPC_PORT", "0")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    application = create_app(data_dir=tmp_path / "data")
    application.config["TESTING"] = True
    yield application
    close_app(application)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def service(app: Flask) -> ServiceState:
    return state(app)


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    process: subprocess.Popen[str]
    log_path: Path
    # Sent with every request (an Authorization header, when the server has tokens).
    headers: dict[str, str] = field(default_factory=dict)

    def _headers(self, kwargs: dict[str, Any]) -> dict[str, str]:
        return {**self.headers, **kwargs.pop("headers", {})}

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=10, headers=self._headers(kwargs), **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=10, headers=self._headers(kwargs), **kwargs)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    data_dir: Path,
    env: dict[str, str] | None = None,
    port: int = 0,
    cwd: Path | None = None,
    command: tuple[str, ...] = (),
    wait_ready: bool = True,
) -> LiveServer:
    """Start ``pipetrace serve`` on a free loopback port and wait until it is ready (or, without
    ``wait_ready``, until it listens: a degraded service answers but is not ready).

    Its output goes to ``serve.log`` beside the data folder, which failing tests print.
    """
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, str(BIN / "pipetrace"), "serve", "--port", str(port), "--data-dir", str(data_dir)],
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            # gRPC off unless a test asks for it: never the standard 4317, which other programs here use
            # (module-scoped servers start outside the per-test environment fixture).
            env={**os.environ, "PIPETRACE_GRPC_PORT": "0", **(env or {})},
        )
    deadline = time.monotonic() + 60
    url = None
    while url is None and time.monotonic() < deadline and process.poll() is None:
        match = re.search(r"listening on (http://\S+)", log_path.read_text())
        url = match.group(1) if match else None
        time.sleep(0.05)
    if url is None:
        process.kill()
        process.wait()
        raise RuntimeError("pipetrace serve did not start:\n" + log_path.read_text())
    server = LiveServer(url, data_dir, process, log_path)
    while time.monotonic() < deadline:
        if not wait_ready:
            return server
        try:
            if server.get("/readyz").status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("pipetrace serve never became ready:\n" + log_path.read_text())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(tmp_path / "live")
    yield server
    server.stop()
