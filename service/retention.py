"""Scheduled retention: delete telemetry older than ``LOG_RETENTION_DAYS``, every interval."""

from __future__ import annotations

import logging

from exporters.store.queries import LogQueries
from service.periodic import Periodic

_logger = logging.getLogger(__name__)


class RetentionWorker(Periodic):
    """A daemon thread that applies the retention period until stopped."""

    def __init__(self, queries: LogQueries, days: float, interval_seconds: float) -> None:
        self._queries = queries
        self._days = days
        super().__init__("retention", interval_seconds, self.run_once)

    def run_once(self) -> dict[str, int]:
        deleted = self._queries.cleanup(self._queries.retention_cutoff(self._days))
        if deleted["logs"] or deleted["spans"]:
            _logger.info(
                "retention removed %d logs and %d spans older than %g days",
                deleted["logs"], deleted["spans"], self._days,
            )  # fmt: skip
        return deleted
