"""The official OpenTelemetry JS SDK (from npm) through its OTLP/HTTP exporters, protobuf and JSON."""

from __future__ import annotations

import secrets
import subprocess
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conformance.capture import Captured, CapturingProxy
from tests.conformance.conftest import JS_DIR
from tests.conformance.expect import assert_same, decode, expected_log, expected_span, log_records, spans
from tests.conftest import LiveServer

# The exporter (protobuf or JSON), and whether it gzips its requests.
TRANSPORTS = ["proto", "json", "proto+gzip", "json+gzip"]
CONTENT_TYPES = {"proto": "application/x-protobuf", "json": "application/json"}


def _run(node: str, transport: str, proxy: CapturingProxy, scenario: str, trace_id: str) -> None:
    ran = subprocess.run(
        [node, str(JS_DIR / "emit.mjs"), transport, proxy.url, scenario, trace_id],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, f"emit.mjs {scenario} failed:\n{ran.stdout}\n{ran.stderr}"


def _captured(proxy: CapturingProxy, path: str, transport: str) -> list[Captured]:
    """The requests the exporter sent, checked to be in the encoding asked for and all accepted."""
    captured = proxy.take(path)
    assert captured and all(c.status == 200 for c in captured), [c.status for c in captured]
    protocol, _, compression = transport.partition("+")
    assert {c.headers["content-type"] for c in captured} == {CONTENT_TYPES[protocol]}
    assert {c.headers.get("content-encoding") for c in captured} == {compression or None}
    return captured


def _sent_logs(proxy: CapturingProxy, transport: str) -> list[dict[str, Any]]:
    requests = [decode(c, ExportLogsServiceRequest) for c in _captured(proxy, "/v1/logs", transport)]
    return [expected_log(record) for record in log_records(requests)]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_typed_bodies_and_attributes_come_back_as_sent(
    node: str, proxy: CapturingProxy, server: LiveServer, transport: str
) -> None:
    trace_id = secrets.token_hex(16)
    _run(node, transport, proxy, "typed", trace_id)
    sent = _sent_logs(proxy, transport)
    assert len(sent) == 8
    answer = server.get(f"/api/logs/correlation/{trace_id}")
    assert answer.status_code == 200, answer.text
    assert_same(sent, answer.json()["logs"], "log")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_five_identical_emits_are_five_rows(
    node: str, proxy: CapturingProxy, server: LiveServer, transport: str
) -> None:
    trace_id = secrets.token_hex(16)
    _run(node, transport, proxy, "identical", trace_id)
    sent = _sent_logs(proxy, transport)
    assert len(sent) == 5 and all(record == sent[0] for record in sent)  # identical on the wire
    returned = server.get(f"/api/logs/correlation/{trace_id}").json()["logs"]
    assert len({record["id"] for record in returned}) == 5
    assert_same(sent, returned, "log")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_spans_come_back_as_sent(
    node: str, proxy: CapturingProxy, server: LiveServer, transport: str
) -> None:
    trace_id = secrets.token_hex(16)
    _run(node, transport, proxy, "spans", trace_id)
    captured = _captured(proxy, "/v1/traces", transport)
    sent = [expected_span(span) for span in spans([decode(c, ExportTraceServiceRequest) for c in captured])]
    assert len(sent) == 2
    answer = server.get(f"/api/logs/correlation/{trace_id}")
    assert answer.status_code == 200, answer.text
    assert_same(sent, answer.json()["spans"], "span")
