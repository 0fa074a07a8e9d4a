"""Acceptance: standard configuration, and export to external collectors over OTLP/HTTP and OTLP/gRPC."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.conftest import LiveServer, free_port, start_server
from tests.helpers import make_record, wait_until

REPOSITORY = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TRACE = "1f2e3d4c5b6a79881f2e3d4c5b6a7988"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"
CLIENT_TRACE = 0xC0FFEE00C0FFEE00C0FFEE00C0FFEE00


def send_client_logs(server: LiveServer, count: int = 5, pipeline: str = "forwarded") -> None:
    """A program sends its own logs to the service: they must go on, resource and trace id intact."""
    records = [
        make_record(
            f"client line {i}", trace_id=CLIENT_TRACE, span_id=7, attributes={"pipeline.id": pipeline}
        )
        for i in range(count)
    ]
    response = server.post(
        "/v1/logs",
        data=encode_logs(records).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.ok, response.text


def traced_request(server: LiveServer) -> None:
    response = server.get("/api/logs/stats", headers={"traceparent": TRACEPARENT})
    assert response.headers["X-Correlation-ID"] == TRACE


def trace_logs(server: LiveServer, trace_id: str) -> list[dict[str, Any]]:
    response = server.get(f"/api/logs/correlation/{trace_id}")
    return response.json()["logs"] if response.status_code == 200 else []


def trace_spans(server: LiveServer, trace_id: str) -> list[dict[str, Any]]:
    response = server.get(f"/api/logs/correlation/{trace_id}")
    return response.json()["spans"] if response.status_code == 200 else []


def test_forwarding_over_otlp_http_to_another_pipetrace(tmp_path: Path) -> None:
    collector = start_server(tmp_path / "collector")
    service = start_server(tmp_path / "service", env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url})
    try:
        traced_request(service)
        send_client_logs(service)
        client_trace = format(CLIENT_TRACE, "032x")
        # The service's own request log and span, and the client's records, arrive at the collector.
        assert wait_until(lambda: trace_logs(collector, TRACE) and trace_spans(collector, TRACE), timeout=30)
        assert wait_until(lambda: len(trace_logs(collector, client_trace)) == 5, timeout=30)
        assert [log["body"] for log in trace_logs(collector, TRACE)] == [
            log["body"] for log in trace_logs(service, TRACE)
        ]
        forwarded = trace_logs(collector, client_trace)
        assert {log["service_name"] for log in forwarded} == {"test-client"}  # the original resource
        assert {log["pipeline_id"] for log in forwarded} == {"forwarded"}
        assert trace_spans(collector, TRACE)[0]["name"] == "GET /api/logs/stats"
        assert trace_spans(collector, TRACE)[0]["service_name"] == "pipetrace"
    finally:
        service.stop()
        collector.stop()


class _Collector(  # type: ignore[misc]
    logs_service_pb2_grpc.LogsServiceServicer,
    trace_service_pb2_grpc.TraceServiceServicer,
    metrics_service_pb2_grpc.MetricsServiceServicer,
):
    """An OTLP/gRPC receiver built on the official OTLP service definitions; it keeps what it gets."""

    def __init__(self) -> None:
        self.logs: list[Any] = []
        self.spans: list[Any] = []
        self.metrics: list[str] = []
        self.lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:
        with self.lock:
            if isinstance(request, logs_service_pb2.ExportLogsServiceRequest):
                for resource_logs in request.resource_logs:
                    for scope_logs in resource_logs.scope_logs:
                        self.logs.extend((resource_logs.resource, r) for r in scope_logs.log_records)
                return logs_service_pb2.ExportLogsServiceResponse()
            if isinstance(request, metrics_service_pb2.ExportMetricsServiceRequest):
                for resource_metrics in request.resource_metrics:
                    for scope_metrics in resource_metrics.scope_metrics:
                        self.metrics.extend(metric.name for metric in scope_metrics.metrics)
                return metrics_service_pb2.ExportMetricsServiceResponse()
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(scope_spans.spans)
            return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def grpc_collector() -> Iterator[tuple[str, _Collector]]:
    import grpc

    collector = _Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(collector, server)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", collector
    server.stop(grace=None)


def test_forwarding_over_otlp_grpc(tmp_path: Path, grpc_collector: tuple[str, _Collector]) -> None:
    endpoint, collector = grpc_collector
    config = tmp_path / "grpc-config.yaml"
    config.write_text((REPOSITORY / "otel-config.yaml").read_text().replace("otlp_http:", "otlp_grpc:"))
    service = start_server(
        tmp_path / "service",
        env={
            "OTEL_CONFIG_FILE": str(config),
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
        },
    )
    try:
        traced_request(service)
        send_client_logs(service)
        trace_bytes = bytes.fromhex(TRACE)
        assert wait_until(lambda: any(s.trace_id == trace_bytes for s in collector.spans), timeout=30)
        assert wait_until(
            lambda: sum(r.trace_id == CLIENT_TRACE.to_bytes(16, "big") for _, r in collector.logs) == 5,
            timeout=30,
        )
        services = {
            kv.value.string_value
            for resource, record in collector.logs
            if record.trace_id == CLIENT_TRACE.to_bytes(16, "big")
            for kv in resource.attributes
            if kv.key == "service.name"
        }
        assert services == {"test-client"}
        assert any(r.trace_id == trace_bytes for _, r in collector.logs)  # the service's own request log
        # The service's own metrics: its ingest counters, breaker and spool.
        assert wait_until(lambda: "pipetrace.ingest.records" in collector.metrics, timeout=30)
        assert "pipetrace.ingest.breaker.state" in collector.metrics
    finally:
        service.stop()


def test_a_collector_that_is_down_for_a_while_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    port = free_port()
    collector_url = f"http://127.0.0.1:{port}"
    service = start_server(
        tmp_path / "service",
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector_url,
            "CIRCUIT_BREAKER_THRESHOLD": "1",
            "CIRCUIT_BREAKER_TIMEOUT": "0.5",
            "PIPETRACE_REPLAY_INTERVAL": "0.2",
        },
    )
    try:
        for batch in range(4):
            send_client_logs(service, count=5, pipeline=f"outage-{batch}")

        def forwarded(counter: str) -> int:
            return int(service.get("/readyz").json()["ingest"]["forward"]["otlp_http-logs"][counter])

        # The service answered every request at once, and spooled what it could not forward.
        assert wait_until(lambda: forwarded("spooled") > 0)
        collector = start_server(tmp_path / "collector", port=port)
        try:
            for batch in range(4, 6):
                send_client_logs(service, count=5, pipeline=f"outage-{batch}")

            def arrived() -> int:
                return sum(
                    len(collector.get(f"/api/logs/pipeline/outage-{b}").json()["logs"]) for b in range(6)
                )

            assert wait_until(lambda: arrived() == 30, timeout=60), arrived()
            assert (
                sum(len(service.get(f"/api/logs/pipeline/outage-{b}").json()["logs"]) for b in range(6)) == 30
            )
            assert forwarded("replayed") > 0 and forwarded("dropped") == 0
        finally:
            collector.stop()
    finally:
        service.stop()


@pytest.mark.parametrize("route", ["otel-config.yaml", "env vars only", "opentelemetry-instrument"])
def test_the_same_behaviour_under_each_configuration_route(tmp_path: Path, route: str) -> None:
    if route == "otel-config.yaml":
        service = start_server(tmp_path / "svc", cwd=REPOSITORY)
    elif route == "env vars only":
        service = start_server(tmp_path / "svc", cwd=tmp_path, env={"OTEL_SERVICE_NAME": "pipetrace-env"})
    else:
        service = start_server(
            tmp_path / "svc",
            cwd=tmp_path,
            command=(str(BIN / "opentelemetry-instrument"),),
            env={
                "OTEL_TRACES_EXPORTER": "none",
                "OTEL_LOGS_EXPORTER": "none",
                "OTEL_METRICS_EXPORTER": "none",
            },
        )
    try:
        ready = service.get("/readyz").json()
        assert ready["status"] == "ready"
        traced_request(service)  # the trace id comes back in every route
        send_client_logs(service)
        assert wait_until(lambda: trace_logs(service, TRACE), timeout=15)
        (request_log,) = trace_logs(service, TRACE)
        assert request_log["body"].startswith("GET /api/logs/stats 200")
        assert len(trace_logs(service, format(CLIENT_TRACE, "032x"))) == 5
        if route == "env vars only":
            assert request_log["service_name"] == "pipetrace-env"
    finally:
        assert service.stop() == 0


BAD_CONFIGS = {
    "unsupported file_format": ('file_format: "0.9"\n', "file_format"),
    "unknown exporter": (
        'file_format: "1.0"\nlogger_provider:\n  processors:\n    - batch:\n'
        "        exporter:\n          kafka: {}\n",
        "unknown exporter 'kafka'",
    ),
    "malformed YAML": ('file_format: "1.0"\nlogger_provider: [oops\n', "invalid configuration"),
    "wrong property type": (
        'file_format: "1.0"\nlogger_provider:\n  processors:\n    - batch:\n        exporter:\n'
        "          duckdb:\n            max_retry_attempts: many\n",
        "max_retry_attempts",
    ),
    "wrong batch option type": (
        'file_format: "1.0"\nlogger_provider:\n  processors:\n    - batch:\n        schedule_delay: soon\n'
        "        exporter:\n          duckdb: {}\n",
        "schedule_delay",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_an_invalid_configuration_stops_start_up_and_fails_the_check(tmp_path: Path, case: str) -> None:
    text, expected = BAD_CONFIGS[case]
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    check = subprocess.run(
        [str(BIN / "pipetrace"), "config", "check", str(config)], capture_output=True, text=True, check=False
    )
    assert check.returncode != 0 and expected in check.stderr and str(config) in check.stderr
    serve = subprocess.run(
        [str(BIN / "pipetrace"), "serve", "--port", "0", "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "OTEL_CONFIG_FILE": str(config)},
    )
    assert serve.returncode != 0
    assert "invalid configuration" in serve.stderr and expected in serve.stderr


def test_config_check_describes_the_default_file() -> None:
    check = subprocess.run(
        [str(BIN / "pipetrace"), "config", "check", str(REPOSITORY / "otel-config.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert "logs: batch -> duckdb" in check.stdout
    assert "otlp_http (off: no endpoint" in check.stdout


def test_sdk_disabled_drops_the_service_own_telemetry_but_still_ingests(tmp_path: Path) -> None:
    service = start_server(tmp_path / "svc", cwd=tmp_path, env={"OTEL_SDK_DISABLED": "true"})
    try:
        traced_request(service)  # the trace id still comes back to the client
        send_client_logs(service)
        assert wait_until(lambda: len(trace_logs(service, format(CLIENT_TRACE, "032x"))) == 5)
        assert trace_logs(service, TRACE) == [] and trace_spans(service, TRACE) == []
    finally:
        service.stop()


class _HttpCollector(BaseHTTPRequestHandler):
    """A bare OTLP/HTTP receiver on the official proto messages; it notes the metric names it gets."""

    metrics: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/metrics":
            request = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
            for resource_metrics in request.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    self.metrics.extend(metric.name for metric in scope_metrics.metrics)
            answer = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
        elif self.path == "/v1/logs":
            answer = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
        else:
            answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_service_metrics_are_forwarded_over_otlp_http(tmp_path: Path) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _HttpCollector)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    service = start_server(
        tmp_path / "svc",
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
        },
    )
    try:
        assert wait_until(lambda: "pipetrace.ingest.records" in _HttpCollector.metrics, timeout=30)
        assert "pipetrace.ingest.spool.records" in _HttpCollector.metrics
    finally:
        service.stop()
        receiver.shutdown()
        receiver.server_close()
