"""Secrets are scrubbed before any exporter sees a record: unit cases, then the service end to end."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from pathlib import Path

import duckdb
import pytest
from flask.testing import FlaskClient
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceFlags
from pydantic import ValidationError

from exporters.log_exporter import DuckDBLogRecordExporter
from exporters.span_exporter import DuckDBSpanExporter
from instrumentation import secret_patterns
from instrumentation.redaction import MASK, Redactor, redact_text, redact_value
from instrumentation.telemetry import Export, Telemetry
from service.settings import Settings
from service.state import ServiceState
from tests.exporters.fakes import FailingStore
from tests.helpers import RESOURCE, make_record
from tests.security.corpus import ORDINARY_ATTRIBUTES, ORDINARY_BODIES, PLANTED, Planted

SECRETS = {
    "postgresql+psycopg2://app:pw-4f3e2d1c@db:5432/shop": "pw-4f3e2d1c",
    "connecting with password=hunter2-9x and user=app": "hunter2-9x",
    'payload {"api_key": "key-77aa66bb"}': "key-77aa66bb",
    "Authorization: Bearer tok-1234567890abcdef": "tok-1234567890abcdef",
    "client used AKIAIOSFODNN7EXAMPLE": "AKIAIOSFODNN7EXAMPLE",
    "session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N": "eyJhbGciOiJIUzI1NiJ9",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----": "MIIEowIBAAKCAQEA",
    "secret: s3cr3t-value-x": "s3cr3t-value-x",
}
HARMLESS = ["Extracted 10 rows from resource orders", "token count: 5", "GET /api/logs/stats 200 in 3.1 ms",
            "https://example.test/path?page=2"]  # fmt: skip


@pytest.mark.parametrize("text", sorted(SECRETS))
def test_secrets_are_masked(text: str) -> None:
    cleaned = redact_text(text)
    assert SECRETS[text] not in cleaned and MASK in cleaned


@pytest.mark.parametrize("text", HARMLESS)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_attribute_values_and_secret_keys() -> None:
    assert redact_value("db.password", "plain") == MASK
    assert redact_value("http.request.header.authorization", ["Basic abc"]) == [MASK]
    assert redact_value("url.full", "https://u:p4ss@h/x") == "https://u:***@h/x"
    assert redact_value("nested", {"token": "t-1", "n": 3}) == {"token": MASK, "n": 3}
    assert redact_value("rows", 12) == 12


def test_no_planted_secret_reaches_the_store(client: FlaskClient, service: ServiceState) -> None:
    logger = logging.getLogger("app.secrets")
    for text in SECRETS:
        logger.warning(text, extra={"db.password": "attr-pw-5566", "conn": "mysql://u:attr-url-pw@h/db"})
    try:
        raise ConnectionError("cannot reach postgresql://app:trace-pw-8899@db/shop")
    except ConnectionError:
        logger.exception("connection failed")
    received = [make_record(text, attributes={"api_key": "otlp-key-1122", "note": f"token={i}-otlp-tok"})
                for i, text in enumerate(SECRETS)]  # fmt: skip
    response = client.post("/v1/logs", data=encode_logs(received).SerializeToString(),
                           headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
    assert response.status_code == 200
    service.telemetry.force_flush()
    planted = [
        *SECRETS.values(),
        "attr-pw-5566",
        "attr-url-pw",
        "trace-pw-8899",
        "otlp-key-1122",
        "0-otlp-tok",
    ]
    cursor = service.store.cursor()
    stored = cursor.execute("SELECT count(*) FROM logs").fetchone()
    assert stored is not None and stored[0] >= 2 * len(SECRETS)
    for secret in planted:
        for column in ("body", "attributes"):
            hits = cursor.execute(
                f"SELECT count(*) FROM logs WHERE contains({column}, ?)", [secret]
            ).fetchone()
            assert hits == (0,), f"{secret} stored in {column}"
    assert (
        service.store.cursor().execute("SELECT count(*) FROM logs WHERE contains(body, '***')").fetchone()[0]
        > 0
    )


def test_configured_patterns_and_allowed_keys() -> None:
    redactor = Redactor(extra_patterns=[r"acct-[0-9]{6}"], allowed_keys=["db.password_policy"])
    assert redactor.text("charged acct-123456 today") == f"charged {MASK} today"
    assert redactor.value("note", "acct-654321 and password=pw-1") == f"{MASK} and password={MASK}"
    assert redactor.value("db.password_policy", "min 12 chars") == "min 12 chars"  # allowed key
    assert redactor.value("db.password", "plain") == MASK  # still masked


def test_bad_configured_pattern_is_refused_with_its_name() -> None:
    with pytest.raises(ValidationError, match=r"redact_patterns|PIPETRACE_REDACT_PATTERNS"):
        Settings(redact_patterns=["acct-[0-9"])


def _span_with_secrets(trace_id: int) -> ReadableSpan:
    context = SpanContext(trace_id, 0x1122334455667788, is_remote=False, trace_flags=TraceFlags(1))
    return ReadableSpan(
        name="load",
        context=context,
        resource=RESOURCE,
        attributes={"db.connection_string": "postgresql://app:span-pw-3141@db/x", "rows": 3,
                    "http.url": "https://h/x?token=span-tok-2718"},
        events=[Event("retry", {"detail": "password=event-pw-1618"}, 1_700_000_000_000_000_000)],
        links=[Link(context, {"via": "secret: link-secret-1414"})],
        status=Status(StatusCode.ERROR, "auth failed for mysql://u:status-pw-1732@h/db"),
        start_time=1_700_000_000_000_000_000,
        end_time=1_700_000_001_000_000_000,
    )  # fmt: skip


SPAN_SECRETS = ["span-pw-3141", "span-tok-2718", "event-pw-1618", "link-secret-1414", "status-pw-1732"]


def test_spans_are_redacted_and_a_clean_span_is_not_copied() -> None:
    span = _span_with_secrets(0xABC)
    cleaned = Redactor().span(span)
    assert cleaned is not span
    events = [dict(event.attributes or {}) for event in cleaned.events]
    links = [dict(link.attributes or {}) for link in cleaned.links]
    text = repr((dict(cleaned.attributes or {}), events, links, cleaned.status.description))
    assert not [secret for secret in SPAN_SECRETS if secret in text]
    assert cleaned.attributes is not None and cleaned.attributes["rows"] == 3
    plain = ReadableSpan(name="ok", context=span.context, attributes={"rows": 1}, resource=RESOURCE)
    assert Redactor().span(plain) is plain


def _every_text_value(service: ServiceState) -> str:
    """Every text column of every table, read through SQL (the file itself stores strings compressed)."""
    cursor = service.store.cursor()
    columns = cursor.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE data_type = 'VARCHAR'"
    ).fetchall()
    parts = []
    for table, column in columns:
        parts.extend(str(v[0]) for v in cursor.execute(f'SELECT "{column}" FROM "{table}"').fetchall())
    return "\n".join(parts)


def test_no_planted_secret_reaches_the_store_or_its_files(
    client: FlaskClient, service: ServiceState, tmp_path: Path
) -> None:
    # The service's own span of a request whose URL holds a token, and received spans.
    assert client.get("/api/logs/stats?token=query-tok-9898").status_code == 400
    request = ExportTraceServiceRequest()
    request.ParseFromString(encode_spans([_span_with_secrets(0xDEF)]).SerializeToString())
    response = client.post("/v1/traces", data=request.SerializeToString(),
                           headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
    assert response.status_code == 200
    service.telemetry.force_flush()
    stored = _every_text_value(service)
    assert "span-pw" not in stored and "load" in stored  # the received span is there, scrubbed
    planted = [*SPAN_SECRETS, "query-tok-9898"]
    assert not [secret for secret in planted if secret in stored]
    service.store.cursor().execute("CHECKPOINT")
    raw = b"".join(path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())
    assert not [secret for secret in planted if secret.encode() in raw]


def test_spooled_batches_hold_no_secret(tmp_path: Path) -> None:
    """While the store is down, batches wait in spool files: scrubbed before they are written."""
    store = FailingStore(str(tmp_path / "down.duckdb"))
    store.failing = True
    spool = tmp_path / "spool"
    log_exporter = DuckDBLogRecordExporter(store=store, fallback_directory=str(spool), max_retry_attempts=0)
    span_exporter = DuckDBSpanExporter(store=store, fallback_directory=str(spool), max_retry_attempts=0)
    telemetry = Telemetry(
        resource=RESOURCE,
        log_exporters=[Export(log_exporter, simple=True, acknowledges=True)],
        span_exporters=[Export(span_exporter, simple=True, acknowledges=True)],
    )
    logger = logging.getLogger("spool.secrets")
    telemetry.bridge_logging("INFO", logger)
    try:
        for text in SECRETS:
            logger.warning(text, extra={"api_key": "spool-key-5151"})
        telemetry.ingest_spans([_span_with_secrets(0x5EC)])
        telemetry.force_flush()
        files = [path for path in spool.rglob("*") if path.is_file()]
        assert len(files) >= 2  # logs and spans were spooled
        raw = b"".join(path.read_bytes() for path in files)
        planted = [*SECRETS.values(), *SPAN_SECRETS, "spool-key-5151"]
        assert not [secret for secret in planted if secret.encode() in raw]
        assert b"***" in raw
    finally:
        telemetry.shutdown()
        log_exporter.shutdown()
        span_exporter.shutdown()


@pytest.mark.parametrize("planted", PLANTED, ids=lambda planted: planted.text[:30])
def test_every_planted_format_is_masked(planted: Planted) -> None:
    cleaned = redact_text(planted.text)
    assert MASK in cleaned and not [fragment for fragment in planted.fragments if fragment in cleaned]


@pytest.mark.parametrize("text", [*ORDINARY_BODIES, *(f'{k}="{v}"' for k, v in ORDINARY_ATTRIBUTES.items())])
def test_ordinary_data_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def _semantic_convention_keys() -> set[str]:
    keys: set[str] = set()
    for package in ("opentelemetry.semconv.attributes", "opentelemetry.semconv._incubating.attributes"):
        modules = pkgutil.iter_modules(importlib.import_module(package).__path__)
        for module in modules:
            members = vars(importlib.import_module(f"{package}.{module.name}"))
            keys |= {value for name, value in members.items() if name.isupper() and isinstance(value, str)}
    return keys


def test_no_semantic_convention_attribute_is_masked_by_its_key() -> None:
    keys = _semantic_convention_keys()
    assert len(keys) > 500 and "gen_ai.token.type" in keys
    redactor = Redactor()
    assert not [key for key in keys if redactor.value(key, "input") != "input"]
    assert not [key for key in keys if redact_text(f'{key}="input"') != f'{key}="input"']


def test_a_key_is_secret_only_when_its_last_segment_is_a_secret_word() -> None:
    secret = ["db.password", "api.token", "client_secret", "x-api-key", "http.request.header.authorization",
              "http.request.header.cookie", "PASSWORD", "aws.secret_access_key"]  # fmt: skip
    ordinary = ["gen_ai.token.type", "csrf_token_present", "secret.manager.name", "token_count",
                "db.password_policy", "gen_ai.usage.input_tokens", "feature_flag.key", "pwd"]  # fmt: skip
    assert [key for key in secret if redact_value(key, "v-1") != MASK] == []
    assert [key for key in ordinary if redact_value(key, "v-1") != "v-1"] == []


def test_every_value_type_and_the_keys_are_redacted() -> None:
    redactor = Redactor()
    assert redactor.value("blob", b"dsn postgresql://u:bpw-1@h/db") == b"dsn postgresql://u:***@h/db"
    binary = b"\xff\x00 password=bin-pw-2 \xfe"
    assert redactor.value("blob", binary) == b"\xff\x00 password=*** \xfe"
    assert redactor.value("blob", b"\xff\x00plain") == b"\xff\x00plain"
    assert redactor.value("auth.token", b"raw") == MASK.encode()
    assert redactor.value("list", ["ok", "password=lpw-3", b"token=ltok-4"]) == [
        "ok",
        "password=***",
        b"token=***",
    ]
    nested = {"outer": {"password": "npw-5", "note": "redis://:npw-6@cache"}, "n": 1}
    assert redactor.value("map", nested) == {
        "outer": {"password": MASK, "note": "redis://:***@cache"},
        "n": 1,
    }
    cleaned = redactor.attributes({"a": 1, "postgresql://u:kpw-7@h/db": "x", "z": 2})
    assert cleaned is not None and list(cleaned) == ["a", "postgresql://u:***@h/db", "z"]
    assert redactor.attributes({"gen_ai.token.type": "input", "rows": 3}) is None  # nothing to redact


def test_every_text_of_a_log_record_is_redacted_in_place() -> None:
    readable = make_record(
        "login with password=body-pw-8", attributes={"first": 1, "DB_PASSWORD=kpw-9": "v", "last": 2}
    )
    record = ReadWriteLogRecord(
        log_record=readable.log_record,
        resource=Resource.create({"service.name": "r", "api.token": "res-tok-11"}),
        instrumentation_scope=InstrumentationScope("scope redis://:scope-pw-12@cache", "1.0"),
    )
    record.log_record.event_name = "retry access_token=ev-tok-10"
    Redactor().log_record(record)
    log = record.log_record
    scope = record.instrumentation_scope
    texts = repr((log.body, dict(log.attributes or {}), log.event_name, dict(record.resource.attributes),
                  scope.name if scope else None))  # fmt: skip
    assert not [s for s in ("body-pw-8", "kpw-9", "ev-tok-10", "res-tok-11", "scope-pw-12") if s in texts]
    assert list(record.log_record.attributes or {}) == ["first", "DB_PASSWORD=***", "last"]  # order kept
    assert record.resource is not None and record.resource.attributes["service.name"] == "r"


def test_span_names_event_names_scope_and_resource_are_redacted() -> None:
    context = SpanContext(0xA1, 0xB2, is_remote=False, trace_flags=TraceFlags(1))
    span = ReadableSpan(
        name="connect mysql://u:name-pw-13@h/db",
        context=context,
        resource=Resource.create({"deployment.note": "PGPASSWORD=res-pw-14"}),
        events=[Event("retry Cookie: session=ev-cookie-15", {}, 1)],
        instrumentation_scope=InstrumentationScope("scope STRIPE_KEY=scope-key-16"),
        start_time=1,
        end_time=2,
    )
    cleaned = Redactor().span(span)
    texts = repr((cleaned.name, [e.name for e in cleaned.events], dict(cleaned.resource.attributes),
                  cleaned.instrumentation_scope.name if cleaned.instrumentation_scope else None))  # fmt: skip
    assert not [s for s in ("name-pw-13", "res-pw-14", "ev-cookie-15", "scope-key-16") if s in texts]
    assert cleaned.name == "connect mysql://u:***@h/db"


# One sample of every token format (detect-secrets' detectors and ours), as the prefilter must see it.
TOKEN_SAMPLES = [
    "AKIAZ7Q4B6C8D0E2F4G6", 'aws_key = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY12"',
    "AccountKey=" + "a" * 86 + "==", "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe." + "x" * 27, "ghp_" + "a" * 36,
    "glpat-" + "a" * 20, "GR1348941" + "a" * 20,
    "glcbt-" + "a" * 20, "glimt-" + "a" * 25, "glptt-" + "a" * 40, "glagent-" + "a" * 50, "gloas-" + "a" * 64,
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "0123456789abcdef0123456789abcdef-us12",
    "//registry.npmjs.org/:_authToken=npm_abcdef", "sk-" + "a" * 20 + "T3BlbkFJ" + "b" * 20,
    "pypi-AgEIcHlwaS5vcmc" + "a" * 70, "pypi-AgENdGVzdC5weXBpLm9yZw" + "a" * 70,
    "SG." + "a" * 22 + "." + "b" * 43,
    "xoxb-123456-abcdef", "https://hooks.slack.com/services/T000/B000/XXXX", "sq0csp-" + "a" * 43,
    "sk_live_" + "a" * 24, "123456789:" + "A" * 35, "AC" + "a" * 32, "SK" + "b" * 32, "AIza" + "a" * 35,
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
]  # fmt: skip


def test_every_token_format_passes_the_prefilter_and_is_masked() -> None:
    unmatched = [
        p.pattern for p in secret_patterns._TOKEN_FORMATS if not any(p.search(s) for s in TOKEN_SAMPLES)
    ]
    assert unmatched == []  # a format without a sample: add one
    for sample in TOKEN_SAMPLES:
        assert secret_patterns.might_hold_secret(f"seen {sample} here"), sample
        cleaned = redact_text(f"seen {sample} here")
        assert MASK in cleaned and sample not in cleaned


def test_the_store_exporters_redact_when_a_program_uses_them_on_their_own(tmp_path: Path) -> None:
    """The ``duckdb`` entry points in any OTel SDK program: no Pipetrace processor ran before them."""
    path = tmp_path / "own.duckdb"
    resource = Resource.create({"service.name": "own", "api.token": "own-res-tok-1"})
    logger_provider = LoggerProvider(resource=resource)
    log_exporter = DuckDBLogRecordExporter(str(path))
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(str(path))))
    with tracer_provider.get_tracer("own").start_as_current_span("connect redis://:own-span-pw-2@cache"):
        logger_provider.get_logger("own").emit(
            body="DB_PASSWORD=own-log-pw-3", attributes={"db.password": "x-4"}
        )
    logger_provider.shutdown()
    tracer_provider.shutdown()
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE data_type = 'VARCHAR'"
        ).fetchall()
        stored = "\n".join(
            str(row[0])
            for table, column in columns
            for row in con.execute(f'SELECT "{column}" FROM "{table}"').fetchall()
        )
    assert "DB_PASSWORD=***" in stored and "redis://:***@cache" in stored
    assert not [s for s in ("own-res-tok-1", "own-span-pw-2", "own-log-pw-3", "x-4") if s in stored]
