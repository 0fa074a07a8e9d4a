"""A daemon thread that does one job now and then every interval until stopped (retention, the runs'
spool). The standard library's ``sched`` and ``threading.Timer`` run a job once; this is the loop
around it, with a stop that does not wait out the interval."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import duckdb

from exporters.store.connection import StoreUnavailable

_logger = logging.getLogger(__name__)


class Periodic:
    def __init__(
        self, name: str, interval_seconds: float, job: Callable[[], object], *, wait_first: bool = False
    ) -> None:
        self._name = name
        self._wait_first = wait_first
        self._interval = interval_seconds
        self._job = job
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pipetrace-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        if self._wait_first and self._stop.wait(self._interval):
            return
        while True:
            try:
                self._job()
            except (StoreUnavailable, duckdb.Error) as exc:
                # The store is away (locked, corrupt, full): /readyz and the store's own log say so
                # with the cause; a traceback per job would only repeat it.
                _logger.warning("%s skipped: %s; will try again in %g s", self._name, exc, self._interval)
            except Exception:
                _logger.exception("%s failed; will try again in %g s", self._name, self._interval)
            if self._stop.wait(self._interval):
                return

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
