"""Acceptance: outside programs send OTLP/HTTP to a running ``pipetrace serve`` and read it back."""

from __future__ import annotations

import base64
import gzip
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from google.protobuf import json_format
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from werkzeug.test import TestResponse

from service.app import close_app, create_app
from service.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import make_record


def _send_with_official_exporters(server: LiveServer, compression: Compression) -> tuple[str, str]:
    """A client program: one trace with a child span and three log lines, sent over OTLP/HTTP."""
    resource = Resource.create({"service.name": "client-app", "pipeline.id": "shop"})
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{server.url}/v1/logs", compression=compression))
    )
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", compression=compression))
    )
    logger = logging.getLogger(f"client.{compression.value}")
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=logger_provider)
    logger.addHandler(handler)
    tracer = tracer_provider.get_tracer("client.tracer", "3.1")
    try:
        with tracer.start_as_current_span("run", kind=SpanKind.SERVER) as root:
            logger.info("starting", extra={"rows": 10, "ratio": 0.5, "tags": ["a", "b"]})
            with tracer.start_as_current_span("load") as child:
                child.set_status(Status(StatusCode.ERROR, "boom"))
                logger.error("load failed: %s", "timeout", extra={"otel.event.name": "load.failed"})
            logger.warning("done with ünïcode ✓")
    finally:
        logger.removeHandler(handler)
        logger_provider.shutdown()
        tracer_provider.shutdown()
    return format(root.get_span_context().trace_id, "032x"), format(child.get_span_context().span_id, "016x")


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_official_otlp_exporters_round_trip(live_server: LiveServer, compression: Compression) -> None:
    trace_id, load_span = _send_with_official_exporters(live_server, compression)
    found = live_server.get(f"/api/logs/correlation/{trace_id}").json()
    logs = found["logs"]
    assert [log["body"] for log in logs] == ["starting", "load failed: timeout", "done with ünïcode ✓"]
    starting, failed, done = logs
    assert starting["attributes"]["rows"] == {"intValue": "10"}
    assert starting["attributes"]["ratio"] == {"doubleValue": 0.5}
    assert starting["attributes"]["tags"] == {
        "arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}
    }
    assert starting["severity_text"] == "INFO" and starting["severity_number"] == 9
    assert starting["service_name"] == "client-app"
    assert starting["pipeline_id"] == "shop"  # promoted from the resource
    assert starting["resource"]["service.name"] == "client-app"
    assert starting["scope"]["name"] == f"client.{compression.value}"
    assert failed["span_id"] == load_span
    assert failed["event_name"] == "load.failed"
    assert failed["severity_text"] == "ERROR"
    assert done["severity_text"] == "WARN"
    spans = {span["name"]: span for span in found["spans"]}
    assert set(spans) == {"run", "load"}
    assert spans["load"]["parent_span_id"] == spans["run"]["span_id"]
    assert spans["load"]["status"] == {"code": "ERROR", "message": "boom"}
    assert spans["run"]["kind"] == "SERVER"
    assert (spans["run"]["scope"]["name"], spans["run"]["scope"]["version"]) == ("client.tracer", "3.1")
    assert spans["run"]["service_name"] == "client-app"


def _otlp_json(message: Any) -> bytes:
    """OTLP/JSON as the spec writes it: protobuf's JSON mapping, but trace and span ids in hex."""

    def hexify(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") else hexify(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [hexify(v) for v in node]
        return node

    return orjson.dumps(hexify(json_format.MessageToDict(message)))


def _finished_span(name: str, trace_id: int, span_id: int) -> ReadableSpan:
    provider = TracerProvider()
    with provider.get_tracer("json.client").start_as_current_span(name) as span:
        pass
    readable: ReadableSpan = span  # type: ignore[assignment]
    readable._context = readable.context.__class__(trace_id, span_id, False, readable.context.trace_flags)  # type: ignore[union-attr]
    return readable


@pytest.mark.parametrize("gzipped", [False, True])
def test_otlp_json_round_trip(live_server: LiveServer, gzipped: bool) -> None:
    trace_id = 0x5B8EFFF798038103D269B633813FC60C
    records = [
        make_record("json one", trace_id=trace_id, span_id=0xEEE19B7EC3C1B174, attributes={"k": "v", "n": 7}),
        make_record("json two", trace_id=trace_id, span_id=0xEEE19B7EC3C1B174),
    ]
    body = _otlp_json(encode_logs(records))
    headers = {"Content-Type": "application/json"}
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    response = live_server.post("/v1/logs", data=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {}  # no partial_success: everything was accepted

    span_body = _otlp_json(encode_spans([_finished_span("json-span", trace_id, 0xEEE19B7EC3C1B174)]))
    assert live_server.post("/v1/traces", data=span_body, headers={"Content-Type": "application/json"}).ok

    found = live_server.get(f"/api/logs/correlation/{trace_id:032x}").json()
    assert [log["body"] for log in found["logs"]] == ["json one", "json two"]
    assert found["logs"][0]["attributes"] == {"k": "v", "n": {"intValue": "7"}}
    assert found["logs"][0]["span_id"] == "eee19b7ec3c1b174"
    assert [span["name"] for span in found["spans"]] == ["json-span"]


def test_invalid_records_are_reported_as_partial_success(live_server: LiveServer) -> None:
    request = encode_logs(
        [make_record("good", trace_id=0xABC, span_id=0x1), make_record("bad", trace_id=0xABC)]
    )
    request.resource_logs[0].scope_logs[0].log_records[1].trace_id = b"\x01\x02\x03"  # 3 bytes, not 16
    response = live_server.post(
        "/v1/logs", data=request.SerializeToString(), headers={"Content-Type": "application/x-protobuf"}
    )
    assert response.status_code == 200
    answer = ExportLogsServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_log_records == 1
    assert "trace_id must be 16 bytes" in answer.partial_success.error_message
    assert [log["body"] for log in live_server.get(f"/api/logs/correlation/{0xABC:032x}").json()["logs"]] == [
        "good"
    ]


def test_times_beyond_the_stored_range_are_rejected_per_record(live_server: LiveServer) -> None:
    request = encode_logs([make_record("in range", trace_id=0xFA7), make_record("too late", trace_id=0xFA7)])
    request.resource_logs[0].scope_logs[0].log_records[1].time_unix_nano = 2**64 - 1
    response = live_server.post(
        "/v1/logs", data=request.SerializeToString(), headers={"Content-Type": "application/x-protobuf"}
    )
    answer = ExportLogsServiceResponse.FromString(response.content)
    assert (response.status_code, answer.partial_success.rejected_log_records) == (200, 1)
    assert "beyond the year 2262" in answer.partial_success.error_message
    found = live_server.get(f"/api/logs/correlation/{0xFA7:032x}").json()
    assert [log["body"] for log in found["logs"]] == ["in range"]


def test_the_same_request_sent_twice_is_stored_once(live_server: LiveServer) -> None:
    body = encode_logs(
        [make_record(f"retry {i}", trace_id=0xD0D0, span_id=1) for i in range(5)]
    ).SerializeToString()
    for _ in range(2):
        assert live_server.post("/v1/logs", data=body, headers={"Content-Type": "application/x-protobuf"}).ok
    assert len(live_server.get(f"/api/logs/correlation/{0xD0D0:032x}").json()["logs"]) == 5


@pytest.mark.parametrize(
    ("content_type", "encoding", "body", "status"),
    [
        ("application/x-protobuf", None, b"\xff\xff\xff\xff", 400),
        ("application/x-protobuf", None, encode_logs([make_record("cut")]).SerializeToString()[:-3], 400),
        ("application/json", None, b"{not json", 400),
        ("application/json", None, b"[1, 2]", 400),
        (
            "application/json",
            None,
            b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz"}]}]}]}',
            400,
        ),
        ("application/json", None, b'{"resourceLogs": "nope"}', 400),
        ("text/plain", None, b"hello", 415),
        ("application/json", "br", b"{}", 415),
        ("application/json", "gzip", b"not gzip at all", 400),
        ("application/json", "gzip", gzip.compress(b"{}")[:-4], 400),
    ],
)
def test_malformed_otlp_gets_a_4xx_and_stores_nothing(
    live_server: LiveServer, content_type: str, encoding: str | None, body: bytes, status: int
) -> None:
    before = live_server.get("/api/logs/stats?pipeline_id=none").json()["total"]
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    response = live_server.post("/v1/logs", data=body, headers=headers)
    assert response.status_code == status, response.text
    if content_type == "application/x-protobuf":
        assert response.headers["Content-Type"] == "application/x-protobuf"
    else:
        assert response.json()["message"]
        expected = {400: "invalid_otlp", 413: "body_too_large", 415: "unsupported_media_type"}[status]
        assert response.json()["error"]["code"] == expected
    assert live_server.get("/api/logs/stats?pipeline_id=none").json()["total"] == before


@pytest.mark.parametrize("gzipped", [False, True])
def test_the_request_size_limit_is_a_setting_measured_after_decompression(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gzipped: bool
) -> None:
    assert Settings().max_request_bytes == 64 * 1024 * 1024  # the OTLP spec's recommended default
    monkeypatch.setenv("PIPETRACE_MAX_REQUEST_BYTES", str(1024 * 1024))
    app = create_app(data_dir=tmp_path / "data")
    try:
        client = app.test_client()
        headers = {"Content-Type": "application/json", **({"Content-Encoding": "gzip"} if gzipped else {})}

        def post(size: int) -> TestResponse:
            body = b"{}" + b" " * (size - 2)  # valid OTLP/JSON of exactly ``size`` bytes
            return client.post("/v1/logs", data=gzip.compress(body) if gzipped else body, headers=headers)

        assert post(1024 * 1024).status_code == 200
        too_large = post(1024 * 1024 + 1)
        assert too_large.status_code == 413
        assert too_large.json is not None and too_large.json["error"]["code"] == "body_too_large"
        assert "larger than 1048576 bytes" in too_large.json["message"]
    finally:
        close_app(app)


def test_a_record_without_trace_context_is_stored(live_server: LiveServer) -> None:
    body = encode_logs([make_record("no trace", attributes={"pipeline.id": "ctxless"})]).SerializeToString()
    assert live_server.post("/v1/logs", data=body, headers={"Content-Type": "application/x-protobuf"}).ok
    (log,) = live_server.get("/api/logs/pipeline/ctxless").json()["logs"]
    assert log["trace_id"] is None and log["span_id"] is None


def test_the_server_stops_cleanly_and_keeps_what_it_stored(live_server: LiveServer) -> None:
    body = encode_logs([make_record("kept", attributes={"pipeline.id": "keep"})]).SerializeToString()
    assert live_server.post("/v1/logs", data=body, headers={"Content-Type": "application/x-protobuf"}).ok
    assert live_server.stop() == 0
    with pytest.raises(requests.ConnectionError):
        live_server.get("/healthz")


def test_metrics_from_an_sdk_at_its_defaults_are_refused_with_the_reason(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An SDK left at its defaults exports metrics to this port too: the official exporter gets a 404
    and gives up at once (no retry storm); the body says why and what to set."""
    exporter = OTLPMetricExporter(endpoint=f"{live_server.url}/v1/metrics")
    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(exporter, 3_600_000)])
    caplog.set_level(logging.WARNING)
    try:
        provider.get_meter("client").create_counter("rows").add(3)
        provider.force_flush()
    finally:
        provider.shutdown()
    assert "Failed to export metrics batch code: 404" in caplog.text
    assert "retrying" not in caplog.text

    response = live_server.post("/v1/metrics", data=b"", headers={"Content-Type": "application/x-protobuf"})
    status = RpcStatus.FromString(response.content)
    assert (response.status_code, status.code) == (404, 12)  # UNIMPLEMENTED
    assert "/v1/logs" in status.message and "OTEL_METRICS_EXPORTER=none" in status.message
    as_json = live_server.post("/v1/metrics", data=b"{}", headers={"Content-Type": "application/json"})
    assert as_json.status_code == 404 and "not metrics" in as_json.json()["message"]
    assert as_json.json()["error"]["code"] == "signal_not_received"
