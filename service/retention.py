"""Scheduled retention, every interval: telemetry older than ``LOG_RETENTION_DAYS`` and alert history
(transitions and the notifications they sent) older than ``PIPETRACE_ALERT_HISTORY_DAYS``."""

from __future__ import annotations

import datetime
import logging

from exporters.store.alerts import AlertStore
from exporters.store.queries import LogQueries
from service.periodic import Periodic

_logger = logging.getLogger(__name__)


class RetentionWorker(Periodic):
    """A daemon thread that applies the retention periods until stopped; a period of None keeps that
    kind of data."""

    def __init__(
        self,
        queries: LogQueries,
        days: float | None,
        interval_seconds: float,
        alerts: AlertStore | None = None,
        alert_history_days: float | None = None,
    ) -> None:
        self._queries = queries
        self._days = days
        self._alerts = alerts
        self._alert_history_days = alert_history_days
        super().__init__("retention", interval_seconds, self.run_once)

    def run_once(self) -> dict[str, int]:
        """Apply each period once; return how many of each kind were removed."""
        deleted = {"logs": 0, "spans": 0, "alert_history": 0, "alert_deliveries": 0}
        if self._days is not None:
            deleted.update(self._queries.cleanup(self._queries.retention_cutoff(self._days)))
            if deleted["logs"] or deleted["spans"]:
                _logger.info(
                    "retention removed %d logs and %d spans older than %g days",
                    deleted["logs"], deleted["spans"], self._days,
                )  # fmt: skip
        cut = _alert_cutoff(self._alert_history_days)
        if self._alerts is not None and cut is not None:
            history, deliveries = self._alerts.prune_history(cut)
            deleted.update(alert_history=history, alert_deliveries=deliveries)
            if history or deliveries:
                _logger.info(
                    "retention removed %d alert transitions and %d alert notifications older than %g days",
                    history, deliveries, self._alert_history_days,
                )  # fmt: skip
        return deleted


def _alert_cutoff(days: float | None) -> datetime.datetime | None:
    """The time ``days`` ago; None when there is no period, or it reaches back before year 1 (nothing
    is that old: a period that long keeps everything rather than fail every interval)."""
    if days is None:
        return None
    try:
        return datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)
    except OverflowError:
        return None
