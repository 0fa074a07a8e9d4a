"""The planted-secrets corpus and the ordinary-data corpus, and a client program that emits them.

Each planted text is one format of issue 16 with a secret whose fragments (``Planted.fragments``) must
never be found anywhere Pipetrace keeps or sends data. :func:`emit` puts every text in every field an
OTel SDK client can fill: log bodies, attribute values (string, bytes, array, nested map), attribute
keys, log event names, scope names, resource attributes, span names, span event names and attributes,
link attributes, status messages, recorded exceptions (message and stack trace) and std logging.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, Status, StatusCode


@dataclass(frozen=True)
class Planted:
    text: str
    fragments: tuple[str, ...]  # none of these may be found


PLANTED = (
    Planted("export DB_PASSWORD=envpw-q1a", ("envpw-q1a",)),
    Planted("GITHUB_TOKEN=envtok-q1b ./deploy.sh", ("envtok-q1b",)),
    Planted("APP_SECRET=envsec-q1c", ("envsec-q1c",)),
    Planted("STRIPE_KEY=envkey-q1d", ("envkey-q1d",)),
    Planted("PGPASSWORD=pgpw-q1e psql -h db", ("pgpw-q1e",)),
    Planted("aws_secret_access_key = awssec-q1f", ("awssec-q1f",)),
    Planted("GET /callback?access_token=acctok-q1g&state=1", ("acctok-q1g",)),
    Planted("Cookie: session=cookiesess-q1h; theme=dark", ("cookiesess-q1h",)),
    Planted("cannot reach postgresql://app:urlpw-q1i@db/prod", ("urlpw-q1i",)),
    Planted("cache at redis://:redispw-q1j@cache:6379/0", ("redispw-q1j",)),
    Planted("mysql://u:sl4sh/pw-q1k@h/db failed", ("sl4sh", "pw-q1k")),
    Planted("https://u:m4il@pw-q1l@h/x refused", ("m4il", "pw-q1l")),
    Planted("ALTER USER app WITH PASSWORD 'sqlpw-q1m';", ("sqlpw-q1m",)),
    Planted("password=abcpw-q1n,tailpw-q1n next", ("abcpw-q1n", "tailpw-q1n")),
    Planted('password="spaced pw-q1o words" user=app', ("pw-q1o",)),
    Planted("client AKIAZ7Q4B6C8D0E2F4G6 denied", ("AKIAZ7Q4B6C8D0E2F4G6",)),
    Planted("GET https://api.test/items?api_key=qkey-q1p&page=2", ("qkey-q1p",)),
)
# Values whose key alone makes them secret: no pattern in the text would find them.
KEYED = {"db.password": "attrpw-q2a", "api.token": "restok-q2b", "client_secret": "clisec-q2c"}
NESTED_KEYED = ("password", "nestedpw-q2d")
BYTES_KEYED = ("auth.token", b"bytestok-q2e")

FRAGMENTS = (
    *(fragment for planted in PLANTED for fragment in planted.fragments),
    *KEYED.values(),
    NESTED_KEYED[1],
    BYTES_KEYED[1].decode(),
)
# What bytes attributes look like where they are kept as base64 (the store's typed JSON, the API).
BASE64_FRAGMENTS = (
    *(base64.b64encode(planted.text.encode()).decode() for planted in PLANTED),
    base64.b64encode(BYTES_KEYED[1]).decode(),
)

# Ordinary data: semantic-convention attributes, paths, "token" and "secret" as words. Kept as sent.
ORDINARY_ATTRIBUTES: dict[str, Any] = {
    "gen_ai.token.type": "input",
    "gen_ai.usage.input_tokens": 42,
    "csrf_token_present": "yes",
    "secret.manager.name": "vault",
    "http.request.method": "GET",
    "url.full": "https://example.test/search?q=token+bucket&page=2",
    "code.filepath": "/home/app/pipelines/secrets_loader.py",
    "process.command_line": "python -m app --password-file /run/secrets/db",
    "registry.url": "http://localhost:4873/@babel/core",
    "db.query.text": "SELECT id, token_count FROM usage WHERE secret_level = 2",
    "tags": ["token", "secret", "password policy"],
}
ORDINARY_BODIES = (
    "cwd via pwd: /home/app",
    "the token bucket refilled with 20 tokens",
    "token count: 5; the secret of good logs is context",
    "rotated the password policy: minimum 12 characters",
    "https://user@example.test/repo.git cloned",
    "primary_key=id, sort_key=created_at",
)


def _texts() -> Iterator[tuple[int, str]]:
    return enumerate(planted.text for planted in PLANTED)


def emit(log_exporter: LogRecordExporter, span_exporter: SpanExporter, tag: str) -> list[int]:
    """Send the planted corpus through the official SDK to the given exporters; return the trace ids."""
    resource = Resource.create(
        {
            "service.name": f"corpus-{tag}",
            "api.token": KEYED["api.token"],
            **{f"deployment.note.{i}": text for i, text in _texts()},
        }
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    std_logger = logging.getLogger(f"corpus.std.{tag}")
    std_logger.setLevel(logging.INFO)
    std_logger.propagate = False
    handler = LoggingHandler(logger_provider=logger_provider)
    std_logger.addHandler(handler)
    trace_ids = []
    try:
        for i, text in _texts():
            tracer = tracer_provider.get_tracer(f"scope {text}", "1.0")
            with tracer.start_as_current_span(
                f"span {text}", attributes={"detail": text, "db.password": KEYED["db.password"]}
            ) as span:
                trace_ids.append(span.get_span_context().trace_id)
                span.add_event(f"event {text}", {"detail": text, text: i})
                link_context = span.get_span_context()
                with tracer.start_as_current_span("linked", links=[Link(link_context, {"via": text})]):
                    pass
                try:
                    raise ConnectionError(text)
                except ConnectionError as exc:
                    span.record_exception(exc)
                    std_logger.exception("std logging: %s", text)
                span.set_status(Status(StatusCode.ERROR, f"status {text}"))
                std_logger.warning(text, extra={"detail": text, "client_secret": KEYED["client_secret"]})
                logger_provider.get_logger(f"scope {text}").emit(
                    severity_number=SeverityNumber.ERROR,
                    body=text,
                    event_name=f"event {text}",
                    attributes={
                        "detail": text,
                        "detail.bytes": text.encode(),
                        "detail.list": [text, "plain"],
                        "detail.map": {"inner": text, NESTED_KEYED[0]: NESTED_KEYED[1]},
                        BYTES_KEYED[0]: BYTES_KEYED[1],
                        text: "value of a key that holds a secret",
                    },
                )
                logger_provider.get_logger(f"corpus.map.{tag}").emit(body={"message": text, "n": i})
    finally:
        std_logger.removeHandler(handler)
        logger_provider.shutdown()
        tracer_provider.shutdown()
    return trace_ids


def emit_ordinary(log_exporter: LogRecordExporter, tag: str) -> None:
    """The ordinary corpus: each body with every ordinary attribute, and ``corpus.tag`` to find it."""
    logger_provider = LoggerProvider(resource=Resource.create({"service.name": f"ordinary-{tag}"}))
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    try:
        logger = logger_provider.get_logger("ordinary.scope")
        for body in ORDINARY_BODIES:
            logger.emit(
                severity_number=SeverityNumber.INFO,
                body=body,
                attributes={**ORDINARY_ATTRIBUTES, "corpus.tag": tag},
            )
    finally:
        logger_provider.shutdown()


def found_in(text: str) -> list[str]:
    """The planted fragments (plain or base64) that ``text`` holds."""
    return [fragment for fragment in (*FRAGMENTS, *BASE64_FRAGMENTS) if fragment in text]


def decoded_text(value: Any) -> str:
    """An API answer as text to search, with every OTLP/JSON ``bytesValue`` decoded beside it."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                parts.append(str(key))
                if key == "bytesValue" and isinstance(item, str):
                    parts.append(base64.b64decode(item).decode("latin-1"))
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        else:
            parts.append(str(node))

    walk(value)
    return "\n".join(parts)
