"""Span requests as outside programs send them: hand-built protobuf with every field OTLP has, and the
official Python SDK's own spans (flags 0x100 / 0x300, never the sampled bit)."""

from __future__ import annotations

from collections.abc import Iterator

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

HAND_TRACE = bytes.fromhex("5ca1ab1e0000000000000000000000a1")
REMOTE_TRACE = 0x5DC0000000000000000000000000B3
EVENT_TIME = 1_790_000_000_500_000_000


def _kv(key: str, value: str | int | float | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def hand_built_request() -> ExportTraceServiceRequest:
    """Two spans with everything set that the SDK's span objects cannot hold: flags 0x101 (sampled,
    parent known to be local), trace states, a link with its own trace state and flags, every dropped
    count, an event at time 0; and a span with no flags and kind UNSPECIFIED, as the specification's
    own example request has."""
    full = Span(
        trace_id=HAND_TRACE,
        span_id=bytes.fromhex("00000000000000a1"),
        parent_span_id=bytes.fromhex("00000000000000a0"),
        trace_state="vendor=abc,other=1",
        flags=0x101,
        name="hand-built server span",
        kind=Span.SpanKind.SPAN_KIND_SERVER,
        start_time_unix_nano=1_790_000_000_000_000_000,
        end_time_unix_nano=1_790_000_001_000_000_000,
        attributes=[_kv("http.route", "/orders"), _kv("rows", 3), _kv("ratio", 0.5), _kv("ok", True)],
        dropped_attributes_count=4,
        events=[
            Span.Event(
                time_unix_nano=0, name="no time known", attributes=[_kv("n", 1)], dropped_attributes_count=1
            ),
            Span.Event(time_unix_nano=EVENT_TIME, name="timed"),
        ],
        dropped_events_count=5,
        links=[
            Span.Link(
                trace_id=bytes.fromhex("11111111111111111111111111111111"),
                span_id=bytes.fromhex("2222222222222222"),
                trace_state="link=state",
                flags=0x301,
                attributes=[_kv("link.kind", "follows")],
                dropped_attributes_count=2,
            )
        ],
        dropped_links_count=6,
        status={"code": 2, "message": "boom"},
    )
    bare = Span(
        trace_id=HAND_TRACE,
        span_id=bytes.fromhex("00000000000000a2"),
        parent_span_id=full.span_id,
        name="no flags at all",
        start_time_unix_nano=1_790_000_000_100_000_000,
        end_time_unix_nano=1_790_000_000_200_000_000,
    )
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={
                    "attributes": [_kv("service.name", "hand-built"), _kv("host.name", "h1")],
                    "dropped_attributes_count": 7,
                },
                schema_url="https://opentelemetry.io/schemas/1.21.0",
                scope_spans=[
                    ScopeSpans(
                        scope={
                            "name": "hand.scope",
                            "version": "2.0",
                            "attributes": [_kv("scope.attr", "x")],
                            "dropped_attributes_count": 8,
                        },
                        schema_url="https://opentelemetry.io/schemas/1.20.0",
                        spans=[full, bare],
                    )
                ],
            )
        ]
    )


def sdk_spans() -> list[ReadableSpan]:
    """Spans the official SDK made: a root and its child (flags 0x100), and a span whose parent came
    from another process (0x300). All are sampled; the SDK's encoder sends none of them as such."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-client"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.span_requests", "1.0")
    with tracer.start_as_current_span("sdk root") as root:
        root.set_attribute("rows", 10)
        with tracer.start_as_current_span("sdk child") as child:
            child.add_event("checkpoint", {"at": "half"})
    remote = SpanContext(REMOTE_TRACE, 0xAB, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    with tracer.start_as_current_span("sdk remote child", set_span_in_context(NonRecordingSpan(remote))):
        pass
    provider.shutdown()
    spans = list(exporter.get_finished_spans())
    assert len(spans) == 3
    return spans


def sdk_request(spans: list[ReadableSpan]) -> ExportTraceServiceRequest:
    """What the official exporter sends for ``spans``: its own encoder's request."""
    return encode_spans(spans)


def spans_in(request: ExportTraceServiceRequest) -> Iterator[tuple[ResourceSpans, ScopeSpans, Span]]:
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield resource_spans, scope_spans, span


def without_empty_status(request: ExportTraceServiceRequest) -> ExportTraceServiceRequest:
    """``request`` with each empty ``status`` cleared: the SDK's encoder always writes one, and an empty
    status message means what no status means (code UNSET, no message)."""
    copy = ExportTraceServiceRequest()
    copy.CopyFrom(request)
    for _, _, span in spans_in(copy):
        if span.HasField("status") and span.status == type(span.status)():
            span.ClearField("status")
    return copy
