"""What alert rules read: runs and logs, each by one statement that stays cheap on a large store.

Runs are few (one row per run); the log count reads only the rule's window, which DuckDB's zone maps
on the time-ordered ``logs`` table narrow to the row groups of that window. A rule's search text
narrows the window further to the hours the search index says can hold it (``search_index``): a
text found nowhere in the window reads no log row at all.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from exporters.store.connection import TelemetryStore
from exporters.store.search_index import needle_grams
from exporters.store.statements import records, statement

_LATEST_FINISHED_RUNS = statement("alert_latest_finished_runs")
_LAST_SUCCESS = statement("alert_last_success")
_RECENT_RUNS = statement("alert_recent_runs")
_LOG_MATCHES = statement("alert_log_matches")
_LOG_RATE = statement("alert_log_rate")


class AlertQueries:
    def __init__(self, store: TelemetryStore) -> None:
        self.store = store

    def for_one_evaluation(self, runs_per_pipeline: int = 0) -> AlertQueries:
        """Queries whose run reads are shared by the rules of one evaluation: each is read once for
        every pipeline and each rule takes its pipelines from it (50 rules cost a few scans of
        ``runs``, not 50). ``runs_per_pipeline``: the most recent runs per pipeline any rule reads,
        so that rules reading fewer share the one read."""
        return _SharedRunReads(self.store, runs_per_pipeline)

    def latest_finished_runs(self, pipeline_ids: Sequence[str], succeeded_only: bool) -> list[dict[str, Any]]:
        """The newest finished (or succeeded) run of each pipeline; all pipelines when none are named."""
        values = {"pipeline_ids": list(pipeline_ids), "succeeded_only": succeeded_only}
        return records(_LATEST_FINISHED_RUNS.run(self.store.cursor(), values))

    def last_success(self, pipeline_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Each defined pipeline's creation time and newest successful finish (None if never)."""
        return records(_LAST_SUCCESS.run(self.store.cursor(), {"pipeline_ids": list(pipeline_ids)}))

    def recent_runs(self, pipeline_ids: Sequence[str], per_pipeline: int) -> dict[str, list[dict[str, Any]]]:
        """The newest ``per_pipeline`` succeeded or running runs of each pipeline, newest first."""
        found: dict[str, list[dict[str, Any]]] = {}
        values = {"pipeline_ids": list(pipeline_ids), "per_pipeline": per_pipeline}
        for row in records(_RECENT_RUNS.run(self.store.cursor(), values)):
            found.setdefault(row["pipeline_id"], []).append(row)
        return found

    def log_matches(
        self,
        *,
        since: datetime.datetime,
        until: datetime.datetime,
        min_level: int,
        service_name: str | None,
        text: str | None,
        pipeline_ids: Sequence[str],
    ) -> dict[str, int]:
        """Matching records in [since, until): per pipeline when pipelines are named, else under ''."""
        values = self._log_values(since, until, min_level, service_name, text, pipeline_ids)
        if values is None:
            return {}
        return {
            row["key"]: int(row["matches"]) for row in records(_LOG_MATCHES.run(self.store.cursor(), values))
        }

    def _log_values(
        self,
        since: datetime.datetime,
        until: datetime.datetime,
        min_level: int,
        service_name: str | None,
        text: str | None,
        pipeline_ids: Sequence[str],
    ) -> dict[str, Any] | None:
        """A log rule's statement parameters; None when no hour of the window can match."""
        window = self._window(since, until, text)
        if window is None:
            return None
        return {
            "since_ns": window[0],
            "until_ns": window[1],
            "min_level": min_level,
            "service_name": service_name,
            "text": text,
            "pipeline_ids": list(pipeline_ids),
            "per_pipeline": bool(pipeline_ids),
        }

    def log_rate(
        self,
        *,
        since: datetime.datetime,
        until: datetime.datetime,
        min_level: int,
        service_name: str | None,
        text: str | None,
        pipeline_ids: Sequence[str],
    ) -> dict[str, tuple[int, int]]:
        """Records matching the filters in [since, until) and how many of them are at or above
        ``min_level``: (at level, all), keyed as ``log_matches`` keys its counts."""
        values = self._log_values(since, until, min_level, service_name, text, pipeline_ids)
        if values is None:
            return {}
        return {
            row["key"]: (int(row["at_level"]), int(row["matches"]))
            for row in records(_LOG_RATE.run(self.store.cursor(), values))
        }

    def _window(
        self, since: datetime.datetime, until: datetime.datetime, text: str | None
    ) -> tuple[int, int] | None:
        """[since, until) in epoch nanoseconds, narrowed to the hours that can hold ``text``; None
        when none can. A text that is not ASCII is not narrowed: Python's lowercasing of it may
        differ from DuckDB's, and the index holds DuckDB's."""
        since_ns, until_ns = _ns(since), _ns(until)
        grams = needle_grams(text.lower()) if text is not None and text.isascii() else set()
        if not grams:
            return since_ns, until_ns
        span = self.store.search_span(grams)
        if span is None:
            return None
        since_ns, until_ns = max(since_ns, span.start_ns), min(until_ns, span.end_ns)
        return (since_ns, until_ns) if since_ns < until_ns else None


class _SharedRunReads(AlertQueries):
    def __init__(self, store: TelemetryStore, runs_per_pipeline: int) -> None:
        super().__init__(store)
        self._runs_per_pipeline = runs_per_pipeline
        self._latest: dict[bool, list[dict[str, Any]]] = {}
        self._last_success: list[dict[str, Any]] | None = None
        self._recent: dict[int, dict[str, list[dict[str, Any]]]] = {}

    def latest_finished_runs(self, pipeline_ids: Sequence[str], succeeded_only: bool) -> list[dict[str, Any]]:
        if succeeded_only not in self._latest:
            self._latest[succeeded_only] = super().latest_finished_runs((), succeeded_only)
        return _of(self._latest[succeeded_only], pipeline_ids)

    def last_success(self, pipeline_ids: Sequence[str]) -> list[dict[str, Any]]:
        if self._last_success is None:
            self._last_success = super().last_success(())
        return _of(self._last_success, pipeline_ids)

    def recent_runs(self, pipeline_ids: Sequence[str], per_pipeline: int) -> dict[str, list[dict[str, Any]]]:
        read = max(per_pipeline, self._runs_per_pipeline)
        if read not in self._recent:
            self._recent[read] = super().recent_runs((), read)
        runs = {p: found[:per_pipeline] for p, found in self._recent[read].items()}
        return {p: r for p, r in runs.items() if p in pipeline_ids} if pipeline_ids else runs


def _of(rows: list[dict[str, Any]], pipeline_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of the named pipelines; all rows when none are named."""
    if not pipeline_ids:
        return list(rows)
    wanted = set(pipeline_ids)
    return [row for row in rows if row["pipeline_id"] in wanted]


def _ns(value: datetime.datetime) -> int:
    delta = value - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
