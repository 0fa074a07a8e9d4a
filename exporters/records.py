"""Turn OpenTelemetry SDK records into Arrow tables shaped like the store's tables.

Everything here is per-record Python on the exporter's hot path, so it avoids work that can be shared:
a resource is encoded once per batch, not once per record.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from exporters.otlp_spans import OtlpSpanFields, otlp_fields

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

# What the exporter hands the store: every column but those the store derives (id, pipeline context)
# and the attributes, which travel beside the table (see ``LogRows``), numbered by ``row``.
_DERIVED = ("id", "pipeline_id", "run_id", "stage", "attributes")
LOG_ROW_SCHEMA = pa.schema(
    [field for field in LOG_SCHEMA if field.name not in _DERIVED] + [pa.field("row", pa.int32())]
)

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
        ("flags", pa.uint32()),
        ("dropped_attributes_count", pa.uint32()),
        ("dropped_events_count", pa.uint32()),
        ("dropped_links_count", pa.uint32()),
        ("resource_dropped_attributes_count", pa.uint32()),
        ("scope_dropped_attributes_count", pa.uint32()),
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
_SEVERITY_VALUE: dict[SeverityNumber | None, int | None] = {s: s.value for s in SeverityNumber}
_SEVERITY_VALUE[None] = None

_log_record = attrgetter("log_record")
_resource = attrgetter("resource")
_scope = attrgetter("instrumentation_scope")


def _column(records: list[Any], name: str) -> list[Any]:
    return list(map(attrgetter(name), records))


def _hex_ids(ids: list[int | None], width: str) -> pa.Array:
    """Format ids as hex; records of one batch share a few ids, so each distinct one is formatted once.

    The result is dictionary-encoded, which DuckDB reads as plain text without expanding it in Python.
    """
    known = dict.fromkeys(ids)
    for value in known:
        known[value] = format(value, width) if value else None
    positions = {value: index for index, value in enumerate(known)}
    indices = pa.array(list(map(positions.__getitem__, ids)), pa.int32())
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(known.values()), pa.string()))


def _attributes_json(records: list[Any]) -> str:
    """Every record's attributes as one JSON array, in one ``orjson`` call.

    One call per batch, not per record: on this machine ``orjson.dumps`` costs about 2 us a call
    whatever the size, while the whole batch costs 0.1 us a record. The store splits the array
    back into rows in SQL, off the GIL. Keys keep their order (not sorted): a record sent again (retry,
    replay) has the same text and so the same id, and sorting would cost every record for nothing.
    """
    # BoundedAttributes iterates under a lock, key by key; its plain dict is serialised in one step.
    plain = [getattr(attrs, "_dict", attrs) or _EMPTY for attrs in _column(records, "attributes")]
    return orjson.dumps(plain, default=_json_default).decode()


_EMPTY: dict[str, Any] = {}


@dataclass(frozen=True)
class LogRows:
    """A batch of log records shaped for the store: ``columns`` (one row per record, numbered by
    ``row``) and ``attributes``, a JSON array whose element *i* holds row *i*'s attributes."""

    columns: pa.Table
    attributes: str

    @property
    def num_rows(self) -> int:
        return int(self.columns.num_rows)


def _same_for_all(batch: Sequence[ReadableLogRecord]) -> bool:
    """Whether every record shares one resource and one scope (the usual case), checked by identity."""
    return len(set(map(id, map(_resource, batch)))) == 1 and len(set(map(id, map(_scope, batch)))) == 1


def log_table(batch: Sequence[ReadableLogRecord]) -> LogRows:
    """Columns for the ``logs`` table, one row per record, as the store's ``incoming`` rows.

    This is the part of exporting that holds the GIL, and every microsecond of it is taken from the
    threads that emit, so per-record work runs in C loops (``map`` over attribute getters) rather
    than Python bytecode: columns are pulled out with ``attrgetter``, per-batch constants (resource,
    scope) are repeated by Arrow, fix-ups (missing timestamps, empty names) are Arrow compute kernels,
    and the record id and promoted pipeline columns are left to the store, which derives them in SQL.
    """
    n = len(batch)
    if n == 0:
        return LogRows(LOG_ROW_SCHEMA.empty_table(), "[]")
    records = list(map(_log_record, batch))
    cache = _ResourceCache()
    if _same_for_all(batch):
        service, resource_json, scope_name, scope_version = cache.get(
            batch[0].resource, batch[0].instrumentation_scope
        )
        described = {
            "service_name": pa.repeat(service, n).cast(pa.string()),
            "scope_name": pa.repeat(scope_name, n).cast(pa.string()),
            "scope_version": pa.repeat(scope_version, n).cast(pa.string()),
            "resource_attributes": pa.repeat(resource_json, n).cast(pa.string()),
        }
    else:
        rows = [cache.get(r.resource, r.instrumentation_scope) for r in batch]
        described = {
            name: pa.array([row[i] for row in rows], pa.string())
            for i, name in enumerate(("service_name", "resource_attributes", "scope_name", "scope_version"))
        }
    observed = pa.array(_column(records, "observed_timestamp"), pa.int64())
    observed = pc.if_else(pc.equal(observed, 0), None, observed)
    timestamps = pa.array(_column(records, "timestamp"), pa.int64())
    timestamps = pc.coalesce(pc.if_else(pc.equal(timestamps, 0), None, timestamps), observed, time.time_ns())
    bodies = _column(records, "body")
    if not set(map(type, bodies)) <= _PLAIN_BODIES:
        bodies = [b if b is None or b.__class__ is str else to_json(b) for b in bodies]
    event_names = pa.array(_column(records, "event_name"), pa.string())
    columns: dict[str, pa.Array] = {
        "timestamp": timestamps.cast(pa.timestamp("ns")),
        "observed_timestamp": observed.cast(pa.timestamp("ns")),
        "trace_id": _hex_ids(_column(records, "trace_id"), "032x"),
        "span_id": _hex_ids(_column(records, "span_id"), "016x"),
        "trace_flags": pa.array(_column(records, "trace_flags"), pa.uint8()),
        "severity_text": pa.array(_column(records, "severity_text"), pa.string()),
        "severity_number": pa.array(
            list(map(_SEVERITY_VALUE.__getitem__, _column(records, "severity_number"))), pa.uint8()
        ),
        "body": pa.array(bodies, pa.string()),
        "event_name": pc.if_else(pc.equal(event_names, ""), None, event_names),
        "row": pa.array(range(n), pa.int32()),
        **described,
    }
    table = pa.Table.from_arrays([columns[f.name] for f in LOG_ROW_SCHEMA], schema=LOG_ROW_SCHEMA)
    return LogRows(table, _attributes_json(records))


_PLAIN_BODIES = {str, type(None)}


def _events(span: ReadableSpan, fields: OtlpSpanFields) -> list[dict[str, Any]]:
    return [
        {
            "name": e.name,
            "timestamp": e.timestamp or None,  # 0: the sender did not know when
            "attributes": dict(e.attributes or {}),
            "dropped_attributes_count": dropped,
        }
        for e, dropped in zip(span.events, fields.event_dropped_attributes_counts, strict=True)
    ]


def _links(span: ReadableSpan, fields: OtlpSpanFields) -> list[dict[str, Any]]:
    return [
        {
            "trace_id": format(link.context.trace_id, "032x"),
            "span_id": format(link.context.span_id, "016x"),
            "trace_state": link_fields.trace_state or None,
            "flags": link_fields.flags,
            "attributes": dict(link.attributes or {}),
            "dropped_attributes_count": link_fields.dropped_attributes_count,
        }
        for link, link_fields in zip(span.links, fields.links, strict=True)
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
        fields = otlp_fields(span)
        columns["trace_state"].append(fields.trace_state or None)
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
        columns["events"].append(to_json(_events(span, fields)))
        columns["links"].append(to_json(_links(span, fields)))
        columns["flags"].append(fields.flags)
        columns["dropped_attributes_count"].append(fields.dropped_attributes_count)
        columns["dropped_events_count"].append(fields.dropped_events_count)
        columns["dropped_links_count"].append(fields.dropped_links_count)
        columns["resource_dropped_attributes_count"].append(fields.resource_dropped_attributes_count)
        columns["scope_dropped_attributes_count"].append(fields.scope_dropped_attributes_count)
    return pa.table(columns, schema=SPAN_SCHEMA)
