"""Bad input and abuse: back-pressure, limits on what one record may hold, malformed OTLP that leaves
the store as it was, SQL injection in every parameter, the security headers, and what a web page can
do with default settings (no CORS, trusted hosts only, no write without a preflight, no user code)."""

from __future__ import annotations

import base64
import gzip
import os
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs.export import LogRecordExportResult

from service.app import close_app, create_app
from service.params import NS
from service.state import ServiceState
from tests.conftest import BIN, start_server
from tests.helpers import make_record, make_records

PROTOBUF = {"Content-Type": "application/x-protobuf"}
T0 = 1_790_000_000 * NS


def _all_stored(service: ServiceState) -> list[tuple[Any, ...]]:
    """Every stored row, whole, but the service's own request logs (they arrive whenever the batch
    processor flushes): what "left untouched" is checked against."""
    sql = "SELECT * FROM logs WHERE service_name IS DISTINCT FROM 'pipetrace' ORDER BY id"
    return service.store.cursor().execute(sql).fetchall()


@pytest.fixture
def seeded(service: ServiceState) -> ServiceState:
    records = [
        make_record(f"{pipeline} record {i}", timestamp=T0 + i * NS, trace_id=0xAB + i % 2,
                    severity=[SeverityNumber.INFO, SeverityNumber.ERROR][i % 2],
                    attributes={"pipeline.id": pipeline, "pipeline.run_id": f"run-{pipeline}"})
        for pipeline in ("orders", "payroll")
        for i in range(10)
    ]  # fmt: skip
    service.log_exporter.export(records)
    return service


def test_saturated_ingest_gets_429_with_retry_after(client: FlaskClient, service: ServiceState) -> None:
    body = encode_logs([make_record("waits its turn", trace_id=0x429)]).SerializeToString()
    slots = service.settings.ingest_concurrency
    for _ in range(slots):  # every slot busy, as when that many requests are being stored
        assert service.ingest_slots.acquire(blocking=False)
    try:
        response = client.post("/v1/logs", data=body, headers=PROTOBUF)
        assert response.status_code == 429
        assert response.headers["Retry-After"] in ("1", "2", "3")
        assert response.headers["Content-Type"] == "application/x-protobuf"
        assert RpcStatus.FromString(response.data).code == 14  # UNAVAILABLE: come back later
        as_json = client.post("/v1/logs", data=b"{}", headers={"Content-Type": "application/json"})
        assert as_json.status_code == 429 and as_json.json["error"]["code"] == "ingest_saturated"
    finally:
        for _ in range(slots):
            service.ingest_slots.release()
    assert client.post("/v1/logs", data=body, headers=PROTOBUF).status_code == 200
    logs = client.get(f"/api/logs/correlation/{0x429:032x}").json
    assert logs is not None and [log["body"] for log in logs["logs"]] == ["waits its turn"]


def test_official_exporters_back_off_and_deliver_everything_once(tmp_path: Path) -> None:
    """One ingest slot and no waiting for it, six senders at once: some are told 429, wait, retry,
    and nothing is lost or stored twice."""
    server = start_server(
        tmp_path / "data", env={"PIPETRACE_INGEST_CONCURRENCY": "1", "PIPETRACE_INGEST_WAIT_SECONDS": "0"}
    )
    try:
        results: list[LogRecordExportResult] = []

        def send(sender: int) -> None:
            exporter = OTLPLogExporter(endpoint=f"{server.url}/v1/logs", timeout=30)
            for batch in range(4):
                records = make_records(
                    500, start_ns=T0 + (sender * 10 + batch) * 10**12, trace_id=0xBAC0 + sender
                )
                results.append(exporter.export(records))
            exporter.shutdown()

        threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert results == [LogRecordExportResult.SUCCESS] * 24
        for sender in range(6):
            found = server.get(f"/api/logs/correlation/{0xBAC0 + sender:032x}").json()
            assert len(found["logs"]) == 2000 and not found["truncated"]
        assert re.search(r"POST /v1/logs 429", server.log_path.read_text()), "no request was ever refused"
    finally:
        server.stop()


def test_a_received_record_is_held_to_the_attribute_limits(client: FlaskClient) -> None:
    request = encode_logs([make_record("big", trace_id=0xB16, attributes={"key000": "x" * 100_000})])
    proto = request.resource_logs[0].scope_logs[0].log_records[0]
    for i in range(1, 300):  # added to the message itself: the SDK would not build such a record
        extra = proto.attributes.add()
        extra.key, extra.value.int_value = f"key{i:03d}", i
    assert client.post("/v1/logs", data=request.SerializeToString(), headers=PROTOBUF).status_code == 200
    found = client.get(f"/api/logs/correlation/{0xB16:032x}").json
    assert found is not None
    (log,) = found["logs"]
    assert len(log["attributes"]) == 128  # OTEL_ATTRIBUTE_COUNT_LIMIT's default
    assert log["dropped_attributes_count"] == 300 - 128  # what the limit removed is counted
    # OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT is unset by default, as in the SDK: nothing is cut silently.
    assert log["attributes"]["key000"] == "x" * 100_000


def test_a_value_length_limit_cuts_only_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "10")
    app = create_app(data_dir=tmp_path / "limited")
    try:
        client = app.test_client()
        record = make_record("long value", trace_id=0xC17, attributes={"long": "y" * 50, "bytes": b"z" * 50})
        body = encode_logs([record]).SerializeToString()
        assert client.post("/v1/logs", data=body, headers=PROTOBUF).status_code == 200
        (log,) = client.get(f"/api/logs/correlation/{0xC17:032x}").json["logs"]
    finally:
        close_app(app)
    assert log["attributes"]["long"] == "y" * 10
    assert log["attributes"]["bytes"] == {"bytesValue": base64.b64encode(b"z" * 10).decode()}
    assert log["body"] == "long value"  # bodies are never cut


def test_a_request_with_no_valid_record_is_a_400(client: FlaskClient, seeded: ServiceState) -> None:
    before = _all_stored(seeded)
    request = encode_logs([make_record("bad id", trace_id=0xAB), make_record("bad too", trace_id=0xAB)])
    for record in request.resource_logs[0].scope_logs[0].log_records:
        record.trace_id = b"\x01" * 15  # 15 bytes, not 16
    response = client.post("/v1/logs", data=request.SerializeToString(), headers=PROTOBUF)
    assert response.status_code == 400
    assert _all_stored(seeded) == before


# One byte past the default limit (64 MiB) in about 64 KiB of gzip.
BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024 + 1))


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        (PROTOBUF, encode_logs([make_record("cut")]).SerializeToString()[:-5], 400),
        ({"Content-Type": "application/json"}, b'{"resourceLogs": [', 400),
        ({"Content-Type": "text/csv"}, b"a,b", 415),
        ({**PROTOBUF, "Content-Encoding": "gzip"}, BOMB, 413),
        (PROTOBUF, b"\x0a" + b"\xff" * 10, 400),
    ],
)
def test_malformed_otlp_leaves_every_stored_record_as_it_was(
    client: FlaskClient, seeded: ServiceState, headers: dict[str, str], body: bytes, status: int
) -> None:
    before = _all_stored(seeded)
    assert len(before) == 20
    response = client.post("/v1/logs", data=body, headers=headers)
    assert response.status_code == status
    seeded.telemetry.force_flush()
    assert _all_stored(seeded) == before


INJECTIONS = [
    "' OR '1'='1",
    "orders' OR 1=1 --",
    "orders'; DROP TABLE logs; --",
    '" OR ""="',
    "%' OR 1=1 --",
    "orders') UNION SELECT * FROM logs --",
    "\\'; DELETE FROM logs; --",
    "1; SELECT * FROM pipelines",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_sql_injection_in_every_parameter_is_just_text(
    client: FlaskClient, seeded: ServiceState, payload: str
) -> None:
    before = _all_stored(seeded)
    from urllib.parse import quote

    value = quote(payload, safe="")
    pages = [
        f"/api/logs/pipeline/{value}",
        f"/api/logs/pipeline/orders?run_id={value}",
        f"/api/logs/pipeline/orders?stage={value}",
        f"/api/logs/pipeline/orders?level={value}",
        f"/api/logs/pipeline/orders?since={value}",
        f"/api/logs/pipeline/orders?until={value}",
        f"/api/logs/pipeline/orders?cursor={value}",
        f"/api/logs/pipeline/orders?limit={value}",
        f"/api/logs/search?q={value}",
        f"/api/logs/search?q=record&pipeline_id={value}",
        f"/api/logs/stats?pipeline_id={value}",
        f"/api/logs/correlation/{value}",
        f"/api/pipelines/{value}",
        f"/api/runs/{value}",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code in (200, 400, 404), (path, response.status_code)
        body = response.json
        assert body is not None
        if response.status_code != 200:
            assert body["error"]["code"] != "internal_error"
            continue
        # Text that names nothing matches nothing: no row of another pipeline leaks out.
        for log in body.get("logs", []):
            if "search?q=" in path and "pipeline_id" not in path:
                assert payload.lower() in (log["body"] + str(log["attributes"])).lower()
            else:
                raise AssertionError(f"{path} returned rows: {log}")
        if "stats" in path:
            assert body["total"] == 0
    for field in ("pipeline_id", "before"):
        cleanup = {"before": "2020-01-01T00:00:00Z", "dry_run": True, field: payload}
        response = client.post("/api/logs/cleanup", json=cleanup)
        assert response.status_code in (200, 400), response.status_code
        if response.status_code == 200:
            assert response.json is not None and response.json["deleted"] == 0
    assert _all_stored(seeded) == before
    assert seeded.store.cursor().execute("SELECT count(*) FROM pipelines").fetchone() is not None


def test_security_headers(app: Flask) -> None:
    @app.get("/page-for-test")
    def _page() -> tuple[str, int, dict[str, str]]:
        return "<html></html>", 200, {"Content-Type": "text/html"}

    client = app.test_client()
    response = client.get("/api/logs/stats")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = client.get("/page-for-test")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "Content-Security-Policy" not in response.headers  # JSON needs none


TOKEN = "exposure-token-5e1f"


def _preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type",
    }


def test_cors_follows_allow_origins_once_the_api_token_is_set(tmp_path: Path) -> None:
    app = create_app(data_dir=tmp_path / "data", allow_origins="https://ui.example", api_token=TOKEN)
    try:
        client = app.test_client()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        allowed = client.get("/api/logs/stats", headers={"Origin": "https://ui.example", **auth})
        assert allowed.headers.get("Access-Control-Allow-Origin") == "https://ui.example"
        other = client.get("/api/logs/stats", headers={"Origin": "https://evil.example", **auth})
        assert "Access-Control-Allow-Origin" not in other.headers
        # The ingest token is not set: /v1/* stays without CORS.
        preflight = client.options("/v1/logs", headers=_preflight("https://ui.example"))
        assert "Access-Control-Allow-Origin" not in preflight.headers
    finally:
        close_app(app)


@pytest.mark.parametrize("path", ["/api/pipelines", "/api/logs/stats", "/v1/logs"])
def test_no_origin_gets_cors_by_default(client: FlaskClient, path: str) -> None:
    for origin in ("http://localhost:3000", "http://127.0.0.2:8000", "https://evil.example"):
        preflight = client.options(path, headers=_preflight(origin))
        assert "Access-Control-Allow-Origin" not in preflight.headers, (origin, path)
        read = client.get(path, headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in read.headers, (origin, path)


def test_a_configured_origin_without_the_token_gets_no_cors(tmp_path: Path) -> None:
    app = create_app(data_dir=tmp_path / "data", allow_origins="http://localhost:3000", ingest_token=TOKEN)
    try:
        client = app.test_client()
        for path in ("/api/pipelines", "/api/logs/stats"):
            preflight = client.options(path, headers=_preflight("http://localhost:3000"))
            assert "Access-Control-Allow-Origin" not in preflight.headers, path
    finally:
        close_app(app)


def test_serve_refuses_an_origin_without_the_api_token(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "pipetrace"), "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "ALLOW_ORIGINS": "http://localhost:3000"},
    )
    assert done.returncode == 2
    assert "ALLOW_ORIGINS is set without PIPETRACE_API_TOKEN" in done.stderr
    assert not (tmp_path / "data").exists()  # refused before opening anything


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/logs/stats"), ("POST", "/api/pipelines"), ("OPTIONS", "/api/pipelines"),
     ("POST", "/v1/logs"), ("POST", "/v1/traces"), ("GET", "/"), ("GET", "/readyz"), ("GET", "/healthz"),
     ("GET", "/openapi.json")],
)  # fmt: skip
@pytest.mark.parametrize("host", ["evil.example", "evil.example:4318", "localhost.evil.example", "10.0.0.5"])
def test_a_host_not_allowed_gets_421(client: FlaskClient, method: str, path: str, host: str) -> None:
    response = client.open(path, method=method, headers={"Host": host, **PROTOBUF}, data=b"")
    assert response.status_code == 421, (method, path, host)
    assert response.json is not None and response.json["error"]["code"] == "untrusted_host"
    assert response.json["error"]["parameter"] == "Host"


@pytest.mark.parametrize("host", ["localhost", "localhost:3000", "127.0.0.1:4318", "[::1]:8080", "LOCALHOST"])
def test_loopback_names_on_any_port_are_answered(client: FlaskClient, host: str) -> None:
    assert client.get("/api/logs/stats", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("listen", ["192.168.1.4", "0.0.0.0"])
def test_allowed_hosts_are_configurable_and_the_listen_address_is_added(tmp_path: Path, listen: str) -> None:
    app = create_app(data_dir=tmp_path / "data", allowed_hosts="pipetrace.internal", host=listen)
    try:
        client = app.test_client()
        for host in ("pipetrace.internal:4318", f"{listen}:4318"):  # runs report to the listen address
            assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
        for host in ("localhost", "evil.example"):  # the list replaces the default
            assert client.get("/healthz", headers={"Host": host}).status_code == 421, host
    finally:
        close_app(app)


WRITES = ["/api/pipelines", "/api/pipelines/{id}/runs", "/api/runs/nope/cancel", "/api/logs/cleanup"]
SIMPLE_BODIES: list[dict[str, Any]] = [
    {"data": {"name": "x"}},  # a form: application/x-www-form-urlencoded
    {"data": b'{"name": "x"}', "headers": {"Content-Type": "text/plain"}},  # enctype="text/plain"
    {"data": {"name": "x"}, "content_type": "multipart/form-data"},
    {},  # fetch(url, {method: "POST", mode: "no-cors"}): no body, no Content-Type
]


@pytest.fixture
def target(service: ServiceState) -> str:
    """A pipeline a page would like to run (not user code: that has its own guard)."""
    return service.repository.create("target", "simple", {"bucket_url": "/nowhere"}, {}).id


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize("request_kwargs", SIMPLE_BODIES)
def test_a_write_a_browser_sends_without_preflight_gets_415(
    client: FlaskClient, service: ServiceState, target: str, path: str, request_kwargs: dict[str, Any]
) -> None:
    response = client.post(path.format(id=target), **request_kwargs)
    assert response.status_code == 415, response.json
    assert response.json is not None and response.json["error"]["parameter"] == "Content-Type"
    assert "application/json" in response.json["error"]["message"]
    assert service.repository.runs(target, limit=10) == []
    assert [p.id for p in service.repository.all()] == [target]


def test_a_json_write_is_taken_and_with_the_token_so_is_any(client: FlaskClient, tmp_path: Path) -> None:
    assert client.post("/api/runs/nope/cancel", json={}).status_code == 404  # past the check
    app = create_app(data_dir=tmp_path / "guarded", api_token=TOKEN)
    try:
        guarded = app.test_client()
        response = guarded.post("/api/runs/nope/cancel", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 404
    finally:
        close_app(app)


CODE = {"code": "def data_source():\n    return []\n"}


def _define_code(client: FlaskClient, headers: dict[str, str] | None = None) -> Any:
    body = {"name": "code", "template": "dlt_code", "params": CODE}
    return client.post("/api/pipelines", json=body, headers=headers or {})


def test_user_code_is_refused_without_the_token_or_the_setting(client: FlaskClient) -> None:
    response = _define_code(client)
    assert response.status_code == 403
    assert response.json is not None and response.json["error"]["code"] == "user_code_disabled"
    assert "PIPETRACE_ALLOW_USER_CODE" in response.json["error"]["message"]
    assert client.get("/api/pipelines").json == {"pipelines": []}


@pytest.mark.parametrize(
    ("overrides", "allowed"),
    [({"allow_user_code": True}, True), ({"allow_user_code": True, "host": "::1"}, True),
     ({"allow_user_code": True, "host": "0.0.0.0"}, False), ({"api_token": TOKEN}, True),
     ({"api_token": TOKEN, "host": "0.0.0.0"}, True)],
)  # fmt: skip
def test_user_code_needs_the_token_or_the_setting_on_loopback(
    tmp_path: Path, overrides: dict[str, Any], allowed: bool
) -> None:
    app = create_app(data_dir=tmp_path / "data", **overrides)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"} if "api_token" in overrides else {}
        response = _define_code(app.test_client(), headers)
        assert response.status_code == (201 if allowed else 403), response.json
    finally:
        close_app(app)


def test_user_code_defined_earlier_does_not_run_once_disallowed(
    client: FlaskClient, service: ServiceState
) -> None:
    pipeline = service.repository.create("earlier", "dlt_code", CODE, {})
    response = client.post(f"/api/pipelines/{pipeline.id}/runs", json={})
    assert response.status_code == 403
    assert service.repository.runs(pipeline.id, limit=10) == []


def test_readyz_details_and_the_openapi_document_need_the_token(tmp_path: Path, client: FlaskClient) -> None:
    app = create_app(data_dir=tmp_path / "guarded", api_token=TOKEN)
    try:
        guarded = app.test_client()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        bare = guarded.get("/readyz")
        assert bare.status_code == 200 and bare.json == {"status": "ready"}
        assert str(tmp_path) not in bare.get_data(as_text=True)
        assert guarded.get("/readyz", headers={"Authorization": "Bearer wrong"}).json == {"status": "ready"}
        detailed = guarded.get("/readyz", headers=auth).json
        assert detailed is not None and detailed["store"]["path"].startswith(str(tmp_path))
        assert "ingest" in detailed
        refused = guarded.get("/openapi.json")
        assert refused.status_code == 401 and refused.json is not None
        assert refused.json["error"]["code"] == "unauthorized"
        assert guarded.get("/openapi.json", headers=auth).status_code == 200
    finally:
        close_app(app)
    # Without a token set nothing is guarded, locally, as before.
    open_ready = client.get("/readyz").json
    assert open_ready is not None and "store" in open_ready
    assert client.get("/openapi.json").status_code == 200
