"""Scheduled retention: delete telemetry older than ``LOG_RETENTION_DAYS``, every interval."""

from __future__ import annotations

import logging
import threading

from service.query import LogQueries

_logger = logging.getLogger(__name__)


class RetentionWorker:
    """A daemon thread that applies the retention period until stopped."""

    def __init__(self, queries: LogQueries, days: float, interval_seconds: float) -> None:
        self._queries = queries
        self._days = days
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipetrace-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def run_once(self) -> dict[str, int]:
        deleted = self._queries.cleanup(self._queries.retention_cutoff(self._days))
        if deleted["logs"] or deleted["spans"]:
            _logger.info(
                "retention removed %d logs and %d spans older than %g days",
                deleted["logs"], deleted["spans"], self._days,
            )  # fmt: skip
        return deleted

    def _run(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception:
                _logger.exception("retention cleanup failed; will try again")
            if self._stop.wait(self._interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
