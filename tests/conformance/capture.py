"""A capturing proxy: what a client really sent, byte for byte, in front of a real ``pipetrace serve``.

The expected side of every comparison is decoded from these bytes, never from what the client meant
to send nor from Pipetrace's own decoder, so a client's quirks count as what it put on the wire.
"""

from __future__ import annotations

import http.client
import threading
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import grpc

# Headers that describe one hop of a connection, not the request (RFC 9110 7.6.1).
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host"}
)


@dataclass(frozen=True)
class Captured:
    """One request as the client sent it, and the status Pipetrace answered it with."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int


class CapturingProxy:
    """Records each request and forwards it to ``target``; the client gets Pipetrace's answer.

    The body and the request's own headers go on unchanged; only hop-by-hop framing is redone (a chunked
    body is forwarded with its Content-Length).
    """

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        assert parts.hostname is not None and parts.port is not None, target
        self._target = (parts.hostname, parts.port)
        self._lock = threading.Lock()
        self._requests: list[Captured] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="capturing-proxy", daemon=True
        )
        self._thread.start()

    def take(self, path: str) -> list[Captured]:
        """The requests to ``path`` captured since the last call, in arrival order, and forget them."""
        with self._lock:
            taken = [r for r in self._requests if r.path == path]
            self._requests = [r for r in self._requests if r.path != path]
        return taken

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _record(self, captured: Captured) -> None:
        with self._lock:
            self._requests.append(captured)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self._body()
                headers = {k.lower(): v for k, v in self.headers.items()}
                forwarded = {k: v for k, v in headers.items() if k not in _HOP_BY_HOP}
                connection = http.client.HTTPConnection(*proxy._target, timeout=30)
                try:
                    connection.request("POST", self.path, body=body, headers=forwarded)
                    answer = connection.getresponse()
                    content = answer.read()
                    answer_headers = [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP]
                finally:
                    connection.close()
                proxy._record(Captured("POST", self.path, headers, body, answer.status))
                self.send_response(answer.status)
                for name, value in answer_headers:
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def _body(self) -> bytes:
                """The body, whether framed by Content-Length or chunked (Node's exporters stream it)."""
                if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
                    return self.rfile.read(int(self.headers.get("Content-Length") or 0))
                chunks = []
                for _ in range(1_000_000):  # bounded: a body of a million chunks is not a test's
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()  # the CRLF after each chunk
                for _ in range(100):  # trailer lines (none expected) up to the empty line
                    if self.rfile.readline() in (b"\r\n", b"\n", b""):
                        break
                return b"".join(chunks)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: failures show in the comparison, not in stderr

        return Handler


# The OTLP/gRPC Export methods, and the HTTP path each one's capture is filed under.
GRPC_METHODS = {
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export": "/v1/logs",
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export": "/v1/traces",
}


class CapturingGrpcProxy:
    """The same for OTLP/gRPC: each Export call's message bytes (as grpcio hands them over, after its
    own message decompression) are recorded and sent on unchanged to Pipetrace's gRPC receiver."""

    def __init__(self, target: str, into: CapturingProxy) -> None:
        self._into = into
        self._channel = grpc.insecure_channel(target)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        for method in GRPC_METHODS:
            _, service, name = method.split("/")
            handler = grpc.unary_unary_rpc_method_handler(self._forwarder(method))
            self._server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, {name: handler}),)
            )
        port = self._server.add_insecure_port("127.0.0.1:0")
        self.target = f"127.0.0.1:{port}"
        self._server.start()

    def _forwarder(self, method: str) -> Any:
        call = self._channel.unary_unary(method)  # bytes in, bytes out: no (de)serializer

        def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
            metadata = {key.lower(): value for key, value in context.invocation_metadata()}
            try:
                answer: bytes = call(request, timeout=30)
                status = 200
            except grpc.RpcError as error:
                self._into._record(
                    Captured("POST", GRPC_METHODS[method], _grpc_headers(metadata), request, 500)
                )
                context.abort(error.code(), error.details() or "")
            self._into._record(
                Captured("POST", GRPC_METHODS[method], _grpc_headers(metadata), request, status)
            )
            return answer

        return forward

    def close(self) -> None:
        self._server.stop(grace=None)
        self._channel.close()


def _grpc_headers(metadata: dict[str, Any]) -> dict[str, str]:
    """What ``expect.decode`` needs: a gRPC message is protobuf. grpcio inflates a compressed message
    before any handler sees it, and keeps ``grpc-encoding`` to itself."""
    return {"content-type": "application/x-protobuf", **{key: str(value) for key, value in metadata.items()}}
