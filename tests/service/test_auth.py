"""Tokens: /api/* needs the API token, /v1/* the ingest token, when they are set; runs still report."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from service.app import close_app, create_app
from service.cli import is_loopback
from tests.conftest import BIN, start_server
from tests.service.pipeline_helpers import create, start, wait_for_logs, wait_for_run

API_TOKEN = "api-token-8f1c2a"
INGEST_TOKEN = "ingest-token-4b7d9e"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(data_dir=tmp_path / "data", api_token=API_TOKEN, ingest_token=INGEST_TOKEN)
    app.config["TESTING"] = True
    yield app
    close_app(app)


def _guarded_routes(app: Flask) -> list[tuple[str, str, str]]:
    """Every (method, concrete path, expected token) the app serves under /api and /v1."""
    routes = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x", rule.rule)
        token = API_TOKEN if path.startswith("/api/") else INGEST_TOKEN if path.startswith("/v1/") else None
        if token is None:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((method, path, token))
    return routes


def test_every_guarded_route_refuses_a_missing_or_wrong_token(guarded: Flask) -> None:
    client = guarded.test_client()
    routes = _guarded_routes(guarded)
    # Every route family the issue names is among them.
    paths = {path for _, path, _ in routes}
    assert {"/api/logs/cleanup", "/api/pipelines", "/v1/logs", "/v1/traces"} <= paths
    assert len(routes) >= 12
    for method, path, token in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"}):
            response = client.open(path, method=method, headers=headers)
            assert response.status_code == 401, (method, path, headers, response.status_code)
            assert response.json is not None and response.json["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert token not in response.get_data(as_text=True)
        # The other kind of token does not open it either.
        other = API_TOKEN if token == INGEST_TOKEN else INGEST_TOKEN
        response = client.open(path, method=method, headers={"Authorization": f"Bearer {other}"})
        assert response.status_code == 401, (method, path)
        # The right token gets past the check (whatever the route then says about the empty request).
        response = client.open(path, method=method, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code != 401, (method, path)


def test_open_routes_stay_open_and_nothing_is_guarded_without_tokens(guarded: Flask, client: object) -> None:
    assert guarded.test_client().get("/healthz").status_code == 200
    assert guarded.test_client().get("/readyz").status_code == 200
    from flask.testing import FlaskClient

    assert isinstance(client, FlaskClient)
    assert client.get("/api/logs/stats").status_code == 200  # the default app has no tokens


def test_a_run_reports_its_telemetry_through_the_ingest_token(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "data", env={"PIPETRACE_API_TOKEN": API_TOKEN, "PIPETRACE_INGEST_TOKEN": INGEST_TOKEN}
    )
    try:
        assert server.get("/api/pipelines").status_code == 401
        server.headers["Authorization"] = f"Bearer {API_TOKEN}"
        code = "import dlt\n\ndef data_source():\n    return dlt.resource([{'id': 1}], name='one')\n"
        pipeline = create(server, "dlt_code", {"code": code})
        run = wait_for_run(server, start(server, pipeline["id"])["run_id"])
        assert run["status"] == "succeeded", run
        # The run's own logs and spans came back over OTLP, past the ingest token.
        body = wait_for_logs(
            server,
            f"/api/logs/correlation/{run['trace_id']}",
            lambda b: any(s["name"] == "run" for s in b["spans"]) and b["logs"],
        )
        assert any(log["run_id"] == run["run_id"] for log in body["logs"])
        assert INGEST_TOKEN not in server.log_path.read_text()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True), ("127.8.0.1", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.4", False), ("example.com", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_serve_refuses_a_public_address_without_tokens(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "pipetrace"), "serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "PIPETRACE_API_TOKEN and PIPETRACE_INGEST_TOKEN" in done.stderr and "--insecure" in done.stderr
    assert not (tmp_path / "telemetry.duckdb").exists()  # refused before opening anything
