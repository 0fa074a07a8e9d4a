"""The official OpenTelemetry JS SDK (from npm) through its OTLP/HTTP exporters, protobuf and JSON."""

from __future__ import annotations

import secrets
import subprocess

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conformance.capture import CapturingProxy
from tests.conformance.conftest import JS_DIR
from tests.conformance.expect import assert_same, decode, expected_log, expected_span, log_records, spans
from tests.conftest import LiveServer

PROTOCOLS = ["proto", "json"]


def _run(node: str, protocol: str, proxy: CapturingProxy, scenario: str, trace_id: str) -> None:
    ran = subprocess.run(
        [node, str(JS_DIR / "emit.mjs"), protocol, proxy.url, scenario, trace_id],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, f"emit.mjs {scenario} failed:\n{ran.stdout}\n{ran.stderr}"


def _sent_logs(proxy: CapturingProxy, content_type: str) -> list[ExportLogsServiceRequest]:
    captured = proxy.take("/v1/logs")
    assert captured and all(c.status == 200 for c in captured), [c.status for c in captured]
    assert {c.headers["content-type"] for c in captured} == {content_type}
    return [decode(c, ExportLogsServiceRequest) for c in captured]


CONTENT_TYPES = {"proto": "application/x-protobuf", "json": "application/json"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_typed_bodies_and_attributes_come_back_as_sent(
    node: str, proxy: CapturingProxy, server: LiveServer, protocol: str
) -> None:
    trace_id = secrets.token_hex(16)
    _run(node, protocol, proxy, "typed", trace_id)
    sent = [expected_log(record) for record in log_records(_sent_logs(proxy, CONTENT_TYPES[protocol]))]
    assert len(sent) == 7
    answer = server.get(f"/api/logs/correlation/{trace_id}")
    assert answer.status_code == 200, answer.text
    assert_same(sent, answer.json()["logs"], "log")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_five_identical_emits_are_five_rows(
    node: str, proxy: CapturingProxy, server: LiveServer, protocol: str
) -> None:
    trace_id = secrets.token_hex(16)
    _run(node, protocol, proxy, "identical", trace_id)
    sent = [expected_log(record) for record in log_records(_sent_logs(proxy, CONTENT_TYPES[protocol]))]
    assert len(sent) == 5 and all(record == sent[0] for record in sent)  # identical on the wire
    returned = server.get(f"/api/logs/correlation/{trace_id}").json()["logs"]
    assert len({record["id"] for record in returned}) == 5
    assert_same(sent, returned, "log")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_spans_come_back_as_sent(node: str, proxy: CapturingProxy, server: LiveServer, protocol: str) -> None:
    trace_id = secrets.token_hex(16)
    _run(node, protocol, proxy, "spans", trace_id)
    captured = proxy.take("/v1/traces")
    assert captured and all(c.status == 200 for c in captured), [c.status for c in captured]
    sent = [expected_span(span) for span in spans([decode(c, ExportTraceServiceRequest) for c in captured])]
    assert len(sent) == 2
    answer = server.get(f"/api/logs/correlation/{trace_id}")
    assert answer.status_code == 200, answer.text
    assert_same(sent, answer.json()["spans"], "span")
