"""OTLP codec: requests (protobuf or JSON, plain or gzip) to OpenTelemetry SDK records and back.

Received records become the same SDK objects the service's own instrumentation makes, so they pass
through the same processors and exporters; spooled batches are OTLP/JSON written with the SDK's own
encoders and read back here. The OTel SDK ships encoders for OTLP but no decoder, hence this module.
"""

from __future__ import annotations

import base64
import functools
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ProtoResource
from opentelemetry.sdk._logs import LogRecordLimits, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event
from opentelemetry.sdk.util.instrumentation import InstrumentationScope as SdkScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from exporters.otlp_spans import IS_REMOTE, LinkFields, OtlpSpanFields, ReceivedSpan

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# Ids in OTLP/JSON are hex, not the base64 that protobuf's JSON mapping expects.
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
_SPAN_KINDS = {
    0: SpanKind.INTERNAL,
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_STATUS = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}


class OtlpError(ValueError):
    """The request cannot be decoded at all; the client gets a 4xx with this message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding``; the size limit applies to the decompressed body, so no gzip bomb fits."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise OtlpError(f"request body is larger than {limit} bytes", 413)
        return body
    if encoding not in ("gzip", "deflate"):
        raise OtlpError(f"unsupported Content-Encoding {encoding!r}; use gzip or none", 415)
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise OtlpError(f"body is not valid {encoding}: {exc}") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise OtlpError(f"decompressed request body is larger than {limit} bytes", 413)
    if not inflater.eof:
        raise OtlpError(f"body is truncated {encoding}")
    return data


def media_type(content_type: str | None) -> str:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if kind == JSON:
        return JSON
    raise OtlpError(f"unsupported Content-Type {content_type!r}; use {PROTOBUF} or {JSON}", 415)


_M = TypeVar("_M", bound=Message)


def parse(body: bytes, kind: str, message: Callable[[], _M]) -> _M:
    request = message()
    if kind == PROTOBUF:
        try:
            request.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise OtlpError(f"body is not a valid {type(request).__name__} protobuf: {exc}") from exc
        return request
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise OtlpError("body must be a JSON object")
    try:
        json_format.ParseDict(_hex_ids_to_base64(document), request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OtlpError(f"body is not a valid OTLP/JSON {type(request).__name__}: {exc}") from exc
    return request


def _hex_ids_to_base64(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                try:
                    value = base64.b64encode(bytes.fromhex(value)).decode("ascii")
                except ValueError as exc:
                    raise OtlpError(f"{key} {value!r} is not hex") from exc
            else:
                value = _hex_ids_to_base64(value)
            out[key] = value
        return out
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    return node


def encode(message: Message, kind: str) -> bytes:
    if kind == PROTOBUF:
        return bytes(message.SerializeToString())
    return to_otlp_json(message)


def to_otlp_json(message: Message) -> bytes:
    """OTLP/JSON as the specification writes it: protobuf's JSON mapping, with ids in hex."""
    return orjson.dumps(_base64_ids_to_hex(json_format.MessageToDict(message)))


def _base64_ids_to_hex(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: base64.b64decode(value).hex()
            if key in _ID_FIELDS and isinstance(value, str)
            else _base64_ids_to_hex(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_base64_ids_to_hex(item) for item in node]
    return node


def any_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return key_values(value.kvlist_value.values)
    return getattr(value, which)


def key_values(pairs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in pairs}


def _resource(resource: ProtoResource, schema_url: str) -> Resource:
    return Resource(key_values(resource.attributes), schema_url or None)


def _scope(scope: InstrumentationScope, schema_url: str) -> SdkScope:
    attributes: dict[str, Any] = key_values(scope.attributes)
    return SdkScope(scope.name, scope.version or None, schema_url or None, attributes or None)


# OTLP times are unsigned 64-bit; the store keeps signed 64-bit nanoseconds (up to 2262-04-11).
_MAX_TIME_NS = 2**63 - 1


def _time(value: int, what: str) -> int | None:
    if value > _MAX_TIME_NS:
        raise ValueError(f"{what} {value} is beyond the year 2262")
    return value or None


def _id(raw: bytes, size: int, what: str) -> int:
    if len(raw) == 0:
        return 0
    if len(raw) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(raw)}")
    return int.from_bytes(raw, "big")


@dataclass
class Decoded:
    """What a request held: the records to store and how many were refused, with the first reason."""

    records: list[Any]
    rejected: int = 0
    error: str = ""

    def reject(self, reason: str) -> None:
        self.rejected += 1
        self.error = self.error or reason


@dataclass(frozen=True)
class Limits:
    """What one received record may hold (the OTel SDK's attribute limits, applied on receipt):
    attributes beyond ``max_attributes`` are dropped, longer string values are cut."""

    max_attributes: int = 128
    max_value_length: int = 8192

    @functools.cached_property
    def sdk(self) -> LogRecordLimits:
        # Built once: a LogRecordLimits() per record reads four environment variables each time, which
        # was a third of the receiver's decoding cost.
        return LogRecordLimits(
            max_attributes=self.max_attributes,
            max_attribute_length=self.max_value_length,
            max_log_record_attributes=self.max_attributes,
            max_log_record_attribute_length=self.max_value_length,
        )

    def attributes(self, pairs: Any) -> dict[str, Any]:
        kept = pairs if len(pairs) <= self.max_attributes else list(pairs)[: self.max_attributes]
        return {kv.key: self.value(any_value(kv.value)) for kv in kept}

    def value(self, value: Any) -> Any:
        if isinstance(value, str | bytes):
            return value[: self.max_value_length]
        if isinstance(value, list):
            return [self.value(item) for item in value[: self.max_attributes]]
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in list(value.items())[: self.max_attributes]}
        return value


DEFAULT_LIMITS = Limits()


def decode_logs(request: ExportLogsServiceRequest, limits: Limits = DEFAULT_LIMITS) -> Decoded:
    out = Decoded([])
    for resource_logs in request.resource_logs:
        resource = _resource(resource_logs.resource, resource_logs.schema_url)
        for scope_logs in resource_logs.scope_logs:
            scope = _scope(scope_logs.scope, scope_logs.schema_url)
            for proto in scope_logs.log_records:
                try:
                    trace_id = _id(proto.trace_id, 16, "trace_id")
                    span_id = _id(proto.span_id, 8, "span_id")
                    severity = SeverityNumber(proto.severity_number) if proto.severity_number else None
                    timestamp = _time(proto.time_unix_nano, "time_unix_nano")
                    observed = _time(proto.observed_time_unix_nano, "observed_time_unix_nano")
                except ValueError as exc:
                    out.reject(f"log record rejected: {exc}")
                    continue
                record = LogRecord(
                    timestamp=timestamp,
                    observed_timestamp=observed,
                    severity_text=proto.severity_text or None,
                    severity_number=severity,
                    body=limits.value(any_value(proto.body)) if proto.HasField("body") else None,
                    attributes=limits.attributes(proto.attributes),
                    event_name=proto.event_name or None,
                )
                # Set after construction: the constructor would otherwise take ids from the current span.
                record.trace_id = trace_id
                record.span_id = span_id
                record.trace_flags = TraceFlags(proto.flags & 0xFF)
                out.records.append(
                    ReadWriteLogRecord(
                        log_record=record, resource=resource, instrumentation_scope=scope, limits=limits.sdk
                    )
                )
    return out


def decode_spans(request: ExportTraceServiceRequest, limits: Limits = DEFAULT_LIMITS) -> Decoded:
    out = Decoded([])
    for resource_spans in request.resource_spans:
        proto_resource = resource_spans.resource
        resource = _Received(
            _resource(proto_resource, resource_spans.schema_url), proto_resource.dropped_attributes_count
        )
        for scope_spans in resource_spans.scope_spans:
            scope_proto = scope_spans.scope
            scope = _Received(
                _scope(scope_proto, scope_spans.schema_url), scope_proto.dropped_attributes_count
            )
            for proto in scope_spans.spans:
                try:
                    out.records.append(_span(proto, resource, scope, limits))
                except ValueError as exc:
                    out.reject(f"span rejected: {exc}")
    return out


def _span(
    proto: Any, resource: _Received[Resource], scope: _Received[SdkScope], limits: Limits
) -> ReceivedSpan:
    """The SDK's span for ``proto``, and every field it cannot hold in ``otlp`` (exporters.otlp_spans)."""
    trace_id = _id(proto.trace_id, 16, "trace_id")
    span_id = _id(proto.span_id, 8, "span_id")
    if not trace_id or not span_id:
        raise ValueError("trace_id and span_id are required")
    parent_id = _id(proto.parent_span_id, 8, "parent_span_id")
    kept_events = proto.events[: limits.max_attributes]
    kept_links = proto.links[: limits.max_attributes]
    events, event_dropped = [], []
    for e in kept_events:
        attributes = limits.attributes(e.attributes)
        # Time 0 is "unknown" and stays 0: Event(timestamp=None) would stamp the time of receipt.
        events.append(Event(e.name, attributes, _time(e.time_unix_nano, "event time_unix_nano") or 0))
        event_dropped.append(e.dropped_attributes_count + len(e.attributes) - len(attributes))
    links, link_fields = [], []
    for link in kept_links:
        attributes = limits.attributes(link.attributes)
        link_trace_id = _id(link.trace_id, 16, "link trace_id")
        link_span_id = _id(link.span_id, 8, "link span_id")
        links.append(Link(_context(link_trace_id, link_span_id, link.flags, link.trace_state), attributes))
        link_fields.append(
            LinkFields(
                link.trace_state,
                link.flags,
                link.dropped_attributes_count + len(link.attributes) - len(attributes),
            )
        )
    attributes = limits.attributes(proto.attributes)
    fields = OtlpSpanFields(
        flags=proto.flags,
        trace_state=proto.trace_state,
        kind=proto.kind,
        dropped_attributes_count=proto.dropped_attributes_count + len(proto.attributes) - len(attributes),
        dropped_events_count=proto.dropped_events_count + len(proto.events) - len(kept_events),
        dropped_links_count=proto.dropped_links_count + len(proto.links) - len(kept_links),
        event_dropped_attributes_counts=tuple(event_dropped),
        links=tuple(link_fields),
        resource_dropped_attributes_count=resource.dropped,
        scope_dropped_attributes_count=scope.dropped,
    )
    return ReceivedSpan(
        fields,
        name=proto.name,
        context=_context(trace_id, span_id, proto.flags, proto.trace_state, remote=False),
        parent=SpanContext(trace_id, parent_id, _is_remote(proto.flags)) if parent_id else None,
        resource=resource.sdk,
        attributes=attributes,
        events=events,
        links=links,
        kind=_SPAN_KINDS.get(proto.kind, SpanKind.INTERNAL),
        status=Status(_STATUS.get(proto.status.code, StatusCode.UNSET), proto.status.message or None),
        start_time=_time(proto.start_time_unix_nano, "start_time_unix_nano") or 0,
        end_time=_time(proto.end_time_unix_nano, "end_time_unix_nano"),
        instrumentation_scope=scope.sdk,
    )


def _is_remote(flags: int) -> bool:
    return bool(flags & IS_REMOTE)


def _context(
    trace_id: int, span_id: int, flags: int, trace_state: str, remote: bool | None = None
) -> SpanContext:
    """The SDK's view of a span or link context: the low 8 bits of ``flags`` are the W3C trace flags."""
    state = TraceState.from_header([trace_state]) if trace_state else None
    is_remote = _is_remote(flags) if remote is None else remote
    return SpanContext(trace_id, span_id, is_remote, TraceFlags(flags & 0xFF), state)


_T = TypeVar("_T")


@dataclass(frozen=True)
class _Received(Generic[_T]):
    """A decoded resource or scope, with the dropped attribute count it came with (the SDK's has none)."""

    sdk: _T
    dropped: int


def readable(record: ReadWriteLogRecord) -> ReadableLogRecord:
    return ReadableLogRecord(
        log_record=record.log_record,
        resource=record.resource if record.resource is not None else Resource.get_empty(),
        instrumentation_scope=record.instrumentation_scope,
        limits=record.limits,
    )


def logs_response(decoded: Decoded) -> ExportLogsServiceResponse:
    response = ExportLogsServiceResponse()
    if decoded.rejected:
        response.partial_success.rejected_log_records = decoded.rejected
        response.partial_success.error_message = decoded.error
    return response


def spans_response(decoded: Decoded) -> ExportTraceServiceResponse:
    response = ExportTraceServiceResponse()
    if decoded.rejected:
        response.partial_success.rejected_spans = decoded.rejected
        response.partial_success.error_message = decoded.error
    return response


__all__ = [
    "JSON",
    "PROTOBUF",
    "Decoded",
    "ExportLogsServiceRequest",
    "ExportTraceServiceRequest",
    "OtlpError",
    "decode_logs",
    "decode_spans",
    "decompress",
    "encode",
    "logs_response",
    "media_type",
    "parse",
    "readable",
    "spans_response",
    "to_otlp_json",
]
