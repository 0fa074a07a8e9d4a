"""The README's examples do what it says when run as written (issue 17, item 3)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask

from service.app import close_app, create_app
from tests.conftest import free_port, start_server

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent

# A program that knows nothing of logging set-up: it never sets a level, as most scripts do not.
PROGRAM = textwrap.dedent(
    """
    import logging
    from opentelemetry import metrics, trace

    with trace.get_tracer("readme").start_as_current_span("readme-work"):
        logging.getLogger("readme.example").info("an info line arrives")
        logging.getLogger("readme.example").warning("a warning line arrives")
    metrics.get_meter("readme").create_counter("readme.rows").add(3)
    """
)


def _example(marker: str) -> str:
    """The one ``sh`` block of the README that runs ``your_program.py`` and contains ``marker``."""
    blocks = [
        b for b in re.findall(r"```sh\n(.*?)```", README, re.S) if "your_program.py" in b and marker in b
    ]
    assert len(blocks) == 1, blocks
    return blocks[0]


@dataclass
class Elsewhere:
    url: str
    requests: list[str]


@pytest.fixture
def elsewhere() -> Iterator[Elsewhere]:
    """An OTLP/HTTP endpoint that records the paths posted to it."""
    posted: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            posted.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Elsewhere(f"http://127.0.0.1:{server.server_address[1]}", posted)
    server.shutdown()
    server.server_close()


def _run(example: str, cwd: Path, env: dict[str, str]) -> None:
    (cwd / "your_program.py").write_text(PROGRAM)
    done = subprocess.run(
        ["bash", "-c", example], cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_direct_to_duckdb_example_stores_info_lines_and_sends_no_metrics(
    tmp_path: Path, elsewhere: Elsewhere
) -> None:
    # Where the SDK sends metrics unless told not to, over HTTP here so that the recorder sees them.
    _run(_example("OTEL_LOGS_EXPORTER=duckdb"), tmp_path, {
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{elsewhere.url}/v1/metrics",
    })  # fmt: skip
    app = create_app(data_dir=tmp_path / ".pipetrace")
    try:
        found = app.test_client().get("/api/logs/search?q=line+arrives").get_json()["logs"]
    finally:
        close_app(app)
    assert sorted(log["severity_text"] for log in found) == ["INFO", "WARN"]
    assert elsewhere.requests == []


@pytest.mark.parametrize(
    "marker", ["OTEL_METRICS_EXPORTER=none OTEL_PYTHON_LOG_CORRELATION=true opentelemetry-instrument",
               "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"],
    ids=["sdk defaults (grpc)", "http/protobuf"],
)  # fmt: skip
def test_the_quick_start_otlp_examples_deliver_info_lines(tmp_path: Path, marker: str) -> None:
    # The examples rely on the standard ports; the test points the SDK at its own server instead.
    grpc_port = free_port()
    server = start_server(tmp_path / "service", env={"PIPETRACE_GRPC_PORT": str(grpc_port)})
    try:
        grpc = "PROTOCOL" not in marker
        endpoint = f"http://127.0.0.1:{grpc_port}" if grpc else server.url
        _run(_example(marker), tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
        deadline = time.monotonic() + 30
        found: list[dict[str, str]] = []
        while len(found) < 2 and time.monotonic() < deadline:
            found = server.get("/api/logs/search?q=line+arrives").json()["logs"]
            time.sleep(0.2)
    finally:
        server.stop()
    assert sorted(log["severity_text"] for log in found) == ["INFO", "WARN"]


def test_the_route_table_lists_every_log_route(app: Flask) -> None:
    rules = {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/logs")
        for method in rule.methods or ()
        if method in ("GET", "POST")
    }
    assert rules, "no log routes found"
    # A route is listed when its path ends there or its query starts (``/api/logs/search?q=...``).
    listed = [(m, p) for m, p in rules if re.search(re.escape(f"`{m} {p}") + "[`?]", README)]
    missing = sorted(rules - set(listed))
    assert missing == []


def test_the_readme_says_how_pipetrace_run_finds_the_service() -> None:
    section = README[README.index("`pipetrace run` runs one pipeline") :][:1200]
    for needed in ("/healthz", "--service-url", "PIPETRACE_URL", "run-spool", "/api/runs/<run id>"):
        assert needed in section, needed
