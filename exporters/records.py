"""Turn OpenTelemetry SDK records into Arrow tables shaped like the store's tables.

Everything here is per-record Python on the exporter's hot path, so it avoids work that can be shared:
a resource is encoded once per batch, not once per record.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from operator import add, attrgetter
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from exporters import anyvalue
from exporters.otlp_spans import OtlpSpanFields, otlp_fields

# The attribute keys under which instrumentation records pipeline context; promoted to columns.
PIPELINE_ID = "pipeline.id"
RUN_ID = "pipeline.run_id"
STAGE = "pipeline.stage"

LOG_SCHEMA = pa.schema(
    [
        ("id", pa.uint64()),
        # The time the store orders and filters by: the record's own time, else its observed time, else
        # when it was received. ``time_absent`` says the record had no time of its own.
        ("timestamp", pa.timestamp("ns")),
        ("time_absent", pa.bool_()),
        ("observed_timestamp", pa.timestamp("ns")),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("flags", pa.uint32()),
        ("severity_text", pa.string()),
        ("severity_number", pa.int32()),
        ("service_name", pa.string()),
        ("body", pa.string()),
        ("body_value", pa.string()),
        ("event_name", pa.string()),
        ("scope_name", pa.string()),
        ("scope_version", pa.string()),
        ("scope_schema_url", pa.string()),
        ("scope_attributes", pa.string()),
        ("scope_dropped_attributes_count", pa.uint32()),
        ("pipeline_id", pa.string()),
        ("run_id", pa.string()),
        ("stage", pa.string()),
        ("attributes", pa.string()),
        ("typed_values", pa.bool_()),
        ("dropped_attributes_count", pa.uint32()),
        ("resource_attributes", pa.string()),
        ("resource_schema_url", pa.string()),
        ("resource_dropped_attributes_count", pa.uint32()),
    ]
)

# What the exporter hands the store: every column but those the store derives (id, pipeline context)
# and the attributes, which travel beside the table (see ``LogRows``), numbered by ``row``.
_DERIVED = ("id", "pipeline_id", "run_id", "stage", "attributes")
LOG_ROW_SCHEMA = pa.schema(
    [field for field in LOG_SCHEMA if field.name not in _DERIVED] + [pa.field("row", pa.int32())]
)
# The same with the promoted columns, when the exporter derived them (``LogRows.stored_attributes``).
PROMOTED_ROW_SCHEMA = pa.schema(
    list(LOG_ROW_SCHEMA)
    + [LOG_SCHEMA.field(name) for name in ("pipeline_id", "run_id", "stage")]
    + [pa.field("promoted_keys", pa.uint8()), pa.field("promoted_places", pa.uint32())]
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
        ("resource_schema_url", pa.string()),
        ("scope_schema_url", pa.string()),
        ("scope_attributes", pa.string()),
        # Spans are written in the typed form (``exporters.anyvalue``): attributes of the span, its
        # resource, scope, events and links, keys in the order sent. Rows stored before: plain, sorted.
        ("typed_values", pa.bool_()),
    ]
)


class _ResourceCache:
    """Encodes each distinct resource of a batch of spans once."""

    def __init__(self) -> None:
        self._resources: dict[int, tuple[Resource | None, str | None, str, Mapping[str, Any]]] = {}
        self._scopes: dict[int, tuple[InstrumentationScope | None, str | None, str | None]] = {}

    def resource(self, resource: Resource | None) -> tuple[str | None, str, Mapping[str, Any]]:
        hit = self._resources.get(id(resource))
        if hit is None or hit[0] is not resource:
            attrs: Mapping[str, Any] = dict(resource.attributes) if resource is not None else {}
            service = attrs.get("service.name")
            hit = (resource, str(service) if service is not None else None, _typed_json(attrs), attrs)
            self._resources[id(resource)] = hit
        return hit[1], hit[2], hit[3]


def _context_value(key: str, attrs: Mapping[str, Any], resource: Mapping[str, Any]) -> str | None:
    value = attrs.get(key)
    if value is None:
        value = resource.get(key)
    return None if value is None else str(value)


# Enum.value is a descriptor call and an Enum's __hash__ is Python code; a lookup by identity (members
# and None are singletons) keeps the per-record loop in C.
_SEVERITY_BY_ID: dict[int, int | None] = {id(s): s.value for s in SeverityNumber} | {id(None): None}


def _severity_values(severities: list[Any]) -> list[Any]:
    """Severity numbers; a number outside 1..24 (OTLP allows them; ``UnknownSeverity``, an int) is
    kept as it came. ``dict.get`` with the value itself as default keeps the loop in C."""
    return list(map(_SEVERITY_BY_ID.get, map(id, severities), severities))


_log_record = attrgetter("log_record")
_resource = attrgetter("resource")
_scope = attrgetter("instrumentation_scope")

# A received record's dropped count as its sender gave it (``exporters.otlp_codec`` sets it); the
# SDK's own count (``dropped_attributes``) holds what a local limit removed.
RECEIVED_DROPPED = "pipetrace_dropped_attributes"


def _column(records: list[Any], name: str) -> list[Any]:
    return list(map(attrgetter(name), records))


def _hex_ids(ids: list[int | None], width: str) -> tuple[pa.Array, bytes]:
    """Format ids as hex; records of one batch share a few ids, so each distinct one is formatted once.

    The result is dictionary-encoded, which DuckDB reads as plain text without expanding it in Python;
    beside it, the same as JSON bytes for the batch's digest.
    """
    known = dict.fromkeys(ids)
    for value in known:
        known[value] = format(value, width) if value else None
    positions = {value: index for index, value in enumerate(known)}
    hexes = list(known.values())
    index_list = list(map(positions.__getitem__, ids))
    array = pa.DictionaryArray.from_arrays(pa.array(index_list, pa.int32()), pa.array(hexes, pa.string()))
    return array, orjson.dumps([hexes, index_list])


_EMPTY: dict[str, Any] = {}

# The columns that describe where a record comes from (its resource and scope), in ``LOG_ROW_SCHEMA``.
_DESCRIBED = (
    "service_name",
    "resource_attributes",
    "resource_schema_url",
    "resource_dropped_attributes_count",
    "scope_name",
    "scope_version",
    "scope_schema_url",
    "scope_attributes",
    "scope_dropped_attributes_count",
)


def _described(
    resource: Resource | None, scope: InstrumentationScope | None, typed: bool
) -> tuple[Any, ...] | None:
    """The ``_DESCRIBED`` columns of one (resource, scope) pair; None when ``typed`` is false and
    plain JSON would lose a value (the batch is then written in the typed form)."""
    attrs: Mapping[str, Any] = resource.attributes if resource is not None else _EMPTY
    service = attrs.get("service.name")
    scope_attrs = dict(scope.attributes or {}) if scope is not None else {}
    encode = _typed_json if typed else anyvalue.plain_json
    resource_json = encode(dict(attrs))
    scope_json = encode(scope_attrs) if scope_attrs else None
    if resource_json is None or (scope_attrs and scope_json is None):
        return None
    return (
        str(service) if service is not None else None,
        resource_json,
        (resource.schema_url or None) if resource is not None else None,
        getattr(resource, "dropped_attributes_count", 0),
        scope.name if scope is not None else None,
        (scope.version or None) if scope is not None else None,
        (scope.schema_url or None) if scope is not None else None,
        scope_json,
        getattr(scope, "dropped_attributes_count", 0),
    )


def _descriptions(owners: list[ReadableLogRecord], typed: bool) -> list[tuple[Any, ...]] | None:
    """Each (resource, scope) pair's columns; None when one of them cannot be written plain."""
    described = [_described(o.resource, o.instrumentation_scope, typed) for o in owners]
    return None if None in described else described  # type: ignore[return-value]


def _typed_json(values: Mapping[str, Any]) -> str:
    return orjson.dumps(anyvalue.typed_map(values)).decode()


@dataclass(frozen=True)
class LogRows:
    """A batch of log records shaped for the store: ``columns`` (one row per record, numbered by
    ``row``) and ``attributes``, a JSON array whose element *i* holds row *i*'s attributes.

    ``key`` names the delivery: a 128-bit digest of everything the batch holds, in order. The store
    keeps one copy of a delivery (a retry, a replay, a spool drained twice) and every record of it,
    identical ones included. None means a delivery of its own, never a repeat.

    Two short cuts the exporter takes when it can (both None otherwise, and the store derives the
    same in SQL): ``stored_attributes``, the attributes without the promoted ones, set when every
    promoted value is a string (``columns`` then holds the promoted columns: see ``promote``); and
    ``search_text``, the batch's searchable text (bodies and attribute values, as
    ``sql/insert_search_grams.sql`` reads them) for the search index.
    """

    columns: pa.Table
    attributes: str
    key: int | None = None
    stored_attributes: str | None = None
    search_text: str | None = None

    @property
    def num_rows(self) -> int:
        return int(self.columns.num_rows)


# The attribute keys promoted to columns, in the order ``promoted_keys`` numbers them: bit i of
# ``promoted_keys`` and byte i of ``promoted_places`` are key i's (``sql/insert_logs.sql``).
PROMOTED_KEYS = ((PIPELINE_ID, "pipeline_id"), (RUN_ID, "run_id"), (STAGE, "stage"))
_STRING_OR_ABSENT = {str, type(None)}


@dataclass(frozen=True)
class Promoted:
    """The promoted columns of a batch, and each record's attributes without the promoted ones."""

    columns: dict[str, pa.Array]
    attributes: Sequence[Mapping[str, Any]]


def promote(
    plain: list[dict[str, Any]],
    inherited: list[Mapping[str, Any]],
    pair_of_row: list[int] | None,
    typed: bool,
) -> Promoted | None:
    """What ``sql/insert_logs.sql`` derives, in Python: each promoted key's value from the record's
    attributes, else from its resource (``inherited``, one per (resource, scope) pair, ``pair_of_row``
    saying whose each row is); bit i of ``promoted_keys`` set and the key left out of the attributes
    when the record's own value is a string, byte i of ``promoted_places`` its place among them.

    None when a promoted value is not a string, or a key is held without a value (both rare): the
    store then derives the columns in SQL, which renders such values as DuckDB's JSON does. Every
    loop over the records is a C loop (``map``); the rest is per distinct key order.
    """
    n = len(plain)
    owns = [list(map(dict.get, plain, repeat(key))) for key, _ in PROMOTED_KEYS]
    from_resource = [[attrs.get(key) for attrs in inherited] for key, _ in PROMOTED_KEYS]
    for (key, _), own, values in zip(PROMOTED_KEYS, owns, from_resource, strict=True):
        if not set(map(type, own)) <= _STRING_OR_ABSENT or not set(map(type, values)) <= _STRING_OR_ABSENT:
            return None
        if typed and sum(map(dict.__contains__, plain, repeat(key))) != n - own.count(None):
            return None  # plain JSON holds no None (``anyvalue.plain_json``): only typed can
    columns: dict[str, pa.Array] = {}
    for own, values, (_, column) in zip(owns, from_resource, PROMOTED_KEYS, strict=True):
        if None in own:
            rows = values * n if pair_of_row is None else [values[p] for p in pair_of_row]
            own = [o if o is not None else r for o, r in zip(own, rows, strict=True)]
        columns[column] = pa.array(own, pa.string())
    # Each record's promoted keys are those its attributes hold (all strings, as checked above), so
    # the bits and places follow from the order of its keys alone.
    orders = list(map(tuple, plain))
    distinct = {names: i for i, names in enumerate(dict.fromkeys(orders))}
    promoted_of = [_promoted_of(names) for names in distinct]
    if len(promoted_of) == 1:
        ((bits, places),) = promoted_of
        columns["promoted_keys"] = pa.repeat(pa.scalar(bits, pa.uint8()), n)
        columns["promoted_places"] = pa.repeat(pa.scalar(places, pa.uint32()), n)
    else:
        order_of_row = pa.array(list(map(distinct.__getitem__, orders)), pa.int32())
        columns["promoted_keys"] = pa.array([b for b, _ in promoted_of], pa.uint8()).take(order_of_row)
        columns["promoted_places"] = pa.array([p for _, p in promoted_of], pa.uint32()).take(order_of_row)
    if not any(bits for bits, _ in promoted_of):
        return Promoted(columns, plain)
    attributes: list[dict[str, Any]] = list(map(dict, plain))
    for key, _ in PROMOTED_KEYS:
        deque(map(dict.pop, attributes, repeat(key), repeat(None)), maxlen=0)
    return Promoted(columns, attributes)


def _promoted_of(names: tuple[str, ...]) -> tuple[int, int]:
    """``promoted_keys`` and ``promoted_places`` of a record whose attribute keys are ``names``: bit i
    and byte i (its place, 1 = first, at most 255) are promoted key i's."""
    bits = places = 0
    for i, (key, _) in enumerate(PROMOTED_KEYS):
        if key in names:
            bits |= 1 << i
            places |= min(names.index(key) + 1, 255) << (8 * i)
    return bits, places


def _search_text(bodies: list[Any], plain: list[dict[str, Any]], typed: bool) -> str | None:
    """The batch's text as search reads it: bodies, string attribute values as they are, other values
    as the JSON DuckDB renders them (``json_extract_string``), typed when the batch is. None when
    such a JSON holds an escape, which two JSON writers may spell differently."""
    values = list(chain.from_iterable(map(dict.values, plain)))
    strings, others = values, []
    if set(map(type, values)) != {str}:
        strings = [v for v in values if v.__class__ is str]
        others = [v for v in values if v.__class__ is not str]
    rendered = ""
    if others:
        try:
            rendered = orjson.dumps([anyvalue.typed(v) for v in others] if typed else others).decode()
        except TypeError:
            return None
        if "\\" in rendered:
            return None
    # Only the set of letter runs counts: repeated texts (the same line, a run's ids) go in once.
    return "\n".join(chain(set(bodies) - {None}, set(strings), (rendered,)))


def _delivery_key(
    columns: list[Any], ids: list[bytes], attributes_json: str, exact_only_by_repr: bool
) -> int:
    """A 128-bit digest of a batch's content, exact for every value.

    ``orjson`` writes the columns in one C call. It cannot take bytes and writes NaN as it writes None,
    so a batch whose bodies are not all strings (rare) is written with ``repr``, exact for every value
    but several times slower. Ids come in as their hex dictionary and indices (``_hex_ids``).
    """
    digest = hashlib.blake2b(digest_size=16)
    try:
        text = b"" if exact_only_by_repr else orjson.dumps(columns)
    except TypeError:
        text = b""
    digest.update(text or repr(columns).encode())
    for part in ids:
        digest.update(part)
    digest.update(attributes_json.encode())
    return int.from_bytes(digest.digest(), "big")


def log_table(batch: Sequence[ReadableLogRecord], received_ns: int | None = None) -> LogRows:
    """Columns for the ``logs`` table, one row per record, as the store's ``incoming`` rows.

    This is the part of exporting that holds the GIL, and every microsecond of it is taken from the
    threads that emit, so per-record work runs in C loops (``map`` over attribute getters) rather
    than Python bytecode: columns are pulled out with ``attrgetter``, per-batch constants (resource,
    scope) are repeated by Arrow, fix-ups are Arrow compute kernels, and the record id and promoted
    pipeline columns are left to the store, which derives them in SQL.

    Nothing is invented: a record without a time keeps ``time_absent``; the store orders it by its
    observed time, else by ``received_ns`` (now), which is not part of the delivery's key.
    """
    n = len(batch)
    if n == 0:
        return LogRows(LOG_ROW_SCHEMA.empty_table(), "[]")
    records = list(map(_log_record, batch))
    # A batch is written wholly in plain JSON, or (when that would lose a value anywhere in it: rare)
    # wholly in the typed form, so that one flag per row says how its attributes, resource and scope
    # are written (``exporters.anyvalue``).
    pairs: dict[tuple[int, int], int] = {}
    owners: list[ReadableLogRecord] = []
    for item in batch if not _same_for_all(batch) else batch[:1]:
        ident = (id(item.resource), id(item.instrumentation_scope))
        if ident not in pairs:
            pairs[ident] = len(owners)
            owners.append(item)
    # BoundedAttributes iterates under a lock, key by key; its plain dict is read in one step.
    held = _column(records, "attributes")
    plain: list[dict[str, Any]] = list(map(getattr, held, repeat("_dict"), held))
    if not all(map(isinstance, plain, repeat(dict))):  # None, or a Mapping of another kind
        plain = [dict(attrs) if attrs is not None else _EMPTY for attrs in plain]
    attributes_json, typed = _attributes_json(plain)
    descriptions = _descriptions(owners, typed)
    if descriptions is None:
        typed = True
        attributes_json = _attributes_json(plain, typed=True)[0]
        descriptions = _descriptions(owners, typed) or []
    if len(descriptions) == 1:
        pair_of_row: list[int] | None = None
        described = {
            name: pa.repeat(pa.scalar(descriptions[0][i], LOG_ROW_SCHEMA.field(name).type), n)
            for i, name in enumerate(_DESCRIBED)
        }
    else:
        pair_of_row = [pairs[(id(r.resource), id(r.instrumentation_scope))] for r in batch]
        described = {
            name: pa.array([descriptions[p][i] for p in pair_of_row], LOG_ROW_SCHEMA.field(name).type)
            for i, name in enumerate(_DESCRIBED)
        }
    raw_times = _column(records, "timestamp")
    raw_observed = _column(records, "observed_timestamp")
    trace_ids, trace_digest = _hex_ids(_column(records, "trace_id"), "032x")
    span_ids, span_digest = _hex_ids(_column(records, "span_id"), "016x")
    flags = list(map(int, _column(records, "trace_flags")))
    severity_texts = _column(records, "severity_text")
    severities = _severity_values(_column(records, "severity_number"))
    bodies = _column(records, "body")
    event_names = _column(records, "event_name")
    dropped = _dropped_counts(records)
    plain_bodies = set(map(type, bodies)) <= _PLAIN_BODIES
    key = _delivery_key(
        [raw_times, raw_observed, flags, severity_texts, severities, bodies, event_names, dropped,
         descriptions, pair_of_row],
        [trace_digest, span_digest],
        attributes_json,
        exact_only_by_repr=not plain_bodies,
    )  # fmt: skip
    body_values: list[str | None] | None = None
    if not plain_bodies:
        body_values = [None if b is None or b.__class__ is str else _body_value(b) for b in bodies]
        bodies = [b if b is None or b.__class__ is str else anyvalue.plain_text(b) for b in bodies]
    observed = pa.array(raw_observed, pa.int64())
    observed = pc.if_else(pc.equal(observed, 0), None, observed)
    own_time = pa.array(raw_times, pa.int64())
    own_time = pc.if_else(pc.equal(own_time, 0), None, own_time)
    ordered = pc.coalesce(own_time, observed, time.time_ns() if received_ns is None else received_ns)
    event_name_array = pa.array(event_names, pa.string())
    columns: dict[str, pa.Array] = {
        "timestamp": ordered.cast(pa.timestamp("ns")),
        "time_absent": pc.is_null(own_time),
        "observed_timestamp": observed.cast(pa.timestamp("ns")),
        "trace_id": trace_ids,
        "span_id": span_ids,
        "flags": pa.array(flags, pa.uint32()),
        "severity_text": pa.array(severity_texts, pa.string()),
        "severity_number": pa.array(severities, pa.int32()),
        "body": pa.array(bodies, pa.string()),
        "body_value": pa.array(body_values, pa.string()) if body_values else pa.nulls(n, pa.string()),
        "event_name": pc.if_else(pc.equal(event_name_array, ""), None, event_name_array),
        "typed_values": pa.repeat(typed, n),
        "dropped_attributes_count": pa.array(dropped, pa.uint32())
        if dropped
        else pa.repeat(0, n).cast(pa.uint32()),
        "row": pa.array(range(n), pa.int32()),
        **described,
    }
    inherited = [o.resource.attributes if o.resource is not None else _EMPTY for o in owners]
    promoted = promote(plain, inherited, pair_of_row, typed)
    if promoted is None:
        table = pa.Table.from_arrays([columns[f.name] for f in LOG_ROW_SCHEMA], schema=LOG_ROW_SCHEMA)
        return LogRows(table, attributes_json, key, search_text=_search_text(bodies, plain, typed))
    columns |= promoted.columns
    table = pa.Table.from_arrays([columns[f.name] for f in PROMOTED_ROW_SCHEMA], schema=PROMOTED_ROW_SCHEMA)
    stored = attributes_json
    if promoted.attributes is not plain:  # a part of what was written in this form already: it fits
        kept = [anyvalue.typed_map(a) for a in promoted.attributes] if typed else promoted.attributes
        stored = orjson.dumps(kept).decode()
    return LogRows(table, attributes_json, key, stored, _search_text(bodies, plain, typed))


def _body_value(body: Any) -> str:
    return orjson.dumps(anyvalue.any_value(body)).decode()


def _dropped_counts(records: list[Any]) -> list[int] | None:
    """Each record's dropped attribute count (the SDK's limit, plus what a sender reported for a
    received record); None when all are 0, the usual case, checked in C loops."""
    by_limit = list(map(getattr, _column(records, "attributes"), repeat("dropped"), repeat(0)))
    by_sender = list(map(getattr, records, repeat(RECEIVED_DROPPED), repeat(0)))
    if not any(by_limit) and not any(by_sender):
        return None
    return list(map(add, by_limit, by_sender))


def _attributes_json(plain: Sequence[Mapping[str, Any]], typed: bool = False) -> tuple[str, bool]:
    """Every record's attributes as one JSON array, and whether it is in the typed form.

    One ``orjson`` call per batch, not per record, when every value is plain JSON (see
    ``exporters.anyvalue``): on this machine ``orjson.dumps`` costs about 2 us a call whatever the size,
    while the whole batch costs 0.1 us a record. The store splits the array back into rows in SQL, off
    the GIL. Keys keep their order.
    """
    if not typed:
        text = anyvalue.plain_json(plain)
        if text is not None:
            return text, False
    return orjson.dumps([anyvalue.typed_map(attrs) for attrs in plain]).decode(), True


def _same_for_all(batch: Sequence[ReadableLogRecord]) -> bool:
    """Whether every record shares one resource and one scope (the usual case), checked by identity."""
    return len(set(map(id, map(_resource, batch)))) == 1 and len(set(map(id, map(_scope, batch)))) == 1


_PLAIN_BODIES = {str, type(None)}


def _events(span: ReadableSpan, fields: OtlpSpanFields) -> list[dict[str, Any]]:
    return [
        {
            "name": e.name,
            "timestamp": e.timestamp or None,  # 0: the sender did not know when
            "attributes": anyvalue.typed_map(e.attributes or {}),
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
            "attributes": anyvalue.typed_map(link.attributes or {}),
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
        columns["attributes"].append(_typed_json(attrs))
        columns["resource_attributes"].append(resource_json)
        columns["events"].append(orjson.dumps(_events(span, fields)).decode())
        columns["links"].append(orjson.dumps(_links(span, fields)).decode())
        columns["resource_schema_url"].append((span.resource.schema_url or None) if span.resource else None)
        columns["scope_schema_url"].append((scope.schema_url or None) if scope else None)
        scope_attributes = dict(scope.attributes or {}) if scope else {}
        columns["scope_attributes"].append(_typed_json(scope_attributes) if scope_attributes else None)
        columns["typed_values"].append(True)
        columns["flags"].append(fields.flags)
        columns["dropped_attributes_count"].append(fields.dropped_attributes_count)
        columns["dropped_events_count"].append(fields.dropped_events_count)
        columns["dropped_links_count"].append(fields.dropped_links_count)
        columns["resource_dropped_attributes_count"].append(fields.resource_dropped_attributes_count)
        columns["scope_dropped_attributes_count"].append(fields.scope_dropped_attributes_count)
    return pa.table(columns, schema=SPAN_SCHEMA)
