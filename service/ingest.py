"""One OTLP export request, whatever carried it: wait for an ingest slot, decode, store, answer.

The HTTP routes (``service/routes/otlp.py``) and the gRPC services (``service/otlp_grpc.py``) parse
their transport's framing and hand the parsed request here; each maps the typed errors below to its
own status codes. Records are acknowledged only after they are stored, so a client's retry after a
failure is safe: the store keeps one copy of a record sent twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from exporters import otlp_codec as otlp
from instrumentation.telemetry import Telemetry
from service.state import ServiceState

# Seconds a client is told to wait when the store failed: long enough for a breaker or lock to clear.
STORE_RETRY_SECONDS = 5
# The answer to metrics (HTTP 404, gRPC UNIMPLEMENTED), which OTLP exporters take as final. An SDK at
# its defaults exports metrics too, so the message says what to set.
METRICS_NOT_RECEIVED = (
    "pipetrace receives logs (/v1/logs) and traces (/v1/traces), not metrics: "
    "set OTEL_METRICS_EXPORTER=none, or send metrics to an OpenTelemetry Collector"
)


@dataclass(frozen=True)
class Signal:
    """What differs between logs and traces on the way in: the request type, its decoder, where the
    records go and the response that reports them."""

    name: str
    request: Callable[[], Message]
    decode: Callable[[Any, otlp.Limits], otlp.Decoded]
    store: Callable[[Telemetry, list[Any]], bool]
    respond: Callable[[otlp.Decoded], Message]


LOGS = Signal("logs", ExportLogsServiceRequest, otlp.decode_logs, Telemetry.ingest_logs, otlp.logs_response)
TRACES = Signal(
    "traces", ExportTraceServiceRequest, otlp.decode_spans, Telemetry.ingest_spans, otlp.spans_response
)


class IngestError(Exception):
    """A request that was not stored at all. ``retry_after`` (seconds) is set when retrying may work."""

    retry_after: int | None = None


class InvalidRequest(IngestError):
    """Nothing in the request could be used (partial success is for requests with some good records)."""


class StoreUnavailable(IngestError):
    """The store refused the records; nothing of the request was acknowledged."""

    def __init__(self) -> None:
        self.retry_after = STORE_RETRY_SECONDS
        super().__init__(f"the store could not accept the records; retry in {self.retry_after} s")


class IngestSaturated(IngestError):
    """Every ingest slot stayed busy for the settings' wait: the store is the bottleneck."""

    def __init__(self) -> None:
        # Spread over 1-3 s: clients told the same second would all come back at once.
        self.retry_after = random.randint(1, 3)
        super().__init__(f"ingest is saturated; retry in {self.retry_after} s")


def receive(service: ServiceState, signal: Signal, request: Message) -> Message:
    """Store what ``request`` holds and return the OTLP response (with partial success, if any)."""
    # Back-pressure: a burst waits briefly for the store; when it cannot catch up, the client is told
    # to come back later instead of requests piling up without bound in the server's threads.
    if not service.ingest_slots.acquire(timeout=service.settings.ingest_wait_seconds):
        raise IngestSaturated()
    try:
        decoded = signal.decode(request, service.settings.receive_limits)
        if decoded.rejected and not decoded.records:
            raise InvalidRequest(decoded.error)
        if decoded.records and not signal.store(service.telemetry, decoded.records):
            raise StoreUnavailable()
        return signal.respond(decoded)
    finally:
        service.ingest_slots.release()
