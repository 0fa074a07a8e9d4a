"""Records numbered one by one, sent with the official OTel SDK exporter, and the reckoning after a
fault: every record the service acknowledged is stored exactly once."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs.export import LogRecordExportResult

from tests.conftest import LiveServer
from tests.helpers import make_record, wait_until

# Fast recovery, so a case takes seconds: one failed batch opens the breaker, which lets a trial
# through a second later, and the replayer looks every 0.2 s.
FAST_RECOVERY = {
    "MAX_RETRY_ATTEMPTS": "0",
    "RETRY_DELAY_SECONDS": "0",
    "CIRCUIT_BREAKER_THRESHOLD": "1",
    "CIRCUIT_BREAKER_TIMEOUT": "1",
    "PIPETRACE_REPLAY_INTERVAL": "0.2",
    "ENABLE_FLASK_LOGGING": "false",
}


@dataclass
class Ledger:
    """What was sent, by id, and what the service acknowledged."""

    name: str
    # Record time of the first record; now when unset.
    start_ns: int | None = None
    acknowledged: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    _next: int = 0

    def send(self, server: LiveServer, count: int, timeout: float = 5) -> bool:
        """One OTLP/HTTP request of ``count`` new records; True when the service acknowledged it. The
        exporter retries a 503 by itself until ``timeout``, as any OTel SDK client would."""
        ids = [f"{self.name}-{n:06d}" for n in range(self._next, self._next + count)]
        now = self.start_ns + self._next if self.start_ns is not None else time.time_ns()
        self._next += count
        records = [make_record(record_id, timestamp=now + n) for n, record_id in enumerate(ids)]
        exporter = OTLPLogExporter(endpoint=f"{server.url}/v1/logs", timeout=timeout)
        try:
            acknowledged = exporter.export(records) is LogRecordExportResult.SUCCESS
        finally:
            exporter.shutdown()
        (self.acknowledged if acknowledged else self.refused).update(ids)
        return acknowledged

    def stored(self, database: Path) -> Counter[str]:
        """How many times each of this ledger's ids is in ``database`` (read once the service stopped)."""
        with duckdb.connect(str(database), read_only=True) as con:
            rows = con.execute(
                "SELECT body, count(*) FROM logs WHERE starts_with(body, $prefix) GROUP BY body",
                {"prefix": f"{self.name}-"},
            ).fetchall()
        return Counter({body: int(n) for body, n in rows})

    def assert_each_acknowledged_stored_once(self, database: Path, *, some: bool = True) -> None:
        stored = self.stored(database)
        assert self.acknowledged or not some, "nothing was acknowledged: the case tested nothing"
        missing = sorted(self.acknowledged - set(stored))
        twice = sorted(body for body, n in stored.items() if n > 1)
        unknown = sorted(set(stored) - self.acknowledged - self.refused)
        assert (missing, twice, unknown) == ([], [], [])


def readiness(server: LiveServer) -> tuple[int, dict[str, Any]]:
    response = server.get("/readyz")
    return response.status_code, response.json()


def recovered(server: LiveServer, timeout: float = 30) -> bool:
    """Whether the service became ready and emptied its log spool within ``timeout`` seconds."""
    return wait_until(lambda: readiness(server)[0] == 200, timeout=timeout) and wait_until(
        lambda: readiness(server)[1]["ingest"]["logs"]["spool"]["files"] == 0, timeout=timeout
    )
