"""Each rule kind's condition: the subjects for which it holds now, with what was found.

A condition returns ``{subject: finding}``; a subject (a pipeline id, an exporter's name, or '' for
the whole store) that is absent does not meet it. A finding is JSON: what fired (``summary``,
``value``) and where to look (``pipeline_id``, ``run_id``, ``trace_id``).
"""

from __future__ import annotations

import datetime
import statistics
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from exporters.store.alert_queries import AlertQueries
from service.params import LEVELS

Findings = dict[str, dict[str, Any]]
Counters = Callable[[], Mapping[str, Any]]


def _run_finding(run: Mapping[str, Any], summary: str, value: Any) -> dict[str, Any]:
    return {"summary": summary, "value": value, "pipeline_id": run["pipeline_id"], "run_id": run["id"],
            "trace_id": run.get("trace_id")}  # fmt: skip


def run_failed(queries: AlertQueries, definition: Mapping[str, Any], now: datetime.datetime) -> Findings:
    """The newest finished run of a pipeline failed (a later success clears it)."""
    found: Findings = {}
    for run in queries.latest_finished_runs(definition["pipeline_ids"], succeeded_only=False):
        if run["status"] == "failed":
            error = orjson.loads(run["error"]) if run["error"] else None
            message = error.get("message") if isinstance(error, dict) else None
            summary = f"run {run['id']} of pipeline {run['pipeline_id']} failed"
            finding = _run_finding(run, summary + (f": {message}" if message else ""), "failed")
            found[run["pipeline_id"]] = {**finding, "error": error}
    return found


def no_rows(queries: AlertQueries, definition: Mapping[str, Any], now: datetime.datetime) -> Findings:
    """The newest successful run loaded fewer than ``min_rows`` rows (into ``table``, when given)."""
    params = definition["params"]
    table, minimum = params["table"], params["min_rows"]
    found: Findings = {}
    for run in queries.latest_finished_runs(definition["pipeline_ids"], succeeded_only=True):
        loaded = orjson.loads(run["rows_loaded"]) if run["rows_loaded"] else {}
        count = int(loaded.get(table, 0)) if table else sum(int(n) for n in loaded.values())
        if count < minimum:
            where = f" into {table}" if table else ""
            summary = f"run {run['id']} of pipeline {run['pipeline_id']} loaded {count} rows{where}"
            found[run["pipeline_id"]] = _run_finding(run, f"{summary}, fewer than {minimum}", count)
    return found


def freshness(queries: AlertQueries, definition: Mapping[str, Any], now: datetime.datetime) -> Findings:
    """No run of a pipeline succeeded within ``window_seconds`` (counted from its creation if none did)."""
    window = datetime.timedelta(seconds=definition["params"]["window_seconds"])
    found: Findings = {}
    for row in queries.last_success(definition["pipeline_ids"]):
        last = row["last_success"] or row["created_at"]
        age = (now - last).total_seconds()
        if age > window.total_seconds():
            since = "its last success" if row["last_success"] else "it was defined, with no success"
            found[row["pipeline_id"]] = {
                "summary": f"pipeline {row['pipeline_id']}: {age:.0f} s since {since}",
                "value": round(age, 3), "pipeline_id": row["pipeline_id"], "run_id": None, "trace_id": None,
                "last_success": row["last_success"].isoformat() if row["last_success"] else None,
            }  # fmt: skip
    return found


def slow_run(queries: AlertQueries, definition: Mapping[str, Any], now: datetime.datetime) -> Findings:
    """The newest run (finished, or still running) took over ``factor`` times the median duration of
    the ``last_n`` successful runs before it; needs ``min_runs`` of those."""
    params = definition["params"]
    found: Findings = {}
    for pipeline_id, runs in queries.recent_runs(definition["pipeline_ids"], params["last_n"] + 1).items():
        newest, before = runs[0], runs[1:]
        durations = [
            (r["finished_at"] - r["started_at"]).total_seconds()
            for r in before if r["status"] == "succeeded" and r["finished_at"] is not None
        ]  # fmt: skip
        if len(durations) < params["min_runs"]:
            continue
        end = newest["finished_at"] if newest["status"] == "succeeded" else now
        took = (end - newest["started_at"]).total_seconds()
        median = statistics.median(durations)
        if took > params["factor"] * median:
            state = "took" if newest["status"] == "succeeded" else "has been running for"
            summary = (
                f"run {newest['id']} of pipeline {pipeline_id} {state} {took:.1f} s, over "
                f"{params['factor']:g} x the median {median:.1f} s of {len(durations)} runs"
            )
            found[pipeline_id] = {**_run_finding(newest, summary, round(took, 3)), "median": median}
    return found


def log_condition(queries: AlertQueries, definition: Mapping[str, Any], now: datetime.datetime) -> Findings:
    """More than ``threshold`` records matched in the last ``window_seconds`` (per named pipeline); or,
    with ``error_rate_percent``, more than that share of the matching records were at or above
    ``level``, over at least ``min_records`` records."""
    params = definition["params"]
    if params.get("error_rate_percent") is not None:
        return _error_rate(queries, definition, now)
    counts = queries.log_matches(
        since=now - datetime.timedelta(seconds=params["window_seconds"]),
        until=now,
        min_level=LEVELS[params["level"]] if params["level"] else 0,
        service_name=params["service_name"],
        text=params["text"],
        pipeline_ids=definition["pipeline_ids"],
    )
    found: Findings = {}
    for key, count in counts.items():
        if count > params["threshold"]:
            where = f"pipeline {key}" if key else "the store"
            found[key] = {
                "summary": f"{count} matching records in {where} in the last {params['window_seconds']:g} s, "
                f"over {params['threshold']}",
                "value": count, "pipeline_id": key or None, "run_id": None, "trace_id": None,
            }  # fmt: skip
    return found


def _error_rate(queries: AlertQueries, definition: Mapping[str, Any], now: datetime.datetime) -> Findings:
    params = definition["params"]
    counts = queries.log_rate(
        since=now - datetime.timedelta(seconds=params["window_seconds"]),
        until=now,
        min_level=LEVELS[params["level"]],
        service_name=params["service_name"],
        text=params["text"],
        pipeline_ids=definition["pipeline_ids"],
    )
    found: Findings = {}
    for key, (at_level, total) in counts.items():
        if total < params["min_records"]:
            continue
        percent = 100 * at_level / total
        if percent > params["error_rate_percent"]:
            where = f"pipeline {key}" if key else "the store"
            found[key] = {
                "summary": f"{at_level} of {total} matching records in {where} in the last "
                f"{params['window_seconds']:g} s were {params['level']} or above ({percent:.1f} %), "
                f"over {params['error_rate_percent']:g} %",
                "value": round(percent, 3), "records": total, "at_level": at_level,
                "pipeline_id": key or None, "run_id": None, "trace_id": None,
            }  # fmt: skip
    return found


class IngestHealth:
    """Breakers open, spools above a size, records dropped since the previous evaluation.

    Drop counters count from the service's start; the growth between two evaluations is what fires, so
    the condition clears once nothing more is dropped. The first evaluation after a start only takes
    the counts as a baseline."""

    def __init__(self, counters: Counters) -> None:
        self._counters = counters
        self._dropped: dict[tuple[str, str], int] = {}

    def __call__(
        self, queries: AlertQueries, definition: Mapping[str, Any], now: datetime.datetime
    ) -> Findings:
        params = definition["params"]
        found: Findings = {}
        for name, status in self._exporters().items():
            reasons: list[str] = []
            if params["breaker_open"] and status.get("breaker") not in (None, "closed"):
                reasons.append(f"breaker {status['breaker']}: {status.get('last_error')}")
            spooled = int((status.get("spool") or {}).get("records", 0))
            if params["spool_records_above"] is not None and spooled > params["spool_records_above"]:
                reasons.append(f"{spooled} records spooled, over {params['spool_records_above']}")
            dropped = int(status.get("dropped", 0)) + int(status.get("quarantined", 0))
            previous = self._dropped.get((definition["id"], name))
            self._dropped[(definition["id"], name)] = dropped
            grew = dropped - previous if previous is not None else 0
            if params["dropped_above"] is not None and grew > params["dropped_above"]:
                reasons.append(f"{grew} records dropped since the last evaluation")
            if reasons:
                found[name] = {"summary": f"{name}: " + "; ".join(reasons), "value": spooled,
                               "pipeline_id": None, "run_id": None, "trace_id": None}  # fmt: skip
        return found

    def _exporters(self) -> dict[str, Mapping[str, Any]]:
        counters = self._counters()
        exporters = {name: counters[name] for name in ("logs", "spans") if name in counters}
        exporters.update({f"forward:{name}": status for name, status in counters.get("forward", {}).items()})
        return exporters


Condition = Callable[[AlertQueries, Mapping[str, Any], datetime.datetime], Findings]


def conditions(counters: Counters) -> dict[str, Condition]:
    return {
        "run_failed": run_failed,
        "no_rows": no_rows,
        "freshness": freshness,
        "slow_run": slow_run,
        "log_condition": log_condition,
        "ingest_health": IngestHealth(counters),
    }
