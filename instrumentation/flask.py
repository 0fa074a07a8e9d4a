"""Flask instrumentation: server spans, the trace id handed back to clients, one log line per request."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.propagators import (
    TraceResponsePropagator,
    get_global_response_propagator,
    set_global_response_propagator,
)
from opentelemetry.sdk.trace import TracerProvider

CORRELATION_HEADER = "X-Correlation-ID"
# OTLP ingest and probes are not traced: one span and one log line per export request would cost
# more than the records it carries, and would grow the store by itself. Nor are the web UI's static
# files (the page, its modules, the icon): the user's view would fill with the loading of itself.
# OTel matches each pattern with re.search over the FULL url, query string included, and splits the
# setting on commas: each is anchored at the path, so a search for "/healthz" (in ?q=) is still traced.
_ORIGIN = r"^[a-z]+://[^/?#]+"
DEFAULT_EXCLUDED_URLS = ",".join(
    f"{_ORIGIN}{path}"
    for path in (r"/v1/", r"/healthz(\?|$)", r"/readyz(\?|$)", r"/(\?|$)", r"/ui/", r"/favicon\.ico(\?|$)")
)

request_logger = logging.getLogger("pipetrace.http")


def instrument_app(
    app: Flask,
    tracer_provider: TracerProvider,
    *,
    request_logging: bool = True,
    excluded_urls: str | None = DEFAULT_EXCLUDED_URLS,
) -> None:
    """Trace every request, return its trace id, and log it once it is answered."""
    if get_global_response_propagator() is None:
        # Puts the W3C ``traceresponse`` header on every traced response.
        set_global_response_propagator(TraceResponsePropagator())
    FlaskInstrumentor().instrument_app(app, tracer_provider=tracer_provider, excluded_urls=excluded_urls)
    app.before_request(_start_clock)
    app.after_request(_correlation_header)
    if request_logging:
        app.after_request(_log_request)


def _start_clock() -> None:
    g.pipetrace_started = time.perf_counter()


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def _correlation_header(response: Response) -> Response:
    # Read from the active span rather than a Flask-instrumentation hook, so it also works when
    # ``opentelemetry-instrument`` has instrumented Flask itself.
    trace_id = current_trace_id()
    if trace_id is not None:
        response.headers[CORRELATION_HEADER] = trace_id
        exposed = response.headers.get("Access-Control-Expose-Headers")
        if not exposed or CORRELATION_HEADER not in exposed:
            response.headers["Access-Control-Expose-Headers"] = (
                f"{exposed}, {CORRELATION_HEADER}" if exposed else CORRELATION_HEADER
            )
    return response


def _sampled() -> bool:
    return trace.get_current_span().get_span_context().trace_flags.sampled


def _log_request(response: Response) -> Response:
    status = response.status_code
    if not _sampled() and status < 400:
        # An excluded route, or a request its caller asked not to record (a ``traceparent`` with the
        # sampled flag off, as the web UI sends with its reads): only its failures are worth a line.
        return response
    started = g.get("pipetrace_started")
    duration_ms = (time.perf_counter() - started) * 1000 if started is not None else None
    route = request.url_rule.rule if request.url_rule is not None else None
    level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
    request_logger.log(
        level,
        "%s %s %d%s",
        request.method,
        request.path,
        status,
        f" in {duration_ms:.1f} ms" if duration_ms is not None else "",
        extra={
            "http.request.method": request.method,
            "http.route": route or "",
            "url.path": request.path,
            "http.response.status_code": status,
            "duration_ms": round(duration_ms, 3) if duration_ms is not None else -1.0,
            "client.address": request.remote_addr or "",
        },
    )
    return response
