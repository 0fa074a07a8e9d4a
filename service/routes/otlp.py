"""The OTLP/HTTP receiver: ``POST /v1/logs`` and ``POST /v1/traces``, protobuf or JSON, gzip or plain.

Only HTTP's concerns live here (media type, Content-Encoding, the body limit, status codes); storing a
request is ``service.ingest``'s, shared with the gRPC receiver.
"""

from __future__ import annotations

import contextlib
import logging

import orjson
from flask import Blueprint, Response, request
from google.rpc.status_pb2 import Status

from exporters import otlp_codec as otlp
from service import ingest
from service.state import state

blueprint = Blueprint("otlp", __name__)
_logger = logging.getLogger(__name__)

# An error's HTTP status -> its google.rpc code and the API's error code (JSON answers carry both).
_ERROR_CODES = {
    400: (3, "invalid_otlp"),  # INVALID_ARGUMENT
    404: (12, "signal_not_received"),  # UNIMPLEMENTED
    413: (3, "body_too_large"),
    415: (3, "unsupported_media_type"),
    429: (14, "ingest_saturated"),  # UNAVAILABLE: retry later, as Retry-After says
    503: (14, "store_unavailable"),
}
# The HTTP status of each way the shared receive step can refuse a request.
_STATUS: dict[type[ingest.IngestError], int] = {
    ingest.InvalidRequest: 400,
    ingest.IngestSaturated: 429,  # the official OTLP/HTTP exporters honour its Retry-After
    ingest.StoreUnavailable: 503,  # retryable for the client, as OTLP says
}


def _error(status: int, message: str, kind: str, retry_after: int | None = None) -> Response:
    """An OTLP error body: a ``google.rpc.Status`` in the request's encoding."""
    code, api_code = _ERROR_CODES.get(status, (3, "invalid_otlp"))
    if kind == otlp.PROTOBUF:
        response = Response(Status(code=code, message=message).SerializeToString(), status=status,
                            content_type=otlp.PROTOBUF)  # fmt: skip
    else:
        # JSON clients get the Status fields plus the API's usual error object.
        payload = {"code": code, "message": message, "error": {"code": api_code, "message": message}}
        response = Response(orjson.dumps(payload), status=status, content_type=otlp.JSON)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _answer_kind() -> str:
    """The encoding to answer in: the request's, or JSON when it is not one OTLP knows."""
    with contextlib.suppress(otlp.OtlpError):
        return otlp.media_type(request.content_type)
    return otlp.JSON


def _receive(signal: ingest.Signal) -> Response:
    """HTTP's part of a request: media type, Content-Encoding, the size limit and status codes."""
    kind = _answer_kind()
    service = state()
    try:
        kind = otlp.media_type(request.content_type)
        body = otlp.decompress(request.get_data(cache=False), request.headers.get("Content-Encoding"),
                               service.settings.max_request_bytes)  # fmt: skip
        answer = ingest.receive(service, signal, otlp.parse(body, kind, signal.request))
    except otlp.OtlpError as exc:
        return _error(exc.status, str(exc), kind)
    except ingest.IngestError as exc:
        return _error(_STATUS[type(exc)], str(exc), kind, exc.retry_after)
    return Response(otlp.encode(answer, kind), status=200, content_type=kind)


@blueprint.post("/v1/logs")
def receive_logs() -> Response:
    return _receive(ingest.LOGS)


@blueprint.post("/v1/traces")
def receive_traces() -> Response:
    return _receive(ingest.TRACES)


@blueprint.post("/v1/metrics")
def refuse_metrics() -> Response:
    """Metrics are not stored here. An SDK left at its defaults exports them to this port too; the
    answer says why and what to do, and OTLP exporters log it and do not retry a 404."""
    return _error(404, ingest.METRICS_NOT_RECEIVED, _answer_kind())
