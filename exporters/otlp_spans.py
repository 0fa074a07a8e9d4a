"""Received spans keep what OTLP said, and go out again as they came in.

The OTel SDK's ``ReadableSpan`` cannot hold every field of an OTLP span: it has 8-bit trace flags, not
the 32-bit ``Span.flags`` (whose bits 8-9 say whether the parent is remote); no trace state or flags
on a link; dropped counts only when its containers are the SDK's bounded ones; none for a resource or
a scope. So a decoded span is a :class:`ReceivedSpan`, a ``ReadableSpan`` that carries the rest in
:class:`OtlpSpanFields`, and :func:`encode_spans` is the SDK's encoder with those fields put back.
``trace.proto``: "if the message is logically forwarded from another source ... the field SHOULD be
copied as-is". The service's own spans are encoded exactly as the SDK encodes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext

# trace.proto's SpanFlags: bits 8 and 9 say whether the parent (or linked) span is known to be remote.
HAS_IS_REMOTE = 0x100
IS_REMOTE = 0x200


@dataclass(frozen=True)
class LinkFields:
    """What a received link said that the SDK's ``Link`` cannot hold."""

    trace_state: str = ""
    flags: int = 0
    dropped_attributes_count: int = 0


@dataclass(frozen=True)
class OtlpSpanFields:
    """What a received span said that the SDK's ``ReadableSpan`` cannot hold.

    Dropped counts are the sender's plus what Pipetrace's own limits removed on receipt. ``events``
    and ``links`` hold one entry per event and link the span kept, in order. ``trace_state`` is the
    header as received (the SDK's ``TraceState`` would drop a member it finds invalid), ``kind`` the
    number (the SDK has no UNSPECIFIED). An event's time 0 ("unknown") stays 0 in its ``Event``.
    """

    flags: int = 0
    trace_state: str = ""
    kind: int = 0
    dropped_attributes_count: int = 0
    dropped_events_count: int = 0
    dropped_links_count: int = 0
    event_dropped_attributes_counts: tuple[int, ...] = ()
    links: tuple[LinkFields, ...] = ()
    resource_dropped_attributes_count: int = 0
    scope_dropped_attributes_count: int = 0


class ReceivedSpan(ReadableSpan):
    """A span decoded from OTLP: a ``ReadableSpan`` (every exporter takes it) with ``otlp`` beside it."""

    def __init__(self, otlp: OtlpSpanFields, **span: Any) -> None:
        super().__init__(**span)
        self.otlp = otlp

    # The SDK's own view (its encoder, the console exporter) sees the received counts too.
    @property
    def dropped_attributes(self) -> int:
        return self.otlp.dropped_attributes_count

    @property
    def dropped_events(self) -> int:
        return self.otlp.dropped_events_count

    @property
    def dropped_links(self) -> int:
        return self.otlp.dropped_links_count


def context_flags(context: SpanContext | None) -> int:
    """``Span.flags`` / ``Link.flags`` of one of the service's own spans, as the SDK's encoder writes
    them (its private ``_span_flags``): "is remote" known, set when the parent or linked span is remote.
    The SDK leaves the W3C trace flags out; so do we, so that the store shows what was sent."""
    return HAS_IS_REMOTE | (IS_REMOTE if context is not None and context.is_remote else 0)


def otlp_fields(span: ReadableSpan) -> OtlpSpanFields:
    """What ``span`` says or would say in OTLP: a received span's fields, else the ones the SDK's
    encoder writes for one of the service's own spans."""
    if isinstance(span, ReceivedSpan):
        return span.otlp
    return OtlpSpanFields(
        flags=context_flags(span.parent),
        trace_state=trace_state_header(span.context),
        kind=span.kind.value + 1,  # the SDK's SpanKind counts from INTERNAL = 0, OTLP's from 1
        dropped_attributes_count=span.dropped_attributes,
        dropped_events_count=span.dropped_events,
        dropped_links_count=span.dropped_links,
        event_dropped_attributes_counts=tuple(event.dropped_attributes for event in span.events),
        links=tuple(
            LinkFields(trace_state_header(link.context), context_flags(link.context), link.dropped_attributes)
            for link in span.links
        ),
    )


def trace_state_header(context: SpanContext | None) -> str:
    return context.trace_state.to_header() if context is not None and context.trace_state else ""


# A resource or scope group: the object (its id, for a received span) and its dropped attribute count.
_Key = tuple[object, int]


def encode_spans(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """The OTLP request for ``spans``: the SDK's encoding, with received spans' fields as received.

    Received spans are grouped by resource and scope object (one each per resource and scope of the
    request that brought them), not by equal value as the SDK does, so a resource or scope goes out
    as often as it came, with its dropped count; the service's own spans are grouped as the SDK does.
    Each group is encoded by the SDK's public encoder, which then yields one resource with one scope
    holding the group's spans in order; the fields it cannot know are set on those messages.
    """
    groups: dict[_Key, dict[_Key, list[ReadableSpan]]] = {}
    for span in spans:
        resource_key: _Key
        scope_key: _Key
        if isinstance(span, ReceivedSpan):
            fields = span.otlp
            resource_key = (id(span.resource), fields.resource_dropped_attributes_count)
            scope_key = (id(span.instrumentation_scope), fields.scope_dropped_attributes_count)
        else:
            resource_key, scope_key = (span.resource, 0), (span.instrumentation_scope, 0)
        groups.setdefault(resource_key, {}).setdefault(scope_key, []).append(span)
    request = ExportTraceServiceRequest()
    for (_, resource_dropped), scopes in groups.items():
        resource_spans: ResourceSpans | None = None
        for (_, scope_dropped), members in scopes.items():
            (encoded,) = sdk_encode_spans(members).resource_spans
            (scope_spans,) = encoded.scope_spans
            if resource_spans is None:
                resource_spans = request.resource_spans.add()
                resource_spans.resource.CopyFrom(encoded.resource)
                resource_spans.resource.dropped_attributes_count = resource_dropped
                resource_spans.schema_url = encoded.schema_url
            scope_spans.scope.dropped_attributes_count = scope_dropped
            for span, message in zip(members, scope_spans.spans, strict=True):
                if isinstance(span, ReceivedSpan):
                    _put_back(message, span.otlp)
            resource_spans.scope_spans.append(scope_spans)
    return request


def _put_back(message: Span, fields: OtlpSpanFields) -> None:
    message.flags = fields.flags
    message.trace_state = fields.trace_state
    message.kind = fields.kind  # type: ignore[assignment]  # a number the enum may not name
    message.dropped_attributes_count = fields.dropped_attributes_count
    message.dropped_events_count = fields.dropped_events_count
    message.dropped_links_count = fields.dropped_links_count
    for event, dropped in zip(message.events, fields.event_dropped_attributes_counts, strict=True):
        event.dropped_attributes_count = dropped
    for link, link_fields in zip(message.links, fields.links, strict=True):
        link.trace_state = link_fields.trace_state
        link.flags = link_fields.flags
        link.dropped_attributes_count = link_fields.dropped_attributes_count
