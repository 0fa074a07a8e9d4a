"""The OTLP/HTTP receiver: ``POST /v1/logs`` and ``POST /v1/traces``, protobuf or JSON, gzip or plain.

Records are acknowledged only after they are stored, so a client's retry after a failure is safe:
the store keeps one copy of a record sent twice.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

import orjson
from flask import Blueprint, Response, request
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from exporters import otlp_codec as otlp
from service.settings import Settings
from service.state import state

blueprint = Blueprint("otlp", __name__)
_logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024
# An error's HTTP status -> its google.rpc code and the API's error code (JSON answers carry both).
_ERROR_CODES = {
    400: (3, "invalid_otlp"),  # INVALID_ARGUMENT
    404: (12, "signal_not_received"),  # UNIMPLEMENTED
    413: (3, "body_too_large"),
    415: (3, "unsupported_media_type"),
    429: (14, "ingest_saturated"),  # UNAVAILABLE: retry later, as Retry-After says
    503: (14, "store_unavailable"),
}


def _error(status: int, message: str, kind: str) -> Response:
    """An OTLP error body: a ``google.rpc.Status`` in the request's encoding."""
    code, api_code = _ERROR_CODES.get(status, (3, "invalid_otlp"))
    if kind == otlp.PROTOBUF:
        response = Response(Status(code=code, message=message).SerializeToString(), status=status,
                            content_type=otlp.PROTOBUF)  # fmt: skip
    else:
        # JSON clients get the Status fields plus the API's usual error object.
        payload = {"code": code, "message": message, "error": {"code": api_code, "message": message}}
        response = Response(orjson.dumps(payload), status=status, content_type=otlp.JSON)
    if status == 503:
        response.headers["Retry-After"] = "5"
    elif status == 429:
        # Spread over 1-3 s: clients told the same second would all come back at once.
        response.headers["Retry-After"] = str(random.randint(1, 3))
    return response


def _answer_kind() -> str:
    """The encoding to answer in: the request's, or JSON when it is not one OTLP knows."""
    with contextlib.suppress(otlp.OtlpError):
        return otlp.media_type(request.content_type)
    return otlp.JSON


def _receive(
    message: Callable[[], Message],
    decode: Callable[[Any, otlp.Limits], otlp.Decoded],
    store: Callable[[list[Any]], bool],
    respond: Callable[[otlp.Decoded], Message],
) -> Response:
    kind = _answer_kind()
    service = state()
    # Back-pressure: a burst waits briefly for the store; when it cannot catch up, the client is told
    # to come back later (429 + Retry-After, which the official OTLP exporters honour) instead of
    # requests piling up without bound in the server's threads.
    if not service.ingest_slots.acquire(timeout=service.settings.ingest_wait_seconds):
        return _error(429, "ingest is saturated; retry after the Retry-After header's seconds", kind)
    try:
        return _store(message, decode, store, respond, service.settings)
    finally:
        service.ingest_slots.release()


def _store(
    message: Callable[[], Message],
    decode: Callable[[Any, otlp.Limits], otlp.Decoded],
    store: Callable[[list[Any]], bool],
    respond: Callable[[otlp.Decoded], Message],
    settings: Settings,
) -> Response:
    kind = otlp.JSON
    limits = settings.receive_limits
    try:
        kind = otlp.media_type(request.content_type)
        body = otlp.decompress(request.get_data(cache=False), request.headers.get("Content-Encoding"),
                               MAX_BODY_BYTES)  # fmt: skip
        decoded = decode(otlp.parse(body, kind, message), limits)
    except otlp.OtlpError as exc:
        return _error(exc.status, str(exc), kind)
    if decoded.rejected and not decoded.records:
        # Nothing in the request could be used: the whole request is bad (partial success is for some).
        return _error(400, decoded.error, kind)
    if decoded.records and not store(decoded.records):
        # Retryable for the client (OTLP says 503); nothing of this request was acknowledged.
        return _error(503, "the store could not accept the records; retry later", kind)
    return Response(otlp.encode(respond(decoded), kind), status=200, content_type=kind)


@blueprint.post("/v1/logs")
def receive_logs() -> Response:
    return _receive(
        ExportLogsServiceRequest, otlp.decode_logs, state().telemetry.ingest_logs, otlp.logs_response
    )


@blueprint.post("/v1/traces")
def receive_traces() -> Response:
    return _receive(
        ExportTraceServiceRequest, otlp.decode_spans, state().telemetry.ingest_spans, otlp.spans_response
    )


@blueprint.post("/v1/metrics")
def refuse_metrics() -> Response:
    """Metrics are not stored here. An SDK left at its defaults exports them to this port too; the
    answer says why and what to do, and OTLP exporters log it and do not retry a 404."""
    return _error(
        404,
        "pipetrace receives logs (/v1/logs) and traces (/v1/traces), not metrics: "
        "set OTEL_METRICS_EXPORTER=none, or send metrics to an OpenTelemetry Collector",
        _answer_kind(),
    )
