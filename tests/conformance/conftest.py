"""One real ``pipetrace serve`` for the suite, a capturing proxy in front of it, and the JS SDK's packages."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.capture import CapturingGrpcProxy, CapturingProxy
from tests.conftest import LiveServer, free_port, start_server

JS_DIR = Path(__file__).parent / "js"


GRPC_PORT = free_port()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(
        tmp_path_factory.mktemp("conformance") / "data", env={"PIPETRACE_GRPC_PORT": str(GRPC_PORT)}
    )
    yield live
    live.stop()


@pytest.fixture(scope="session")
def _capturing_proxy(server: LiveServer) -> Iterator[CapturingProxy]:
    capturing = CapturingProxy(server.url)
    yield capturing
    capturing.close()


@pytest.fixture(scope="session")
def grpc_proxy(_capturing_proxy: CapturingProxy) -> Iterator[CapturingGrpcProxy]:
    """Captures OTLP/gRPC Export calls into the same record as the HTTP proxy (``proxy.take``)."""
    capturing = CapturingGrpcProxy(f"127.0.0.1:{GRPC_PORT}", _capturing_proxy)
    yield capturing
    capturing.close()


@pytest.fixture
def proxy(_capturing_proxy: CapturingProxy) -> CapturingProxy:
    """The proxy with nothing captured yet: a failed test's requests never reach the next one."""
    for path in ("/v1/logs", "/v1/traces"):
        _capturing_proxy.take(path)
    return _capturing_proxy


@pytest.fixture(scope="session")
def node() -> str:
    """The ``node`` binary, with the JS SDK installed from the committed lock file on a fresh clone."""
    node_binary, npm = shutil.which("node"), shutil.which("npm")
    if node_binary is None or npm is None:
        pytest.fail(
            "the conformance suite needs Node.js 20+ and npm on PATH (https://nodejs.org)", pytrace=False
        )
    if not (JS_DIR / "node_modules").is_dir():
        installed = subprocess.run(
            [npm, "ci", "--prefix", str(JS_DIR), "--no-audit", "--no-fund"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert installed.returncode == 0, f"npm ci --prefix {JS_DIR} failed:\n{installed.stderr}"
    return node_binary
