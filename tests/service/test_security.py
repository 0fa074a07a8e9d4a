"""Bad input and abuse: back-pressure, limits on what one record may hold, malformed OTLP that leaves
the store as it was, SQL injection in every parameter, and the security headers."""

from __future__ import annotations

import gzip
import re
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

from service.params import NS
from service.state import ServiceState
from tests.conftest import start_server
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
    assert log["attributes"]["key000"] == "x" * 8192  # OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, ours: 8192


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


def test_cors_follows_allow_origins(tmp_path: Path) -> None:
    from service.app import close_app, create_app

    app = create_app(data_dir=tmp_path / "data", allow_origins="https://ui.example")
    try:
        client = app.test_client()
        allowed = client.get("/api/logs/stats", headers={"Origin": "https://ui.example"})
        assert allowed.headers.get("Access-Control-Allow-Origin") == "https://ui.example"
        other = client.get("/api/logs/stats", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        close_app(app)
