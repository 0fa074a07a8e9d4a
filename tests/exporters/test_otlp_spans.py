"""Received spans keep every OTLP field, through redaction, the spool and back out to OTLP."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext

from exporters.otlp_codec import Limits, decode_spans
from exporters.otlp_spans import ReceivedSpan, encode_spans
from exporters.records import span_table
from exporters.span_exporter import decode_span_batch, encode_span_batch
from instrumentation.redaction import MASK, Redactor
from instrumentation.telemetry import ForwardingBatchSpanProcessor
from tests.span_requests import hand_built_request, sdk_request, sdk_spans, spans_in, without_empty_status


def _received(request: ExportTraceServiceRequest, limits: Limits | None = None) -> list[ReceivedSpan]:
    decoded = decode_spans(request, limits) if limits else decode_spans(request)
    assert decoded.rejected == 0, decoded.error
    assert all(isinstance(span, ReceivedSpan) for span in decoded.records)
    return list(decoded.records)


def test_a_received_request_is_encoded_again_exactly_as_it_came() -> None:
    for request in (hand_built_request(), sdk_request(sdk_spans())):
        assert without_empty_status(encode_spans(_received(request))) == without_empty_status(request)


def test_an_event_without_a_time_keeps_none_instead_of_the_time_of_receipt() -> None:
    span = _received(hand_built_request())[0]
    assert [event.timestamp for event in span.events] == [0, 1_790_000_000_500_000_000]
    (row,) = [r for r in span_table([span]).to_pylist() if r["span_id"] == "00000000000000a1"]
    assert '"timestamp":null' in row["events"]


def test_what_a_local_limit_removes_is_added_to_the_dropped_counts() -> None:
    request = hand_built_request()
    (_, _, full), _ = list(spans_in(request))
    full.events.add(name="third")
    full.links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    span = _received(request, Limits(max_attributes=1))[0]
    assert (span.otlp.dropped_attributes_count, span.dropped_attributes) == (4 + 3, 4 + 3)
    assert span.otlp.dropped_events_count == 5 + 2  # three events, one kept
    assert span.otlp.dropped_links_count == 6 + 1
    assert span.otlp.event_dropped_attributes_counts == (1,)  # its one attribute fits
    (forwarded,) = [s for _, _, s in spans_in(encode_spans([span])) if s.span_id == full.span_id]
    assert (forwarded.dropped_attributes_count, len(forwarded.attributes)) == (7, 1)
    assert (forwarded.dropped_events_count, len(forwarded.events)) == (7, 1)


def test_redaction_keeps_the_fields_the_sdk_span_cannot_hold() -> None:
    request = hand_built_request()
    (_, _, full), _ = list(spans_in(request))
    full.attributes.add(key="db.password", value={"string_value": "hunter2"})
    span = _received(request)[0]
    redacted = Redactor().span(span)
    assert redacted is not span and isinstance(redacted, ReceivedSpan)
    assert redacted.otlp is span.otlp
    assert redacted.attributes is not None and redacted.attributes["db.password"] == MASK
    (out,) = [s for _, _, s in spans_in(encode_spans([redacted])) if s.span_id == full.span_id]
    assert (out.flags, out.trace_state, out.links[0].trace_state, out.links[0].flags) == (
        0x101,
        "vendor=abc,other=1",
        "link=state",
        0x301,
    )
    assert out.events[0].time_unix_nano == 0


def test_the_spool_keeps_a_received_span_whole() -> None:
    request = hand_built_request()
    replayed = decode_span_batch(encode_span_batch(_received(request)))
    assert without_empty_status(encode_spans(replayed)) == without_empty_status(request)


def test_the_service_own_spans_are_encoded_as_the_sdk_encodes_them() -> None:
    spans = sdk_spans()
    assert encode_spans(spans) == sdk_encode_spans(spans)
    # Resources and scopes equal in value but built apart share one entry, as in the SDK's encoding.
    two = [
        ReadableSpan(
            f"span {i}",
            SpanContext(0xA, i + 1, False),
            resource=Resource({"service.name": "own"}),
            instrumentation_scope=InstrumentationScope("twice", "1.0"),
        )
        for i in range(2)
    ]
    assert encode_spans(two) == sdk_encode_spans(two)
    assert [len(rs.scope_spans) for rs in encode_spans(two).resource_spans] == [1]
    flags = {row["name"]: row["flags"] for row in span_table(spans).to_pylist()}
    assert flags == {"sdk root": 0x100, "sdk child": 0x100, "sdk remote child": 0x300}


def test_spans_of_two_requests_with_equal_resources_are_not_merged() -> None:
    first, second = _received(hand_built_request()), _received(hand_built_request())
    request = encode_spans([*first, *second])
    assert len(request.resource_spans) == 2
    assert [rs.resource.dropped_attributes_count for rs in request.resource_spans] == [7, 7]


class _Kept(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def test_a_forwarder_queues_a_received_span_whatever_its_sampled_bit() -> None:
    """The SDK's batch processor drops a span without the sampled bit in on_end; forward does not."""
    kept = _Kept()
    processor = ForwardingBatchSpanProcessor(kept, schedule_delay_millis=10)
    unsampled = [s for s in _received(sdk_request(sdk_spans())) if s.context is not None]
    assert all(not span.context.trace_flags.sampled for span in unsampled if span.context)
    processor.on_end(unsampled[0])  # the SDK's own path, for the service's own spans
    processor.force_flush()
    assert kept.spans == []
    for span in unsampled:
        processor.forward(span)
    processor.shutdown()
    assert kept.spans == unsampled
