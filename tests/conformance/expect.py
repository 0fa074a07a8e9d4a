"""The test's own reading of OTLP: captured bytes -> protobuf -> the API record each one should become.

Nothing here imports Pipetrace: protobuf bodies are parsed with ``ParseFromString``, OTLP/JSON bodies
with this module's hex-id handling and ``json_format.ParseDict``, and the expected API form is
protobuf's JSON mapping of each value.
"""

from __future__ import annotations

import base64
import gzip
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.conformance.capture import Captured

M = TypeVar("M", bound=Message)
NS = 1_000_000_000
# The API's times: RFC 3339, UTC, nine fraction digits.
API_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")
# ``sort_timestamp`` of a record sent with neither time: when Pipetrace received it, not known here.
RECEIVED = "<time of receipt>"

# Where OTLP/JSON carries ids (hex there, base64 in protobuf's own JSON mapping), per signal.
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
_CONTAINERS = {
    ExportLogsServiceRequest: ("resourceLogs", "scopeLogs", "logRecords"),
    ExportTraceServiceRequest: ("resourceSpans", "scopeSpans", "spans"),
}


def decode(captured: Captured, message: type[M]) -> M:
    """A captured request's body as ``message``, read the way its Content-Type says."""
    body = captured.body
    if captured.headers.get("content-encoding", "").lower() == "gzip":
        body = gzip.decompress(body)
    content_type = captured.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-protobuf":
        parsed = message()
        parsed.ParseFromString(body)
        return parsed
    assert content_type == "application/json", f"not OTLP/HTTP: {content_type!r}"
    return from_otlp_json(orjson.loads(body), message)


def from_otlp_json(document: dict[str, Any], message: type[M]) -> M:
    """OTLP/JSON as protobuf: its hex ids turned into the base64 that protobuf's JSON mapping reads.

    Strict: a field this protobuf does not know fails the parse, so a client sending one is noticed.
    """
    resource_key, scope_key, item_key = _CONTAINERS[message]
    for resource in document.get(resource_key, []):
        for scope in resource.get(scope_key, []):
            for item in scope.get(item_key, []):
                _hex_to_base64(item)
                for link in item.get("links", []):
                    _hex_to_base64(link)
    parsed = message()
    json_format.ParseDict(document, parsed)
    return parsed


def _hex_to_base64(node: dict[str, Any]) -> None:
    for name in _ID_FIELDS:
        if node.get(name):
            node[name] = base64.b64encode(bytes.fromhex(node[name])).decode("ascii")


def api_time(ns: int) -> str | None:
    """An OTLP time as the API writes it; 0 (unknown) as null."""
    if not ns:
        return None
    seconds, nanos = divmod(ns, NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def typed(value: AnyValue) -> Any:
    """The API's typed form: a string bare, any other value as protobuf's JSON mapping of the AnyValue."""
    if value.WhichOneof("value") == "string_value":
        return value.string_value
    return json_format.MessageToDict(value)


def typed_map(pairs: Any) -> dict[str, Any]:
    """Key/values in the order sent."""
    return {pair.key: typed(pair.value) for pair in pairs}


def _hex(raw: bytes) -> str | None:
    return raw.hex() if raw else None


def _text(value: str) -> str | None:
    """A proto3 string: empty and absent are the same on the wire; the API says null."""
    return value or None


@dataclass(frozen=True)
class Sent:
    """One record as sent, with the context it travelled in."""

    resource: Any
    resource_schema_url: str
    scope: Any
    scope_schema_url: str
    item: Any


def log_records(requests: list[ExportLogsServiceRequest]) -> Iterator[Sent]:
    for request in requests:
        for rl in request.resource_logs:
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    yield Sent(rl.resource, rl.schema_url, sl.scope, sl.schema_url, record)


def spans(requests: list[ExportTraceServiceRequest]) -> Iterator[Sent]:
    for request in requests:
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    yield Sent(rs.resource, rs.schema_url, ss.scope, ss.schema_url, span)


def expected_log(sent: Sent) -> dict[str, Any]:
    """The record ``GET /api/logs*`` should return for ``sent`` (derived conveniences left out)."""
    record, scope = sent.item, sent.scope
    # No body and an empty AnyValue body are both null (as tests/service/test_otlp_fidelity.py has it).
    has_body = record.HasField("body") and record.body.WhichOneof("value") is not None
    has_scope = bool(scope.name or scope.version or scope.attributes or sent.scope_schema_url)
    return {
        "timestamp": api_time(record.time_unix_nano),
        "observed_timestamp": api_time(record.observed_time_unix_nano),
        "sort_timestamp": api_time(record.time_unix_nano or record.observed_time_unix_nano) or RECEIVED,
        "severity_text": _text(record.severity_text),
        # 0 is SEVERITY_NUMBER_UNSPECIFIED, proto3's "not set": null, as for an empty string.
        "severity_number": record.severity_number or None,
        "body": typed(record.body) if has_body else None,
        "scope": {
            "name": scope.name,
            "version": _text(scope.version),
            "schema_url": _text(sent.scope_schema_url),
            "attributes": typed_map(scope.attributes),
            "dropped_attributes_count": scope.dropped_attributes_count,
        }
        if has_scope
        else None,
        "trace_id": _hex(record.trace_id),
        "span_id": _hex(record.span_id),
        "flags": record.flags,
        "event_name": _text(record.event_name),
        "attributes": typed_map(record.attributes),
        "dropped_attributes_count": record.dropped_attributes_count,
        "resource": typed_map(sent.resource.attributes),
        "resource_schema_url": _text(sent.resource_schema_url),
        "resource_dropped_attributes_count": sent.resource.dropped_attributes_count,
    }


_SPAN_KINDS = {0: "INTERNAL", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}


def expected_span(sent: Sent) -> dict[str, Any]:
    """The span ``GET /api/logs/correlation/<trace id>`` should return for ``sent``.

    Kind UNSPECIFIED is read as INTERNAL, which the spec allows; an unknown status code is not sent by
    these clients. Derived conveniences (``duration_ms``, the promoted pipeline columns, the service
    name) are left out.
    """
    span, scope = sent.item, sent.scope
    has_scope = bool(scope.name or scope.attributes)
    return {
        "trace_id": _hex(span.trace_id),
        "span_id": _hex(span.span_id),
        "parent_span_id": _hex(span.parent_span_id),
        "trace_state": _text(span.trace_state),
        "flags": span.flags,
        "name": span.name,
        "kind": _SPAN_KINDS[span.kind],
        "start": api_time(span.start_time_unix_nano),
        "end": api_time(span.end_time_unix_nano),
        "status": {"code": _STATUS_CODES[span.status.code], "message": _text(span.status.message)},
        "attributes": typed_map(span.attributes),
        "dropped_attributes_count": span.dropped_attributes_count,
        "dropped_events_count": span.dropped_events_count,
        "dropped_links_count": span.dropped_links_count,
        "events": [
            {
                "name": event.name,
                "timestamp": api_time(event.time_unix_nano),
                "attributes": typed_map(event.attributes),
                "dropped_attributes_count": event.dropped_attributes_count,
            }
            for event in span.events
        ],
        "links": [
            {
                "trace_id": _hex(link.trace_id),
                "span_id": _hex(link.span_id),
                "trace_state": _text(link.trace_state),
                "flags": link.flags,
                "attributes": typed_map(link.attributes),
                "dropped_attributes_count": link.dropped_attributes_count,
            }
            for link in span.links
        ],
        "scope": {
            "name": scope.name,
            "version": _text(scope.version),
            "schema_url": _text(sent.scope_schema_url),
            "attributes": typed_map(scope.attributes),
            "dropped_attributes_count": scope.dropped_attributes_count,
        }
        if has_scope
        else None,
        "scope_dropped_attributes_count": scope.dropped_attributes_count,
        "resource": typed_map(sent.resource.attributes),
        "resource_schema_url": _text(sent.resource_schema_url),
        "resource_dropped_attributes_count": sent.resource.dropped_attributes_count,
    }


def differences(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Every place ``actual`` differs from ``expected``: value, JSON type, or key order of an object."""
    if expected is RECEIVED:
        ok = isinstance(actual, str) and API_TIME.match(actual) is not None
        return [] if ok else [f"{where}: sent no time, so a receipt time was expected; returned {actual!r}"]
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        if list(expected) != list(actual):
            found.append(f"{where}: keys sent {list(expected)}, returned {list(actual)}")
        for key in expected:
            if key in actual:
                found += differences(expected[key], actual[key], f"{where}.{key}")
        return found
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for d in differences(e, a, f"{where}[{i}]")]  # fmt: skip
    # Types too: 1 == 1.0 == True in Python, never in OTLP.
    if type(expected) is not type(actual) or expected != actual:
        return [f"{where}: sent {expected!r}, returned {actual!r}"]
    return []


def _sort_key(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS, default=str)


def compare(expected: list[dict[str, Any]], returned: list[dict[str, Any]], what: str) -> list[str]:
    """Every sent record against its returned one, as one list of differences naming record and field.

    Both sides are put in one canonical order first (returned records keep only the compared fields),
    so records are paired whatever order the API lists them in; identical records pair with identical.
    """
    if len(expected) != len(returned):
        return [f"{len(expected)} {what} sent, {len(returned)} returned"]
    returned = [{key: record.get(key, "<absent>") for key in expected[0]} for record in returned]
    found: list[str] = []
    pairs = zip(sorted(expected, key=_sort_key), sorted(returned, key=_sort_key), strict=True)
    for number, (sent, got) in enumerate(pairs):
        label = sent.get("event_name") or sent.get("name") or sent.get("body")
        found += differences(sent, got, f"{what}[{number}] ({label!r})")
    return found


def assert_same(expected: list[dict[str, Any]], returned: list[dict[str, Any]], what: str) -> None:
    found = compare(expected, returned, what)
    assert not found, f"{len(found)} difference(s):\n" + "\n".join(found)
