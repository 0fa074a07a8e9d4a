"""Stores that fail on purpose, wrapped around a real DuckDB store (the failure is the only fake)."""

from __future__ import annotations

import errno
import random
import threading

import pyarrow as pa

from exporters.records import LogRows
from exporters.store import TelemetryStore


class FailingStore(TelemetryStore):
    """A real store whose inserts fail while ``failing`` is set; counts the inserts it was asked for."""

    def __init__(self, path: str, error: Exception | None = None) -> None:
        super().__init__(path)
        self.failing = False
        self.error = error or OSError(errno.ENOSPC, "No space left on device")
        self.calls = 0
        self._calls_lock = threading.Lock()

    def _maybe_fail(self) -> None:
        with self._calls_lock:
            self.calls += 1
        if self.failing:
            raise self.error

    def insert_logs(self, batch: LogRows) -> int:
        self._maybe_fail()
        return super().insert_logs(batch)

    def insert_spans(self, batch: pa.Table) -> int:
        self._maybe_fail()
        return super().insert_spans(batch)


class FlakyStore(FailingStore):
    """Fails a fixed share of inserts at random (seeded, so a failure reproduces)."""

    def __init__(self, path: str, failure_rate: float, seed: int = 7) -> None:
        super().__init__(path, RuntimeError("flaky store"))
        self._random = random.Random(seed)
        self.failure_rate = failure_rate

    def _maybe_fail(self) -> None:
        self.failing = self._random.random() < self.failure_rate
        super()._maybe_fail()
