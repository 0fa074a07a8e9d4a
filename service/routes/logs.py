"""``/api/logs``: query the store. Routes parse and validate; the query layer queries."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from exporters.store.queries import LogFilter, Page
from service.errors import ApiError, bad_parameter, error_response
from service.params import (
    Cursor,
    format_time,
    parse_identifier,
    parse_level,
    parse_limit,
    parse_time,
    parse_trace_id,
    reject_unknown,
)
from service.state import state
from service.tail import stream

blueprint = Blueprint("logs", __name__, url_prefix="/api/logs")

_PAGE_FILTERS = frozenset({"service_name", "run_id", "stage", "level", "since", "until", "limit", "cursor"})
MAX_QUERY_LENGTH = 500


def _filters(args: Any, pipeline_id: str | None = None) -> LogFilter:
    since = parse_time("since", args["since"]) if "since" in args else None
    until = parse_time("until", args["until"]) if "until" in args else None
    if since is not None and until is not None and since >= until:
        raise bad_parameter("until", "must be later than since")
    return LogFilter(
        service_name=_optional_id(args, "service_name"),
        pipeline_id=pipeline_id if pipeline_id is not None else _optional_id(args, "pipeline_id"),
        run_id=_optional_id(args, "run_id"),
        stage=_optional_id(args, "stage"),
        min_severity=parse_level(args["level"]) if "level" in args else None,
        since_ns=since,
        until_ns=until,
    )


def _optional_id(args: Any, name: str) -> str | None:
    return parse_identifier(name, args[name]) if name in args else None


def _cursor(args: Any) -> Cursor | None:
    return Cursor.decode(args["cursor"]) if "cursor" in args else None


def _page_response(page: Page) -> Response:
    return jsonify({"logs": page.logs, "next_cursor": page.next_cursor})


@blueprint.get("")
def all_logs() -> Response:
    """Every record, newest first, with the same filters as a pipeline's logs plus ``pipeline_id``."""
    args = request.args
    reject_unknown(args, _PAGE_FILTERS | {"pipeline_id"})
    page = state().queries.pipeline_logs(_filters(args), parse_limit(args.get("limit")), _cursor(args))
    return _page_response(page)


@blueprint.get("/pipeline/<any_text:pipeline_id>")
def pipeline_logs(pipeline_id: str) -> Response:
    args = request.args
    reject_unknown(args, _PAGE_FILTERS)
    filters = _filters(args, parse_identifier("pipeline_id", pipeline_id))
    page = state().queries.pipeline_logs(filters, parse_limit(args.get("limit")), _cursor(args))
    return _page_response(page)


@blueprint.get("/search")
def search() -> Response:
    args = request.args
    reject_unknown(args, _PAGE_FILTERS | {"q", "pipeline_id"})
    text = args.get("q")
    if text is None or not text.strip():
        raise bad_parameter("q", "is required: the text to search for")
    if len(text) > MAX_QUERY_LENGTH:
        raise bad_parameter("q", f"must be at most {MAX_QUERY_LENGTH} characters")
    page = state().queries.search(text, _filters(args), parse_limit(args.get("limit")), _cursor(args))
    return _page_response(page)


@blueprint.get("/tail")
def tail() -> Response:
    """New records as Server-Sent Events (``service.tail``), from ``since`` (default: now) on."""
    args = request.args
    reject_unknown(args, frozenset({"service_name", "pipeline_id", "run_id", "stage", "level", "since"}))
    filters = _filters(args)
    since_ns = filters.since_ns if filters.since_ns is not None else time.time_ns()
    service = state()
    if not service.tail_slots.acquire(blocking=False):
        refused = error_response(503, "too_many_tails", "every live-tail stream is in use: retry shortly")
        refused.headers["Retry-After"] = "5"
        return refused
    queries = service.queries  # read here: the stream runs after the request context is gone
    events = stream(
        queries.pipeline_logs, filters, since_ns, service.tail_slots.release,
        lifetime_s=service.settings.tail_stream_seconds,
    )  # fmt: skip
    response = Response(events, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy in front must not hold the events back
    return response


@blueprint.get("/stats")
def stats() -> Response:
    args = request.args
    reject_unknown(args, frozenset({"since", "until", "pipeline_id", "service_name"}))
    service = state()
    filters = _filters(args)
    result = service.queries.stats(filters)
    # Runs by outcome beside the records: a run that loaded nothing or was cancelled logs no error.
    result["runs"] = service.repository.outcomes(filters.pipeline_id, filters.since_ns, filters.until_ns)
    result["ingest"] = service.ingest_counters()
    return jsonify(result)


@blueprint.get("/correlation/<trace_id>")
def correlation(trace_id: str) -> Response:
    reject_unknown(request.args, frozenset())
    trace_id = parse_trace_id(trace_id)
    logs, spans, truncated = state().queries.correlation(trace_id)
    if not logs and not spans:
        raise ApiError(404, "not_found", f"nothing is stored under trace id {trace_id}", "trace_id")
    return jsonify({"trace_id": trace_id, "logs": logs, "spans": spans, "truncated": truncated})


@blueprint.post("/cleanup")
def cleanup() -> Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", 'expected a JSON object such as {"older_than_days": 30}', "body")
    unknown = set(body) - {"older_than_days", "before", "pipeline_id", "dry_run"}
    if unknown:
        raise bad_parameter(sorted(unknown)[0], "unknown field")
    service = state()
    if ("older_than_days" in body) == ("before" in body):
        raise bad_parameter("older_than_days", "give exactly one of older_than_days or before")
    if "before" in body:
        if not isinstance(body["before"], str):
            raise bad_parameter("before", "must be an RFC 3339 time string")
        before = parse_time("before", body["before"])
    else:
        days = body["older_than_days"]
        if isinstance(days, bool) or not isinstance(days, int | float) or not 0 <= days <= 36500:
            raise bad_parameter("older_than_days", "must be a number of days from 0 to 36500")
        before = service.queries.retention_cutoff(days)
    pipeline_id = body.get("pipeline_id")
    if pipeline_id is not None and not isinstance(pipeline_id, str):
        raise bad_parameter("pipeline_id", "must be a string")
    if pipeline_id is not None:
        parse_identifier("pipeline_id", pipeline_id)
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise bad_parameter("dry_run", "must be true or false")
    deleted = service.queries.cleanup(before, pipeline_id, dry_run)
    return jsonify(
        {"deleted": deleted["logs"], "deleted_spans": deleted["spans"], "dry_run": dry_run,
         "before": format_time(before)}
    )  # fmt: skip
