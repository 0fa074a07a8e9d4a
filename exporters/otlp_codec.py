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
from exporters.records import RECEIVED_DROPPED

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
    _hex_ids_to_base64(document)
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OtlpError(f"body is not a valid OTLP/JSON {type(request).__name__}: {exc}") from exc
    except RecursionError as exc:
        raise OtlpError("body nests values too deeply") from exc
    return request


# Stands in for an id that is not hex, so that its record alone is refused (``_id``), not the request.
_NOT_HEX = b"\x00pipetrace: not hex\x00"
_NOT_HEX_BASE64 = base64.b64encode(_NOT_HEX).decode("ascii")
_LOG_IDS = ("traceId", "spanId", "trace_id", "span_id")
_SPAN_IDS = (*_LOG_IDS, "parentSpanId", "parent_span_id")


def _items(node: Any, *names: str) -> list[Any]:
    """The objects listed under the first of ``names`` that ``node`` has (OTLP/JSON's camelCase, or
    the snake_case some senders use), or none."""
    if isinstance(node, dict):
        for name in names:
            value = node.get(name)
            if isinstance(value, list):
                return [item for item in value if isinstance(item, dict)]
    return []


def _ids_to_base64(node: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        value = node.get(name)
        if isinstance(value, str):
            try:
                node[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            except ValueError:
                node[name] = _NOT_HEX_BASE64


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite the hex ids of OTLP/JSON as the base64 protobuf's JSON mapping reads, in place.

    Only where OTLP puts ids: a field of the same name elsewhere (inside an unknown field, say) is
    not ours to read, and the parser ignores unknown fields whatever they hold.
    """
    for resource in _items(document, "resourceLogs", "resource_logs"):
        for scope in _items(resource, "scopeLogs", "scope_logs"):
            for record in _items(scope, "logRecords", "log_records"):
                _ids_to_base64(record, _LOG_IDS)
    for resource in _items(document, "resourceSpans", "resource_spans"):
        for scope in _items(resource, "scopeSpans", "scope_spans"):
            for span in _items(scope, "spans"):
                _ids_to_base64(span, _SPAN_IDS)
                for link in _items(span, "links"):
                    _ids_to_base64(link, _LOG_IDS)


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


class ReceivedResource(Resource):
    """A resource as received, with the count of attributes its sender dropped (the SDK's has none)."""

    def __init__(
        self, attributes: dict[str, Any], schema_url: str | None, dropped_attributes_count: int
    ) -> None:
        super().__init__(attributes, schema_url)
        self.dropped_attributes_count = dropped_attributes_count


class ReceivedScope(SdkScope):
    """An instrumentation scope as received, with its dropped attribute count."""

    def __init__(
        self,
        name: str,
        version: str | None,
        schema_url: str | None,
        attributes: dict[str, Any] | None,
        dropped_attributes_count: int,
    ) -> None:
        super().__init__(name, version, schema_url, attributes)
        self.dropped_attributes_count = dropped_attributes_count


class UnknownSeverity(int):
    """A severity number outside 1..24: OTLP allows it, so the record keeps it. ``value`` is what the
    SDK's encoder reads from a ``SeverityNumber``."""

    @property
    def value(self) -> int:
        return int(self)


def _resource(resource: ProtoResource, schema_url: str, limits: Limits) -> ReceivedResource:
    attributes, dropped = limits.attributes_and_dropped(resource.attributes)
    return ReceivedResource(attributes, schema_url or None, resource.dropped_attributes_count + dropped)


def _scope(scope: InstrumentationScope, schema_url: str, limits: Limits) -> ReceivedScope:
    attributes, dropped = limits.attributes_and_dropped(scope.attributes)
    return ReceivedScope(
        scope.name, scope.version or None, schema_url or None, attributes or None,
        scope.dropped_attributes_count + dropped,
    )  # fmt: skip


def _severity(number: int) -> SeverityNumber | UnknownSeverity | None:
    if not number:
        return None
    try:
        return SeverityNumber(number)
    except ValueError:
        return UnknownSeverity(number)


# OTLP times are unsigned 64-bit; the store keeps signed 64-bit nanoseconds (up to 2262-04-11).
_MAX_TIME_NS = 2**63 - 2  # 2**63 - 1 is DuckDB's "infinity", not a time


def _time(value: int, what: str) -> int | None:
    if value > _MAX_TIME_NS:
        raise ValueError(f"{what} {value} is beyond the year 2262")
    return value or None


def _id(raw: bytes, size: int, what: str) -> int:
    if len(raw) == 0:
        return 0
    if raw == _NOT_HEX:
        raise ValueError(f"{what} is not hex")
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
    """What one received record may hold: OpenTelemetry's attribute limits, applied on receipt.

    Attributes beyond ``max_attributes`` are dropped and counted in the record's (or resource's, or
    scope's) ``dropped_attributes_count``, as the SDK does. String and bytes values longer than
    ``max_value_length`` are cut, as the SDK does, when that limit is set (by default it is not, as
    in the SDK: a request's size is bounded by the receiver's request limit instead). Bodies and the
    elements of arrays and maps are never cut.
    """

    max_attributes: int = 128
    max_value_length: int | None = None

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
        return self.attributes_and_dropped(pairs)[0]

    def attributes_and_dropped(self, pairs: Any) -> tuple[dict[str, Any], int]:
        """The attributes kept and how many were dropped (beyond the limit, or a key sent twice, of
        which the last is kept as the SDK keeps it)."""
        kept = pairs if len(pairs) <= self.max_attributes else list(pairs)[: self.max_attributes]
        if self.max_value_length is None:
            values = {kv.key: any_value(kv.value) for kv in kept}
        else:
            values = {kv.key: self.value(any_value(kv.value)) for kv in kept}
        return values, len(pairs) - len(values)

    def value(self, value: Any) -> Any:
        if self.max_value_length is None:
            return value
        if isinstance(value, str | bytes):
            return value[: self.max_value_length]
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        return value


DEFAULT_LIMITS = Limits()


def decode_logs(request: ExportLogsServiceRequest, limits: Limits = DEFAULT_LIMITS) -> Decoded:
    out = Decoded([])
    for resource_logs in request.resource_logs:
        resource = _resource(resource_logs.resource, resource_logs.schema_url, limits)
        for scope_logs in resource_logs.scope_logs:
            scope = _scope(scope_logs.scope, scope_logs.schema_url, limits)
            for proto in scope_logs.log_records:
                try:
                    trace_id = _id(proto.trace_id, 16, "trace_id")
                    span_id = _id(proto.span_id, 8, "span_id")
                    timestamp = _time(proto.time_unix_nano, "time_unix_nano")
                    observed = _time(proto.observed_time_unix_nano, "observed_time_unix_nano")
                except ValueError as exc:
                    out.reject(f"log record rejected: {exc}")
                    continue
                attributes, dropped = limits.attributes_and_dropped(proto.attributes)
                severity: Any = _severity(proto.severity_number)
                body: Any = any_value(proto.body) if proto.HasField("body") else None
                record = LogRecord(
                    timestamp=timestamp,
                    observed_timestamp=observed,
                    severity_text=proto.severity_text or None,
                    severity_number=severity,
                    body=body,
                    attributes=attributes,
                    event_name=proto.event_name or None,
                )
                # Set after construction: the constructor would otherwise take ids from the current span
                # and fill an absent observed time with the time of receipt.
                record.observed_timestamp = observed  # type: ignore[assignment]  # None: absent, as sent
                record.trace_id = trace_id
                record.span_id = span_id
                record.trace_flags = TraceFlags(proto.flags)  # all 32 bits, not only the W3C eight
                setattr(record, RECEIVED_DROPPED, proto.dropped_attributes_count + dropped)
                out.records.append(
                    ReadWriteLogRecord(
                        log_record=record, resource=resource, instrumentation_scope=scope, limits=limits.sdk
                    )
                )
    return out


def decode_spans(request: ExportTraceServiceRequest, limits: Limits = DEFAULT_LIMITS) -> Decoded:
    out = Decoded([])
    for resource_spans in request.resource_spans:
        sdk_resource = _resource(resource_spans.resource, resource_spans.schema_url, limits)
        resource: _Received[Resource] = _Received(sdk_resource, sdk_resource.dropped_attributes_count)
        for scope_spans in resource_spans.scope_spans:
            sdk_scope = _scope(scope_spans.scope, scope_spans.schema_url, limits)
            scope: _Received[SdkScope] = _Received(sdk_scope, sdk_scope.dropped_attributes_count)
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
