"""Secrets are scrubbed before any exporter sees a record: unit cases, then the service end to end."""

from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

from instrumentation.redaction import MASK, redact_text, redact_value
from service.state import ServiceState
from tests.helpers import make_record

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
