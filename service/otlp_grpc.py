"""The OTLP/gRPC receiver: ``LogsService/Export`` and ``TraceService/Export`` on their own port (4317 by
default), beside the HTTP server on the same host; ``MetricsService/Export`` answers UNIMPLEMENTED.

Only gRPC's concerns live here: the ingest token in ``authorization`` metadata, the message size limit
(gRPC measures it after its own gzip decompression), decoding the message and status codes. Storing is
``service.ingest``'s, shared with the HTTP routes, so both take the same slots, limits, redaction and
store path.
"""

from __future__ import annotations

import functools
import logging
import socket
from concurrent import futures
from typing import Any, NoReturn

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from exporters import otlp_codec as otlp
from service import ingest
from service.auth import token_problem
from service.settings import Settings
from service.state import ServiceState

_logger = logging.getLogger(__name__)

_CODES: dict[type[ingest.IngestError], grpc.StatusCode] = {
    ingest.InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    ingest.StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
    # Retryable only with RetryInfo, which every refusal with a delay carries (see _abort).
    ingest.IngestSaturated: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
# Where the official Python exporter looks for RetryInfo; other clients read the status details.
PYTHON_RETRY_INFO_KEY = "google.rpc.retryinfo-bin"


class ListenError(Exception):
    """The receiver's port cannot be bound; the message says which address and why."""


def _abort(
    context: grpc.ServicerContext, code: grpc.StatusCode, message: str, retry_after: int | None
) -> NoReturn:
    """End the call with ``code`` and a ``google.rpc.Status`` in ``grpc-status-details-bin``."""
    status = Status(code=code.value[0], message=message)
    trailers: list[tuple[str, bytes]] = []
    if retry_after is not None:
        info = RetryInfo(retry_delay=Duration(seconds=retry_after))
        status.details.add().Pack(info)
        trailers.append((PYTHON_RETRY_INFO_KEY, info.SerializeToString()))
    context.set_trailing_metadata([("grpc-status-details-bin", status.SerializeToString()), *trailers])
    context.abort(code, message)
    raise AssertionError("context.abort returned")  # it raises; this keeps NoReturn honest


class _Receiver:
    """The three services' calls: the ingest token check, then the shared receive step."""

    def __init__(self, service: ServiceState) -> None:
        self.service = service

    def authorize(self, context: grpc.ServicerContext) -> None:
        metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
        problem = token_problem(metadata.get("authorization"), self.service.settings.ingest_token_value)
        if problem is not None:
            _abort(
                context, grpc.StatusCode.UNAUTHENTICATED,
                f"this service needs the ingest token as 'authorization: Bearer <token>' metadata; "
                f"the token is {problem}", None,
            )  # fmt: skip

    def export(self, signal: ingest.Signal, body: bytes, context: grpc.ServicerContext) -> Message:
        self.authorize(context)
        try:
            request = otlp.parse(body, otlp.PROTOBUF, signal.request)
        except otlp.OtlpError as exc:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc), None)
        try:
            return ingest.receive(self.service, signal, request)
        except ingest.IngestError as exc:
            _abort(context, _CODES[type(exc)], str(exc), exc.retry_after)

    def refuse_metrics(self, body: bytes, context: grpc.ServicerContext) -> Message:
        """As ``POST /v1/metrics`` does; UNIMPLEMENTED is final for OTLP exporters."""
        self.authorize(context)
        _abort(context, grpc.StatusCode.UNIMPLEMENTED, ingest.METRICS_NOT_RECEIVED, None)

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        """The three services, named by opentelemetry-proto's descriptors.

        Not the generated ``add_*Servicer_to_server`` helpers: they decode the request before any of
        our code runs, and gRPC answers a message that does not decode INTERNAL ("Exception
        deserializing request!") with a logged traceback. Taking the bytes lets ``otlp.parse`` refuse
        it as HTTP does: INVALID_ARGUMENT, naming the problem.
        """
        services = (
            (logs_service_pb2, "LogsService", functools.partial(self.export, ingest.LOGS)),
            (trace_service_pb2, "TraceService", functools.partial(self.export, ingest.TRACES)),
            (metrics_service_pb2, "MetricsService", self.refuse_metrics),
        )
        return [
            grpc.method_handlers_generic_handler(
                module.DESCRIPTOR.services_by_name[name].full_name,
                {"Export": grpc.unary_unary_rpc_method_handler(export, response_serializer=_serialize)},
            )
            for module, name, export in services
        ]


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def grpc_address(host: str, port: int) -> str:
    """``host:port`` as gRPC takes it: an IPv6 literal goes in brackets."""
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _probe(host: str, port: int) -> None:
    """Bind a plain socket first: gRPC reports a failed bind only as "Failed to bind" (and logs its
    reason to stderr itself), while the socket's error says why, e.g. "Address already in use"."""
    address = grpc_address(host, port)
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            # As gRPC does: a port held only by connections in TIME_WAIT is free to listen on.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(sockaddr)
    except OSError as exc:
        raise ListenError(f"cannot listen on {address} (OTLP/gRPC): {exc.strerror or exc}") from exc


class OtlpGrpcServer:
    """The gRPC server: bound when built (so a taken port stops start-up before anything is opened),
    serving once :meth:`start` hands it the service. Port 0 binds a free port (``address`` says which);
    ``pipetrace serve`` reads 0 as "no gRPC receiver" and does not build one."""

    def __init__(self, settings: Settings) -> None:
        _probe(settings.host, settings.grpc_port)
        self._executor = futures.ThreadPoolExecutor(settings.threads, thread_name_prefix="otlp-grpc")
        options: list[tuple[str, Any]] = [
            # The same limit as HTTP's body; gRPC answers a larger message RESOURCE_EXHAUSTED itself.
            ("grpc.max_receive_message_length", settings.max_request_bytes),
            # gRPC sets SO_REUSEPORT by default, which would let a second service share the port silently.
            ("grpc.so_reuseport", 0),
        ]
        self._server = grpc.server(self._executor, options=options)
        address = grpc_address(settings.host, settings.grpc_port)
        try:
            self.port: int = self._server.add_insecure_port(address)
        except RuntimeError as exc:
            self.close()
            raise ListenError(f"cannot listen on {address} (OTLP/gRPC): {exc}") from exc
        self.address = grpc_address(settings.host, self.port)

    def start(self, service: ServiceState) -> None:
        self._server.add_generic_rpc_handlers(_Receiver(service).handlers())
        self._server.start()
        _logger.info("OTLP/gRPC receiver listening on %s", self.address)

    def close(self, grace: float | None = None) -> None:
        """Refuse new calls, let those in flight finish for up to ``grace`` seconds, then stop."""
        self._server.stop(grace).wait()
        self._executor.shutdown(wait=True)
