"""Turn OpenTelemetry SDK records into Arrow tables shaped like the store's tables.

Everything here is per-record Python on the exporter's hot path, so it avoids work that can be shared:
a resource is encoded once per batch, not once per record.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import pyarrow as pa
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

# The attribute keys under which instrumentation records pipeline context; promoted to columns.
PIPELINE_ID = "pipeline.id"
RUN_ID = "pipeline.run_id"
STAGE = "pipeline.stage"

LOG_SCHEMA = pa.schema(
    [
        ("id", pa.uint64()),
        ("timestamp", pa.timestamp("ns")),
        ("observed_timestamp", pa.timestamp("ns")),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("trace_flags", pa.uint8()),
        ("severity_text", pa.string()),
        ("severity_number", pa.uint8()),
        ("service_name", pa.string()),
        ("body", pa.string()),
        ("event_name", pa.string()),
        ("scope_name", pa.string()),
        ("scope_version", pa.string()),
        ("pipeline_id", pa.string()),
        ("run_id", pa.string()),
        ("stage", pa.string()),
        ("attributes", pa.string()),
        ("resource_attributes", pa.string()),
    ]
)

# What the exporter hands the store: every column but those the store derives (id, pipeline context).
_DERIVED = ("id", "pipeline_id", "run_id", "stage")
LOG_ROW_SCHEMA = pa.schema([field for field in LOG_SCHEMA if field.name not in _DERIVED])

SPAN_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("trace_state", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("service_name", pa.string()),
        ("scope_name", pa.string()),
        ("scope_version", pa.string()),
        ("start_time", pa.timestamp("ns")),
        ("end_time", pa.timestamp("ns")),
        ("duration_ns", pa.int64()),
        ("status_code", pa.string()),
        ("status_message", pa.string()),
        ("pipeline_id", pa.string()),
        ("run_id", pa.string()),
        ("stage", pa.string()),
        ("attributes", pa.string()),
        ("resource_attributes", pa.string()),
        ("events", pa.string()),
        ("links", pa.string()),
    ]
)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def to_json(value: Any) -> str:
    """Canonical JSON (sorted keys) so that equal attribute sets give equal text and equal ids."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_SORT_KEYS).decode()


class _ResourceCache:
    """Encodes each distinct resource (and scope) of a batch once."""

    def __init__(self) -> None:
        self._resources: dict[int, tuple[Resource | None, str | None, str, Mapping[str, Any]]] = {}
        self._scopes: dict[int, tuple[InstrumentationScope | None, str | None, str | None]] = {}

    def resource(self, resource: Resource | None) -> tuple[str | None, str, Mapping[str, Any]]:
        hit = self._resources.get(id(resource))
        if hit is None or hit[0] is not resource:
            attrs: Mapping[str, Any] = dict(resource.attributes) if resource is not None else {}
            service = attrs.get("service.name")
            hit = (resource, str(service) if service is not None else None, to_json(attrs), attrs)
            self._resources[id(resource)] = hit
        return hit[1], hit[2], hit[3]

    def get(
        self, resource: Resource | None, scope: InstrumentationScope | None
    ) -> tuple[str | None, str, str | None, str | None]:
        service, resource_json, _ = self.resource(resource)
        known = self._scopes.get(id(scope))
        if known is None or known[0] is not scope:
            known = (scope, scope.name if scope else None, (scope.version or None) if scope else None)
            self._scopes[id(scope)] = known
        return service, resource_json, known[1], known[2]


def _context_value(key: str, attrs: Mapping[str, Any], resource: Mapping[str, Any]) -> str | None:
    value = attrs.get(key)
    if value is None:
        value = resource.get(key)
    return None if value is None else str(value)


# Enum.value is a descriptor call; a dict lookup is several times cheaper per record.
_SEVERITY_VALUE = {severity: severity.value for severity in SeverityNumber}


def _hex_ids(ids: list[int], width: str) -> list[str | None]:
    """Format ids as hex; records of one batch mostly share a few ids, so each is formatted once."""
    known: dict[int, str | None] = {0: None}
    out = []
    for value in ids:
        text = known.get(value, "")
        if text == "":
            text = known[value] = format(value, width)
        out.append(text)
    return out


def log_table(batch: Sequence[ReadableLogRecord]) -> pa.Table:
    """Columns for the ``logs`` table, one row per record, as the store's ``incoming`` rows.

    This is the part of exporting that holds the GIL, so it does as little per record as it can: one
    tight comprehension per column; resources and scopes encoded once per batch; attributes serialised
    by orjson and checked as UTF-8 by Arrow; the record id and the promoted pipeline columns left to the
    store, which derives them vectorised.
    """
    now = time.time_ns()
    records = [readable.log_record for readable in batch]
    dumps = orjson.dumps
    # BoundedAttributes iterates under a lock, key by key; its plain dict is serialised in one step.
    # Keys are not sorted: a record sent again (retry, replay) keeps its key order, so its text and its
    # id are the same, and sorting would cost every record for nothing.
    attributes = [
        dumps(getattr(attrs, "_dict", attrs), default=_json_default) if attrs else b"{}"
        for attrs in [record.attributes for record in records]
    ]
    observed = [record.observed_timestamp or None for record in records]
    severities = _SEVERITY_VALUE
    resources, scopes = [r.resource for r in batch], [r.instrumentation_scope for r in batch]
    cache = _ResourceCache()
    if len(set(map(id, resources))) == 1 and len(set(map(id, scopes))) == 1:
        described = [cache.get(resources[0], scopes[0])] * len(batch)
    else:
        described = [cache.get(resource, scope) for resource, scope in zip(resources, scopes, strict=True)]
    columns: dict[str, list[Any]] = {
        "timestamp": [r.timestamp or seen or now for r, seen in zip(records, observed, strict=True)],
        "observed_timestamp": observed,
        "trace_id": _hex_ids([r.trace_id or 0 for r in records], "032x"),
        "span_id": _hex_ids([r.span_id or 0 for r in records], "016x"),
        "trace_flags": [r.trace_flags for r in records],
        "severity_text": [r.severity_text for r in records],
        "severity_number": [
            severities[s] if s is not None else None for s in [r.severity_number for r in records]
        ],
        "service_name": [d[0] for d in described],
        "body": [b if b is None or b.__class__ is str else to_json(b) for b in [r.body for r in records]],
        "event_name": [r.event_name or None for r in records],
        "scope_name": [d[2] for d in described],
        "scope_version": [d[3] for d in described],
        "resource_attributes": [d[1] for d in described],
    }
    arrays = [
        pa.array(attributes, pa.binary()).cast(pa.string())
        if field.name == "attributes"
        else pa.array(columns[field.name], type=field.type)
        for field in LOG_ROW_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=LOG_ROW_SCHEMA)


def _events(span: ReadableSpan) -> list[dict[str, Any]]:
    return [
        {"name": e.name, "timestamp": e.timestamp, "attributes": dict(e.attributes or {})}
        for e in span.events
    ]


def _links(span: ReadableSpan) -> list[dict[str, Any]]:
    return [
        {
            "trace_id": format(link.context.trace_id, "032x"),
            "span_id": format(link.context.span_id, "016x"),
            "attributes": dict(link.attributes or {}),
        }
        for link in span.links
    ]


def span_table(batch: Iterable[ReadableSpan]) -> pa.Table:
    """Columns for the ``spans`` table, one row per finished span."""
    columns: dict[str, list[Any]] = {name: [] for name in SPAN_SCHEMA.names}
    resources = _ResourceCache()
    for span in batch:
        ctx = span.context
        if ctx is None:
            continue
        attrs = dict(span.attributes or {})
        service, resource_json, resource_attrs = resources.resource(span.resource)
        scope = span.instrumentation_scope
        start = span.start_time or 0
        end = span.end_time
        columns["trace_id"].append(format(ctx.trace_id, "032x"))
        columns["span_id"].append(format(ctx.span_id, "016x"))
        columns["parent_span_id"].append(format(span.parent.span_id, "016x") if span.parent else None)
        columns["trace_state"].append(ctx.trace_state.to_header() if ctx.trace_state else None)
        columns["name"].append(span.name)
        columns["kind"].append(span.kind.name if span.kind is not None else None)
        columns["service_name"].append(service)
        columns["scope_name"].append(scope.name if scope else None)
        columns["scope_version"].append((scope.version or None) if scope else None)
        columns["start_time"].append(start)
        columns["end_time"].append(end)
        columns["duration_ns"].append(end - start if end is not None else None)
        columns["status_code"].append(span.status.status_code.name)
        columns["status_message"].append(span.status.description)
        columns["pipeline_id"].append(_context_value(PIPELINE_ID, attrs, resource_attrs))
        columns["run_id"].append(_context_value(RUN_ID, attrs, resource_attrs))
        columns["stage"].append(_context_value(STAGE, attrs, resource_attrs))
        columns["attributes"].append(to_json(attrs))
        columns["resource_attributes"].append(resource_json)
        columns["events"].append(to_json(_events(span)))
        columns["links"].append(to_json(_links(span)))
    return pa.table(columns, schema=SPAN_SCHEMA)
