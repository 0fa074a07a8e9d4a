"""The OpenAPI description is true: it lists exactly the served routes, and fuzzing every operation from
it (schemathesis) finds no 5xx and no response that breaks the documented schema."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from opentelemetry._logs import SeverityNumber
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from service.alerts.service import alerts_of
from service.app import close_app, create_app
from service.openapi import document
from service.state import state
from tests.helpers import make_record

TRACE = 0x5CE1A7E0000000000000000000000001
API_TOKEN = "fuzz-api-token"
INGEST_TOKEN = "fuzz-ingest-token"


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    # With both tokens, as a service beyond loopback runs: the fuzzer also checks that requests without
    # them, or with made-up ones, are refused.
    # Alert rules the fuzzer creates are evaluated by the test at the end, not by the loop; a test
    # notification to whatever URL it made up is tried once, briefly.
    app = create_app(
        data_dir=tmp_path_factory.mktemp("fuzz") / "data", api_token=API_TOKEN, ingest_token=INGEST_TOKEN,
        tail_stream_seconds=0,  # one look per live-tail stream: the fuzzer reads each answer to its end
        alert_interval_seconds=0, alert_delivery_attempts=1, alert_timeout_seconds=1,
    )  # fmt: skip
    records = [
        make_record(f"record {i} rows", timestamp=1_790_000_000_000_000_000 + i * 10**9, trace_id=TRACE,
                    span_id=7, severity=[SeverityNumber.INFO, SeverityNumber.ERROR][i % 2],
                    attributes={"pipeline.id": "orders", "pipeline.run_id": f"r{i % 3}"})
        for i in range(40)
    ]  # fmt: skip
    state(app).log_exporter.export(records)
    yield app
    close_app(app)


def test_every_route_is_described_and_nothing_else(app: Flask) -> None:
    served_document = app.test_client().get("/openapi.json").json
    assert served_document == document() and served_document["openapi"].startswith("3.")
    described = {
        (method.upper(), path)
        for path, operations in served_document["paths"].items()
        for method in operations
    }
    served = {
        (method, re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if not rule.endpoint.endswith("static")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert described == served


# The document the app serves (the test above checks they are the same routes). Loaded at import, not
# from a fixture: schemathesis' lazy loader reaches into pytest internals that pytest 9.2 changed.
schema = schemathesis.openapi.from_dict(document())


@schemathesis.serializer("application/x-protobuf")
def _protobuf_body(context: Any, value: Any) -> bytes:
    """Whatever the fuzzer made, as raw bytes: the receiver must refuse garbage with a 4xx."""
    if isinstance(value, bytes):
        return value
    data = getattr(value, "data", None)
    return data if isinstance(data, bytes) else str(value).encode()


@schema.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_fuzz_every_operation(case: Any, fuzzed_app: Flask) -> None:
    # Valid and invalid requests alike (schemathesis generates both): no 5xx, only documented status
    # codes, content types and headers, and bodies that match the response schemas. Not checked: that
    # every schema-valid request gets a 2xx and every invalid one a 4xx. The routes validate more
    # finely than JSON Schema can say (calendar dates, opaque cursors, which bytes make an OTLP
    # message), so those two checks would test the description's wording, not the service.
    token = INGEST_TOKEN if case.path.startswith("/v1/") else API_TOKEN
    case.operation.schema.app = fuzzed_app  # schemathesis' own probes (the auth checks) go there too
    case.call_and_validate(
        app=fuzzed_app,
        headers={"Authorization": f"Bearer {token}"},
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )


def test_the_fuzzed_service_still_works(fuzzed_app: Flask) -> None:
    """Whatever the fuzzer sent (cleanups included), the service still stores and answers."""
    client = fuzzed_app.test_client()
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    assert client.get("/readyz").status_code == 200
    state(fuzzed_app).log_exporter.export([make_record("after the fuzzing", trace_id=TRACE + 1)])
    response = client.get(f"/api/logs/correlation/{TRACE + 1:032x}", headers=auth)
    assert response.status_code == 200
    assert response.json is not None and [log["body"] for log in response.json["logs"]] == [
        "after the fuzzing"
    ]
    # Every rule the fuzzer left is evaluated without an error.
    alerts = alerts_of(fuzzed_app)
    alerts.evaluator.evaluate_once()
    assert [
        (rule.name, rule.evaluation_error) for rule in alerts.store.rules() if rule.evaluation_error
    ] == []
