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


def body_text(body: Any) -> str | None:
    """Bodies are stored as text; a structured body (map, list, number) is stored as its JSON."""
    if body is None or isinstance(body, str):
        return body
    return to_json(body)


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


def log_table(batch: Sequence[ReadableLogRecord]) -> pa.Table:
    """Columns for the ``logs`` table, one row per record, as the store's ``incoming`` rows.

    This is the part of exporting that holds the GIL, so it does as little per record as it can: one
    tuple per record, transposed once; resources and scopes encoded once per batch; the record id and
    the promoted pipeline columns are left to the store, which derives them vectorised.
    """
    resources = _ResourceCache()
    now = time.time_ns()
    dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS
    severities = _SEVERITY_VALUE
    rows = []
    for readable in batch:
        record = readable.log_record
        attrs = record.attributes
        if attrs:
            # BoundedAttributes iterates under a lock, key by key; its plain dict is read in one step.
            plain = getattr(attrs, "_dict", None)
            attrs_json = dumps(plain if isinstance(plain, dict) else dict(attrs), default=_json_default,
                               option=sort_keys).decode()  # fmt: skip
        else:
            attrs_json = "{}"
        service, resource_json, scope_name, scope_version = resources.get(
            readable.resource, readable.instrumentation_scope
        )
        observed = record.observed_timestamp or None
        severity = record.severity_number
        body = record.body
        rows.append(
            (
                record.timestamp or observed or now,
                observed,
                format(record.trace_id, "032x") if record.trace_id else None,
                format(record.span_id, "016x") if record.span_id else None,
                record.trace_flags,
                record.severity_text,
                severities[severity] if severity is not None else None,
                service,
                body if body is None or isinstance(body, str) else to_json(body),
                record.event_name or None,
                scope_name,
                scope_version,
                attrs_json,
                resource_json,
            )
        )
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in LOG_ROW_SCHEMA]
    return pa.Table.from_arrays(
        [pa.array(column, type=field.type) for column, field in zip(columns, LOG_ROW_SCHEMA, strict=True)],
        schema=LOG_ROW_SCHEMA,
    )


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
