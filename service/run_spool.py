"""The service drains what pipeline runs spooled and could not send it.

A run that cannot reach the service spools its telemetry (``FALLBACK_DIRECTORY``, which the runner
sets to ``<data dir>/run-spool``) and replays it while it lives; a run that ends first would leave its
files until some later run replays them. So the service reads that folder itself, at start and then
every replay interval, through the OTLP receiver's own path: decoded with the receiver's limits, then
the service's processors (redaction first) and its acknowledging exporters. A file is removed only
once the store took its records. A run replaying the same file meanwhile does no harm: the store
keeps one copy of a record (its id) and of a span (trace and span id).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from exporters import otlp_codec as otlp
from exporters.spool import Spool
from instrumentation.telemetry import Telemetry
from service.periodic import Periodic

_logger = logging.getLogger(__name__)

# The run's OTLP exporters name their spool folders ``<sink>-<signal>`` (exporters.base).
_SINK = "otlp"


@dataclass(frozen=True)
class _Signal:
    name: str
    message: Callable[[], Message]
    decode: Callable[[Any, otlp.Limits], otlp.Decoded]
    ingest: Callable[[Sequence[Any]], bool]


class RunSpoolDrain(Periodic):
    """Stores what runs left in ``folder``: ``drain_once``, or every interval between ``start`` and
    ``stop``."""

    def __init__(
        self,
        folder: Path,
        telemetry: Telemetry,
        limits: otlp.Limits,
        interval_seconds: float,
        max_files: int,
    ) -> None:
        self._folder = folder
        self._limits = limits
        self._max_files = max_files
        self._signals = (
            _Signal("logs", ExportLogsServiceRequest, otlp.decode_logs, telemetry.ingest_logs),
            _Signal("traces", ExportTraceServiceRequest, otlp.decode_spans, telemetry.ingest_spans),
        )
        super().__init__("run-spool drain", interval_seconds, self.drain_once)

    def drain_once(self) -> int:
        """Store every spooled file it can, oldest first per signal; return how many items went in."""
        stored = 0
        for signal in self._signals:
            folder = self._folder / f"{_SINK}-{signal.name}"
            if folder.is_dir():
                stored += self._drain(Spool(folder, self._max_files), signal)
        if stored:
            _logger.info("stored %d records and spans that pipeline runs had spooled", stored)
        return stored

    def _drain(self, spool: Spool, signal: _Signal) -> int:
        stored = 0
        for batch in spool.pending():
            try:
                body = batch.path.read_bytes()
            except FileNotFoundError:
                continue  # a run replayed it meanwhile
            try:
                decoded = signal.decode(otlp.parse(body, otlp.JSON, signal.message), self._limits)
            except otlp.OtlpError as exc:
                with contextlib.suppress(FileNotFoundError):  # a run replayed it meanwhile
                    spool.quarantine(batch, str(exc))
                continue
            if decoded.records and not signal.ingest(decoded.records):
                return stored  # the store is not taking records now: the file waits for the next turn
            spool.remove(batch)
            stored += len(decoded.records)
        return stored
