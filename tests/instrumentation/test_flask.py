"""Acceptance: the trace id goes back to the client, and the request's logs are found under it."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import close_app, create_app
from service.state import ServiceState, state
from tests.conftest import LiveServer

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _logs_of(client: FlaskClient, service: ServiceState, trace_id: str) -> list[dict[str, object]]:
    service.telemetry.force_flush()
    response = client.get(f"/api/logs/correlation/{trace_id}")
    assert response.status_code == 200, response.get_json()
    logs: list[dict[str, object]] = response.get_json()["logs"]
    return logs


def test_every_traced_response_carries_its_trace_id(client: FlaskClient) -> None:
    response = client.get("/api/logs/stats")
    trace_id = response.headers["X-Correlation-ID"]
    assert len(trace_id) == 32 and int(trace_id, 16)
    assert response.headers["traceresponse"].split("-")[1] == trace_id
    assert "X-Correlation-ID" in response.headers["Access-Control-Expose-Headers"]


def test_an_incoming_traceparent_is_honoured(client: FlaskClient, service: ServiceState) -> None:
    response = client.get("/api/logs/search?q=anything", headers={"traceparent": TRACEPARENT})
    assert response.headers["X-Correlation-ID"] == TRACE_ID
    assert response.headers["traceresponse"].startswith(f"00-{TRACE_ID}-")
    (request_log,) = _logs_of(client, service, TRACE_ID)
    assert request_log["body"].startswith("GET /api/logs/search 200")  # type: ignore[union-attr]
    attributes = request_log["attributes"]
    assert attributes["http.request.method"] == "GET"  # type: ignore[index]
    assert attributes["http.route"] == "/api/logs/search"  # type: ignore[index]
    assert attributes["http.response.status_code"] == {"intValue": "200"}  # type: ignore[index]
    assert attributes["duration_ms"]["doubleValue"] >= 0  # type: ignore[index]
    assert attributes["client.address"] == "127.0.0.1"  # type: ignore[index]
    assert request_log["service_name"] == "pipetrace"
    # The server span of the request is stored under the same trace id.
    spans = client.get(f"/api/logs/correlation/{TRACE_ID}").get_json()["spans"]
    assert [span["name"] for span in spans] == ["GET /api/logs/search"]
    assert spans[0]["parent_span_id"] == "00f067aa0ba902b7"


def test_logs_emitted_while_handling_a_request_share_its_trace(app: Flask, service: ServiceState) -> None:
    @app.get("/work")
    def work() -> dict[str, str]:
        logging.getLogger("app.work").info("doing the work")
        return {"ok": "yes"}

    client = app.test_client()
    client.get("/work", headers={"traceparent": TRACEPARENT})
    logs = _logs_of(client, service, TRACE_ID)
    assert logs[0]["body"] == "doing the work"
    assert logs[0]["span_id"] == logs[1]["span_id"]  # the request span, in both lines


@pytest.mark.parametrize(("path", "level"), [("/api/logs/stats", "INFO"), ("/api/logs/search", "WARN")])
def test_request_log_level_follows_the_status(
    client: FlaskClient, service: ServiceState, path: str, level: str
) -> None:
    client.get(path, headers={"traceparent": TRACEPARENT})
    (log,) = _logs_of(client, service, TRACE_ID)
    assert log["severity_text"] == level


def test_server_errors_are_logged_at_error_with_the_exception(app: Flask, service: ServiceState) -> None:
    @app.get("/explode")
    def explode() -> None:
        raise RuntimeError("kaboom")

    client = app.test_client()
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/explode", headers={"traceparent": TRACEPARENT})
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal_error"
    assert "kaboom" not in response.get_data(as_text=True)  # no internals leak to the client
    unhandled, request_line = _logs_of(client, service, TRACE_ID)
    assert unhandled["body"] == "unhandled error"
    assert unhandled["attributes"]["exception.message"] == "kaboom"  # type: ignore[index]
    assert request_line["body"].startswith("GET /explode 500")  # type: ignore[union-attr]
    assert request_line["severity_text"] == "ERROR"


def test_request_logging_can_be_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_FLASK_LOGGING", "false")
    app = create_app(data_dir=tmp_path / "quiet")
    try:
        client = app.test_client()
        client.get("/api/logs/stats", headers={"traceparent": TRACEPARENT})
        service = state(app)
        service.telemetry.force_flush()
        assert client.get(f"/api/logs/correlation/{TRACE_ID}").get_json()["logs"] == []
    finally:
        close_app(app)


def test_probes_and_ingest_are_not_traced(client: FlaskClient) -> None:
    assert "X-Correlation-ID" not in client.get("/healthz").headers
    assert client.get("/readyz").get_json()["status"] == "ready"


def test_static_files_and_the_icon_are_not_traced_but_a_search_naming_them_is(client: FlaskClient) -> None:
    for path in ("/", "/?x=1", "/ui/app.js", "/ui/views/logs.js", "/favicon.ico"):
        with client.get(path) as response:  # static files are streamed: closed here
            assert response.status_code == 200, path
            assert "X-Correlation-ID" not in response.headers, path
    # The patterns are anchored at the path: the same words in a query string are still traced.
    for path in ("/api/logs/search?q=/healthz", "/api/logs/search?q=/ui/app.js", "/api/logs?q=/favicon.ico"):
        assert "X-Correlation-ID" in client.get(path).headers, path


def test_a_request_asking_not_to_be_sampled_leaves_no_span_and_no_log_line(
    client: FlaskClient, service: ServiceState
) -> None:
    quiet = f"00-{TRACE_ID}-00f067aa0ba902b7-00"  # the web UI's reads: sampled flag off
    assert client.get("/api/logs/stats", headers={"traceparent": quiet}).status_code == 200
    refused = client.get("/api/logs/stats?bogus=1", headers={"traceparent": quiet})
    assert refused.status_code == 400
    service.telemetry.force_flush()
    found = client.get(f"/api/logs/correlation/{TRACE_ID}").get_json()
    # No span of either request; only the failure is logged (a failure is always worth a line).
    assert found.get("spans", []) == []
    assert [log["body"].split(" in ")[0] for log in found["logs"]] == ["GET /api/logs/stats 400"]


def test_traceparent_over_real_http(live_server: LiveServer) -> None:
    response = live_server.get("/api/logs/stats", headers={"traceparent": TRACEPARENT})
    assert response.headers["X-Correlation-ID"] == TRACE_ID
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = live_server.get(f"/api/logs/correlation/{TRACE_ID}")
        if found.status_code == 200 and found.json()["logs"]:
            break
        time.sleep(0.2)
    logs = found.json()["logs"]
    assert logs[0]["body"].startswith("GET /api/logs/stats 200")
    assert logs[0]["attributes"]["client.address"] == "127.0.0.1"


def test_cors_follows_allow_origins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOW_ORIGINS", "http://ui.example, http://localhost:5173")
    monkeypatch.setenv("PIPETRACE_API_TOKEN", "cors-token")  # an origin gets CORS only with it
    app = create_app(data_dir=tmp_path / "cors")
    try:
        client = app.test_client()
        auth = {"Authorization": "Bearer cors-token"}
        preflight = client.options(
            "/api/logs/stats",
            headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
        allowed = client.get("/api/logs/stats", headers={"Origin": "http://ui.example", **auth})
        assert allowed.headers["Access-Control-Allow-Origin"] == "http://ui.example"
        assert "X-Correlation-ID" in allowed.headers["Access-Control-Expose-Headers"]
        other = client.get("/api/logs/stats", headers={"Origin": "http://evil.example", **auth})
        assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        close_app(app)
