"""Acceptance: programs send OTLP/gRPC to the receiver (the official SDK exporters, or a raw stub where
the answer itself is under test) and the records are read back through the HTTP routes."""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from flask import Flask
from flask.testing import FlaskClient
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import MetricsServiceStub
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from service.app import close_app, create_app
from service.ingest import METRICS_NOT_RECEIVED
from service.otlp_grpc import OtlpGrpcServer
from service.settings import Settings
from service.state import ServiceState, state
from tests.conftest import BIN, free_port, start_server
from tests.helpers import make_record, wait_until

TOKEN = "grpc-ingest-token-7"


@dataclass
class Receiver:
    """A service with its gRPC receiver on a free loopback port; ``client`` reads through HTTP."""

    target: str
    client: FlaskClient
    service: ServiceState
    server: OtlpGrpcServer

    def logs(self, trace_id: int) -> list[dict[str, Any]]:
        found = self.client.get(f"/api/logs/correlation/{trace_id:032x}")
        return [] if found.status_code == 404 else found.json["logs"]  # type: ignore[index]


@contextlib.contextmanager
def _receiver(tmp_path: Path, **overrides: Any) -> Iterator[Receiver]:
    app: Flask = create_app(data_dir=tmp_path / "data", **overrides)
    service = state(app)
    assert service.settings.grpc_port == 0  # the conftest's: gRPC picks a free port, never 4317
    server = OtlpGrpcServer(service.settings)
    server.start(service)
    try:
        yield Receiver(server.address, app.test_client(), service, server)
    finally:
        server.close(1)
        close_app(app)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    with _receiver(tmp_path) as started:
        yield started


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Receiver]:
    with _receiver(tmp_path, ingest_token=TOKEN) as started:
        yield started


def _send_with_official_exporters(
    target: str, compression: grpc.Compression, **headers: str
) -> tuple[int, int]:
    """A client program: a trace with a child span and three log lines, sent over OTLP/gRPC."""
    resource = Resource.create({"service.name": "grpc-client", "pipeline.id": "grpc-shop"})
    options: dict[str, Any] = {"endpoint": target, "insecure": True, "compression": compression}
    if headers:
        options["headers"] = tuple(headers.items())
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(**options)))
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(**options)))
    logger = logging.getLogger(f"grpc.client.{compression.name}")
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=logger_provider)
    logger.addHandler(handler)
    tracer = tracer_provider.get_tracer("grpc.tracer", "2.0")
    try:
        with tracer.start_as_current_span("run", kind=SpanKind.CONSUMER) as root:
            logger.info("starting", extra={"rows": 10, "ratio": 0.5, "tags": ["a", "b"]})
            with tracer.start_as_current_span("load") as child:
                child.set_status(Status(StatusCode.ERROR, "boom"))
                logger.error(
                    "connect postgresql://app:hunter2@db/shop failed", extra={"otel.event.name": "x"}
                )
            logger.warning("done with ünïcode ✓")
    finally:
        logger.removeHandler(handler)
        logger_provider.shutdown()
        tracer_provider.shutdown()
    return root.get_span_context().trace_id, child.get_span_context().span_id


@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip])
def test_official_grpc_exporters_round_trip(receiver: Receiver, compression: grpc.Compression) -> None:
    trace_id, load_span = _send_with_official_exporters(receiver.target, compression)
    found = receiver.client.get(f"/api/logs/correlation/{trace_id:032x}").json
    assert found is not None
    starting, failed, done = found["logs"]
    assert starting["body"] == "starting" and done["body"] == "done with ünïcode ✓"
    attributes = starting["attributes"]
    assert (attributes["rows"], attributes["ratio"]) == ({"intValue": "10"}, {"doubleValue": 0.5})
    assert attributes["tags"] == {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}}
    assert (starting["severity_text"], starting["severity_number"]) == ("INFO", 9)
    assert starting["service_name"] == "grpc-client" and starting["pipeline_id"] == "grpc-shop"
    assert starting["scope"]["name"] == f"grpc.client.{compression.name}"
    assert failed["span_id"] == f"{load_span:016x}" and failed["event_name"] == "x"
    assert "hunter2" not in failed["body"]  # the same redaction as every other way in
    assert done["severity_text"] == "WARN"
    spans = {span["name"]: span for span in found["spans"]}
    assert spans["load"]["parent_span_id"] == spans["run"]["span_id"]
    assert spans["load"]["status"] == {"code": "ERROR", "message": "boom"}
    assert spans["run"]["kind"] == "CONSUMER"
    assert (spans["run"]["scope"]["name"], spans["run"]["scope"]["version"]) == ("grpc.tracer", "2.0")


def _rpc_error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def _status_details(error: grpc.RpcError) -> RpcStatus:
    trailers = dict(error.trailing_metadata())
    return RpcStatus.FromString(trailers["grpc-status-details-bin"])


def test_one_bad_record_is_a_partial_success_and_the_rest_is_stored(receiver: Receiver) -> None:
    request = encode_logs(
        [make_record("good", trace_id=0x6A1, span_id=1), make_record("bad", trace_id=0x6A1)]
    )
    request.resource_logs[0].scope_logs[0].log_records[1].trace_id = b"\x01\x02\x03"  # 3 bytes, not 16
    with grpc.insecure_channel(receiver.target) as channel:
        answer = LogsServiceStub(channel).Export(request, timeout=10)
        assert answer.partial_success.rejected_log_records == 1
        assert "trace_id must be 16 bytes, got 3" in answer.partial_success.error_message
        spans = encode_spans([])  # an empty request is a success with nothing to report
        assert not TraceServiceStub(channel).Export(spans, timeout=10).HasField("partial_success")
    assert [log["body"] for log in receiver.logs(0x6A1)] == ["good"]


def test_a_request_with_no_usable_record_is_invalid_argument(receiver: Receiver) -> None:
    request = encode_logs([make_record("bad", trace_id=0xBAD)])
    request.resource_logs[0].scope_logs[0].log_records[0].span_id = b"\x01"
    with grpc.insecure_channel(receiver.target) as channel:
        error = _rpc_error(lambda: LogsServiceStub(channel).Export(request, timeout=10))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "span_id must be 8 bytes" in error.details()
    assert _status_details(error).code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert receiver.logs(0xBAD) == []


def test_a_message_that_is_not_otlp_is_invalid_argument_naming_the_problem(receiver: Receiver) -> None:
    with grpc.insecure_channel(receiver.target) as channel:
        raw = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        error = _rpc_error(lambda: raw(b"\xff\xff\xff\xff", timeout=10))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid ExportTraceServiceRequest protobuf" in error.details()


def test_without_the_ingest_token_nothing_is_stored(guarded: Receiver) -> None:
    request = encode_logs([make_record("guarded", trace_id=0x70C)])
    with grpc.insecure_channel(guarded.target) as channel:
        stub = LogsServiceStub(channel)
        missing = _rpc_error(lambda: stub.Export(request, timeout=10))
        wrong = _rpc_error(
            lambda: stub.Export(request, metadata=[("authorization", "Bearer nope")], timeout=10)
        )
        assert (missing.code(), wrong.code()) == (grpc.StatusCode.UNAUTHENTICATED,) * 2
        assert "token is missing" in missing.details() and "token is not valid" in wrong.details()
        assert guarded.logs(0x70C) == []
        stub.Export(request, metadata=[("authorization", f"Bearer {TOKEN}")], timeout=10)
    assert [log["body"] for log in guarded.logs(0x70C)] == ["guarded"]

    # The official exporter without the token: a final refusal, not a retry (the first waits ~1 s).
    exporter = OTLPLogExporter(endpoint=guarded.target, insecure=True)
    started = time.monotonic()
    try:
        assert exporter.export([make_record("no token", trace_id=0x70D)]) is LogRecordExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert time.monotonic() - started < 0.75
    assert guarded.logs(0x70D) == []


def test_metrics_are_unimplemented_with_the_same_reason_as_http(receiver: Receiver) -> None:
    with grpc.insecure_channel(receiver.target) as channel:
        error = _rpc_error(
            lambda: MetricsServiceStub(channel).Export(ExportMetricsServiceRequest(), timeout=10)
        )
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED and error.details() == METRICS_NOT_RECEIVED
    http = receiver.client.post("/v1/metrics", data=b"{}", headers={"Content-Type": "application/json"})
    assert http.json is not None and http.json["message"] == METRICS_NOT_RECEIVED

    # The official exporter takes it as final: no retry (the first would wait ~1 s).
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("client").create_counter("rows").add(3)
    metrics = reader.get_metrics_data()
    provider.shutdown()
    assert metrics is not None
    exporter = OTLPMetricExporter(endpoint=receiver.target, insecure=True)
    started = time.monotonic()
    try:
        assert exporter.export(metrics) is MetricExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert time.monotonic() - started < 0.75


def test_saturated_ingest_is_resource_exhausted_with_retry_info(tmp_path: Path) -> None:
    with _receiver(tmp_path, ingest_wait_seconds=0) as receiver:
        slots = receiver.service.settings.ingest_concurrency
        for _ in range(slots):  # every slot busy, as when that many requests are being stored
            assert receiver.service.ingest_slots.acquire(blocking=False)
        request = encode_logs([make_record("waits its turn", trace_id=0x5A7)])
        with grpc.insecure_channel(receiver.target) as channel:
            error = _rpc_error(lambda: LogsServiceStub(channel).Export(request, timeout=10))
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        (detail,) = _status_details(error).details
        retry = RetryInfo()
        assert detail.Unpack(retry) and 1 <= retry.retry_delay.seconds <= 3
        assert f"retry in {retry.retry_delay.seconds} s" in error.details()
        assert receiver.logs(0x5A7) == []

        # The official exporter waits as told and gets in once a slot is free.
        exporter = OTLPLogExporter(endpoint=receiver.target, insecure=True, timeout=30)
        threading.Timer(0.5, lambda: [receiver.service.ingest_slots.release() for _ in range(slots)]).start()
        try:
            assert (
                exporter.export([make_record("waits its turn", trace_id=0x5A7)])
                is LogRecordExportResult.SUCCESS
            )
        finally:
            exporter.shutdown()
        assert [log["body"] for log in receiver.logs(0x5A7)] == ["waits its turn"]


def test_a_store_that_cannot_write_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_FALLBACK_STORAGE", "false")  # no spool to fall back on: the store must take it
    with _receiver(tmp_path) as receiver:
        receiver.service.store.close()
        with grpc.insecure_channel(receiver.target) as channel:
            request = encode_logs([make_record("not now", trace_id=0x503)])
            error = _rpc_error(lambda: LogsServiceStub(channel).Export(request, timeout=30))
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        (detail,) = _status_details(error).details
        retry = RetryInfo()
        assert detail.Unpack(retry) and retry.retry_delay.seconds == 5


def test_the_size_limit_applies_to_decompressed_messages(tmp_path: Path) -> None:
    with _receiver(tmp_path, max_request_bytes=64 * 1024) as receiver:
        big = encode_logs([make_record("x" * 70_000, trace_id=0xB16)])
        small = encode_logs([make_record("fits", trace_id=0xB16)])
        with grpc.insecure_channel(receiver.target) as channel:
            stub = LogsServiceStub(channel)
            for compression in (grpc.Compression.NoCompression, grpc.Compression.Gzip):
                error = _rpc_error(lambda c=compression: stub.Export(big, compression=c, timeout=10))
                assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "larger than max" in error.details()
            stub.Export(small, compression=grpc.Compression.Gzip, timeout=10)
        assert [log["body"] for log in receiver.logs(0xB16)] == ["fits"]


def test_grpc_settings_and_their_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPETRACE_GRPC_PORT")
    assert Settings().grpc_port == 4317  # the standard OTLP/gRPC port, where SDK defaults send
    monkeypatch.setenv("PIPETRACE_GRPC_PORT", "14317")
    assert Settings().grpc_port == 14317
    with pytest.raises(ValueError, match="grpc_port and port are both 5000"):
        Settings(port=5000, grpc_port=5000)


def test_serve_receives_grpc_beside_http_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    server = start_server(
        tmp_path / "live", env={"PIPETRACE_GRPC_PORT": str(port), "PIPETRACE_INGEST_TOKEN": TOKEN}
    )
    try:
        target = f"127.0.0.1:{port}"
        assert server.get("/readyz").json()["otlp_grpc"] == target
        assert f"pipetrace receiving OTLP/gRPC on {target}" in server.log_path.read_text()
        trace_id, _ = _send_with_official_exporters(
            target, grpc.Compression.Gzip, authorization=f"Bearer {TOKEN}"
        )
        found = server.get(f"/api/logs/correlation/{trace_id:032x}").json()
        assert [log["body"] for log in found["logs"]] == [
            "starting",
            found["logs"][1]["body"],
            "done with ünïcode ✓",
        ]
        assert {span["name"] for span in found["spans"]} == {"run", "load"}
    finally:
        assert server.stop() == 0
    assert "pipetrace stopped; telemetry flushed" in server.log_path.read_text()
    with socket.socket() as probe:  # the gRPC port was let go
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_serve_says_plainly_when_the_grpc_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                str(BIN / "pipetrace"),
                "serve",
                "--port",
                "0",
                "--grpc-port",
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
    assert result.stderr == f"Error: cannot listen on 127.0.0.1:{port} (OTLP/gRPC): Address already in use\n"
    assert result.stdout == ""  # nothing said it was listening or ready
    assert not (tmp_path / "telemetry.duckdb").exists()  # refused before opening the store


def test_closing_the_receiver_lets_the_call_in_flight_finish(tmp_path: Path) -> None:
    """What ``serve`` does on SIGTERM before it flushes: new calls are refused, the one being stored is
    answered and kept."""
    with _receiver(tmp_path, ingest_wait_seconds=10) as receiver:
        slots = receiver.service.settings.ingest_concurrency
        for _ in range(slots):  # the call will wait for the store inside the handler
            assert receiver.service.ingest_slots.acquire(blocking=False)
        request = encode_logs([make_record(f"in flight {i}", trace_id=0xF11) for i in range(100)])
        with grpc.insecure_channel(receiver.target) as channel:
            call = LogsServiceStub(channel).Export.future(request, timeout=30)
            # A handler thread appears when the call reaches the server (none exist before).
            assert wait_until(lambda: any(t.name.startswith("otlp-grpc") for t in threading.enumerate()))
            closing = threading.Thread(target=receiver.server.close, args=(10,))
            closing.start()
            time.sleep(0.3)
            late = _rpc_error(lambda: LogsServiceStub(channel).Export(request, timeout=5))
            assert late.code() is grpc.StatusCode.UNAVAILABLE  # the stopping server takes no new calls
            for _ in range(slots):
                receiver.service.ingest_slots.release()
            assert not call.result().HasField("partial_success")
            closing.join(10)
            assert not closing.is_alive()
        assert len(receiver.logs(0xF11)) == 100
