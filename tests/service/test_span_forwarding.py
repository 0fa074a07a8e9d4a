"""Forwarded spans arrive as they were sent: every span (sampled bit or not), with its flags, trace
states, link details, dropped counts, schema URLs and scope attributes, over OTLP/HTTP and OTLP/gRPC.

The receiving end is real (a loopback HTTP server keeping the raw bodies, a grpcio server keeping the
requests); what it got is decoded with the official proto messages and compared with what was sent,
decoded from the bytes sent, field by field.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.conftest import LiveServer, start_server
from tests.helpers import wait_until
from tests.otlp_sinks import grpc_sink, http_sink
from tests.span_requests import (
    EVENT_TIME,
    hand_built_request,
    sdk_request,
    sdk_spans,
    spans_in,
    without_empty_status,
)

REPOSITORY = Path(__file__).resolve().parents[2]
PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def http_receiver() -> Iterator[tuple[str, list[bytes]]]:
    with http_sink() as sink:
        yield sink.url, sink.bodies["/v1/traces"]


@pytest.fixture
def grpc_receiver() -> Iterator[tuple[str, list[bytes]]]:
    with grpc_sink() as sink:
        yield sink.url, sink.bodies["/v1/traces"]


# Shaped as the specification's example request (opentelemetry-proto examples/trace.json): OTLP/JSON,
# upper-case hex ids, scope attributes, and no flags field at all.
SPEC_SHAPED_JSON = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json.service"}}]},
            "scopeSpans": [
                {
                    "scope": {
                        "name": "json.library",
                        "version": "3.1.0",
                        "attributes": [{"key": "json.scope.attribute", "value": {"stringValue": "on scope"}}],
                    },
                    "spans": [
                        {
                            "traceId": "7C8EFFF798038103D269B633813FC60C",
                            "spanId": "AAE19B7EC3C1B174",
                            "parentSpanId": "AAE19B7EC3C1B173",
                            "name": "a JSON server span",
                            "startTimeUnixNano": "1790000000000000000",
                            "endTimeUnixNano": "1790000001000000000",
                            "kind": 2,
                            "attributes": [{"key": "json.attr", "value": {"stringValue": "some value"}}],
                        }
                    ],
                }
            ],
        }
    ]
}


def _from_otlp_json(document: dict[str, Any]) -> ExportTraceServiceRequest:
    """The request a JSON body holds, decoded here (OTLP/JSON ids are hex, protobuf's JSON base64)."""

    def ids_to_base64(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: base64.b64encode(bytes.fromhex(value)).decode()
                if key in ("traceId", "spanId", "parentSpanId")
                else ids_to_base64(value)
                for key, value in node.items()
            }
        return [ids_to_base64(item) for item in node] if isinstance(node, list) else node

    return json_format.ParseDict(ids_to_base64(document), ExportTraceServiceRequest())


def _send_unsampled(service: LiveServer) -> list[ExportTraceServiceRequest]:
    """The official SDK exporter's spans (flags 0x100 / 0x300) and a spec-shaped JSON request (no
    flags), into the service; what was sent, decoded from the bytes sent."""
    spans = sdk_spans()
    exporter = OTLPSpanExporter(endpoint=f"{service.url}/v1/traces")
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    body = json.dumps(SPEC_SHAPED_JSON).encode()
    assert service.post("/v1/traces", data=body, headers={"Content-Type": "application/json"}).ok
    # The SDK exporter sends its own encoder's request.
    sdk_bytes = sdk_request(spans).SerializeToString()
    return [ExportTraceServiceRequest.FromString(sdk_bytes), _from_otlp_json(json.loads(body))]


def _send_hand_built(service: LiveServer) -> ExportTraceServiceRequest:
    body = hand_built_request().SerializeToString()
    assert service.post("/v1/traces", data=body, headers=PROTOBUF).ok
    return ExportTraceServiceRequest.FromString(body)


def _assert_forwarded_as_sent(
    sent: list[ExportTraceServiceRequest], received: list[ExportTraceServiceRequest]
) -> None:
    forwarded = {
        (found[2].trace_id, found[2].span_id): found
        for request in received
        for found in spans_in(without_empty_status(request))
    }
    expected = [found for request in sent for found in spans_in(without_empty_status(request))]
    assert {(span.trace_id, span.span_id) for _, _, span in expected} <= set(forwarded)
    for resource_spans, scope_spans, span in expected:
        got_resource_spans, got_scope_spans, got = forwarded[(span.trace_id, span.span_id)]
        assert (got.name, got.flags, got.trace_state) == (span.name, span.flags, span.trace_state)
        assert [(link.trace_state, link.flags) for link in got.links] == [
            (link.trace_state, link.flags) for link in span.links
        ]
        assert [e.time_unix_nano for e in got.events] == [e.time_unix_nano for e in span.events]
        assert got == span  # and every other field: ids, kind, times, attributes, dropped counts, status
        assert got_resource_spans.resource == resource_spans.resource  # with its dropped count
        assert got_resource_spans.schema_url == resource_spans.schema_url
        assert got_scope_spans.scope == scope_spans.scope  # name, version, attributes, dropped count
        assert got_scope_spans.schema_url == scope_spans.schema_url


def _arrived(span: Span, received: list[ExportTraceServiceRequest]) -> bool:
    return any(got.span_id == span.span_id for request in received for _, _, got in spans_in(request))


def _all_arrived(sent: list[ExportTraceServiceRequest], received: list[ExportTraceServiceRequest]) -> bool:
    ids = {(span.trace_id, span.span_id) for request in list(received) for _, _, span in spans_in(request)}
    return all((span.trace_id, span.span_id) in ids for request in sent for _, _, span in spans_in(request))


def _http_service(tmp_path: Path, endpoint: str) -> LiveServer:
    return start_server(tmp_path / "service", env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})


def _requests(bodies: list[bytes]) -> list[ExportTraceServiceRequest]:
    return [ExportTraceServiceRequest.FromString(body) for body in list(bodies)]


def test_every_received_span_is_forwarded_whatever_its_sampled_bit(
    tmp_path: Path, http_receiver: tuple[str, list[bytes]]
) -> None:
    endpoint, bodies = http_receiver
    service = _http_service(tmp_path, endpoint)
    try:
        sent = _send_unsampled(service)
        assert {span.flags for request in sent for _, _, span in spans_in(request)} == {0x100, 0x300, 0}
        assert wait_until(lambda: _all_arrived(sent, _requests(bodies)), timeout=30)
        _assert_forwarded_as_sent(sent, _requests(bodies))
        counters = service.get("/readyz").json()["ingest"]["forward"]["otlp_http-traces"]
        assert counters["exported"] >= 4 and counters["failed"] == counters["dropped"] == 0
    finally:
        service.stop()


def test_a_forwarded_span_keeps_its_flags_trace_states_links_dropped_counts_and_unknown_times(
    tmp_path: Path, http_receiver: tuple[str, list[bytes]]
) -> None:
    endpoint, bodies = http_receiver
    service = _http_service(tmp_path, endpoint)
    try:
        sent = _send_hand_built(service)
        (_, _, sampled), _ = spans_in(sent)
        assert sampled.flags == 0x101
        # The span with the sampled bit first: whether its fields survive, apart from whether it arrives.
        assert wait_until(lambda: _arrived(sampled, _requests(bodies)), timeout=30)
        everything = [span for request in _requests(bodies) for _, _, span in spans_in(request)]
        (forwarded,) = [span for span in everything if span.span_id == sampled.span_id]
        assert (forwarded.flags, forwarded.trace_state) == (0x101, "vendor=abc,other=1")
        assert [(link.trace_state, link.flags) for link in forwarded.links] == [("link=state", 0x301)]
        assert [event.time_unix_nano for event in forwarded.events] == [0, EVENT_TIME]
        assert forwarded.dropped_attributes_count == 4
        assert (forwarded.dropped_events_count, forwarded.dropped_links_count) == (5, 6)
        assert wait_until(lambda: _all_arrived([sent], _requests(bodies)), timeout=30)
        _assert_forwarded_as_sent([sent], _requests(bodies))
    finally:
        service.stop()


def test_received_spans_are_forwarded_over_otlp_grpc_as_they_were_sent(
    tmp_path: Path, grpc_receiver: tuple[str, list[bytes]]
) -> None:
    endpoint, bodies = grpc_receiver
    config = tmp_path / "grpc-config.yaml"
    config.write_text((REPOSITORY / "otel-config.yaml").read_text().replace("otlp_http:", "otlp_grpc:"))
    service = start_server(
        tmp_path / "service", env={"OTEL_CONFIG_FILE": str(config), "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    )
    try:
        sent = [*_send_unsampled(service), _send_hand_built(service)]
        assert wait_until(lambda: _all_arrived(sent, _requests(bodies)), timeout=30), (
            service.log_path.read_text()
        )
        _assert_forwarded_as_sent(sent, _requests(bodies))
    finally:
        service.stop()
