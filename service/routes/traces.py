"""``/api/traces``: find traces by service, root name, duration, status, pipeline and time."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from exporters.store.traces import TraceCursor, TraceFilter, TraceQueries
from service.errors import bad_parameter
from service.params import parse_identifier, parse_limit, parse_time, reject_unknown
from service.state import state

blueprint = Blueprint("traces", __name__, url_prefix="/api/traces")

_FILTERS = frozenset(
    {"service_name", "name", "min_duration_ms", "max_duration_ms", "status", "pipeline_id", "since", "until",
     "limit", "cursor"}
)  # fmt: skip
# A day in milliseconds times 10,000 years: larger is a typo, and would overflow nanoseconds.
_MAX_DURATION_MS = 86_400_000 * 3_650_000
_STATUSES = ("ok", "error")


@blueprint.get("")
def find_traces() -> Response:
    """Traces newest first (by start), each with its root span's name and service, its start, duration,
    span count and error flag; keyset paging with ``cursor``."""
    args = request.args
    reject_unknown(args, _FILTERS)
    page = TraceQueries(state().store).find(
        _filters(args), parse_limit(args.get("limit"), default=20), _cursor(args)
    )
    return jsonify({"traces": page.traces, "next_cursor": page.next_cursor})


def _filters(args: Any) -> TraceFilter:
    since = parse_time("since", args["since"]) if "since" in args else None
    until = parse_time("until", args["until"]) if "until" in args else None
    if since is not None and until is not None and since >= until:
        raise bad_parameter("until", "must be later than since")
    low = _duration_ns(args, "min_duration_ms")
    high = _duration_ns(args, "max_duration_ms")
    if low is not None and high is not None and low > high:
        raise bad_parameter("max_duration_ms", "must not be less than min_duration_ms")
    status = args.get("status")
    if status is not None and status not in _STATUSES:
        raise bad_parameter("status", f"{status!r} is not one of {', '.join(_STATUSES)}")
    return TraceFilter(
        service_name=_optional_text(args, "service_name"),
        name=_optional_text(args, "name"),
        min_duration_ns=low,
        max_duration_ns=high,
        status=status,
        pipeline_id=_optional_text(args, "pipeline_id"),
        since_ns=since,
        until_ns=until,
    )


def _optional_text(args: Any, name: str) -> str | None:
    return parse_identifier(name, args[name]) if name in args else None


def _duration_ns(args: Any, name: str) -> int | None:
    """Milliseconds, fractions allowed (``0.5``), as nanoseconds."""
    if name not in args:
        return None
    value = args[name].strip()
    try:
        if not value.isascii():
            raise ValueError(value)
        milliseconds = float(value)
    except ValueError:
        raise bad_parameter(name, f"{args[name]!r} is not a number of milliseconds") from None
    if not 0 <= milliseconds <= _MAX_DURATION_MS:  # also refuses nan and inf
        raise bad_parameter(name, f"must be a number of milliseconds from 0 to {_MAX_DURATION_MS}")
    return round(milliseconds * 1_000_000)


def _cursor(args: Any) -> TraceCursor | None:
    if "cursor" not in args:
        return None
    try:
        return TraceCursor.decode(args["cursor"])
    except ValueError:
        raise bad_parameter("cursor", "is not a cursor returned by this API") from None
