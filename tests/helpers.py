"""Helpers to make telemetry the way outside programs do, with the official OTel SDK."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import TraceFlags

RESOURCE = Resource.create({"service.name": "test-client"})
SCOPE = InstrumentationScope("tests.helpers", "1.0")


def make_record(
    body: str = "hello",
    *,
    timestamp: int | None = None,
    trace_id: int = 0,
    span_id: int = 0,
    severity: SeverityNumber = SeverityNumber.INFO,
    attributes: dict[str, Any] | None = None,
    resource: Resource = RESOURCE,
) -> ReadableLogRecord:
    record = LogRecord(
        timestamp=timestamp if timestamp is not None else time.time_ns(),
        observed_timestamp=timestamp if timestamp is not None else time.time_ns(),
        severity_text=severity.name.rstrip("0123456789") if severity.name != "WARN" else "WARN",
        severity_number=severity,
        body=body,
        attributes=attributes or {},
    )
    record.trace_id = trace_id
    record.span_id = span_id
    record.trace_flags = TraceFlags(1 if trace_id else 0)
    writable = ReadWriteLogRecord(log_record=record, resource=resource, instrumentation_scope=SCOPE)
    return ReadableLogRecord(
        log_record=writable.log_record, resource=resource, instrumentation_scope=SCOPE, limits=writable.limits
    )


def make_records(
    count: int, start_ns: int, step_ns: int = 1_000_000, **kwargs: Any
) -> list[ReadableLogRecord]:
    return [make_record(f"record {i}", timestamp=start_ns + i * step_ns, **kwargs) for i in range(count)]


def bodies(logs: Sequence[dict[str, Any]]) -> list[str]:
    return [log["body"] for log in logs]


def wait_until(predicate: Any, timeout: float = 15.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return bool(predicate())
        time.sleep(interval)


class LockHolder:
    """Another process that opens a DuckDB file read-write, and so holds its lock, until released."""

    _PROGRAM = "import duckdb, sys; c = duckdb.connect({path!r}); print('held', flush=True); sys.stdin.read()"

    def __init__(self, path: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", self._PROGRAM.format(path=str(path))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "held"

    def release(self) -> None:
        """Let go of the lock: the holder exits when its stdin closes."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> LockHolder:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.release()
