"""A service whose alert loop is off and whose clock the test moves, and runs written into its store."""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from exporters.store.pipelines import Pipeline
from service.alerts.service import Alerts, alerts_of
from service.app import close_app, create_app
from service.state import state
from tests.conftest import LiveServer

PUBLIC_URL = "http://pipetrace.example:8080"


class Clock:
    """Starts at the real time (the store stamps pipelines and runs with it), then moves when told."""

    def __init__(self) -> None:
        self.now = datetime.datetime.now(datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: float) -> datetime.datetime:
        self.now += datetime.timedelta(seconds=seconds)
        return self.now


@contextmanager
def alerting_app(data_dir: Path, clock: Clock, **settings: Any) -> Iterator[Flask]:
    app = create_app(
        data_dir=data_dir, alert_interval_seconds=0, alert_retry_seconds=0, public_url=PUBLIC_URL, **settings
    )
    alerts = alerts_of(app)
    alerts.evaluator.clock = clock
    alerts.deliverer.clock = clock
    try:
        yield app
    finally:
        close_app(app)


def alerts(app: Flask) -> Alerts:
    return alerts_of(app)


def add_rule(client: FlaskClient, **rule: Any) -> dict[str, Any]:
    response = client.post("/api/alerts/rules", json={"name": rule.get("kind", "rule"), **rule})
    assert response.status_code == 201, response.json
    created: dict[str, Any] = response.json
    return created


def rule_state(client: FlaskClient, rule_id: str) -> str:
    found: str = client.get(f"/api/alerts/rules/{rule_id}").json["state"]
    return found


def add_pipeline(app: Flask, name: str = "orders") -> Pipeline:
    return state(app).repository.create(name, "dlt_code", {}, {})


def add_run(
    app: Flask,
    pipeline: Pipeline,
    status: str,
    started: datetime.datetime,
    seconds: float = 10,
    **fields: Any,
) -> str:
    """A run as the runner leaves it: queued now, then started and (unless running) finished."""
    repository = state(app).repository
    run_id = uuid.uuid4().hex[:16]
    repository.add_run(pipeline.id, run_id, fields.pop("trace_id", uuid.uuid4().hex))
    finished = started + datetime.timedelta(seconds=seconds) if status != "running" else None
    repository.update_run(run_id, status=status, started_at=started, finished_at=finished, **fields)
    return run_id


def send_logs(server: LiveServer, service_name: str, pipeline_id: str, errors: int, infos: int) -> None:
    """A client program logging ``errors`` errors and ``infos`` info lines over OTLP/HTTP, in one
    request (sent at shutdown), so an evaluation never sees a part of them."""
    provider = LoggerProvider(
        resource=Resource.create({"service.name": service_name, "pipeline.id": pipeline_id})
    )
    provider.add_log_record_processor(
        BatchLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{server.url}/v1/logs"), schedule_delay_millis=600_000
        )
    )
    logger = logging.getLogger(f"client.{service_name}.{pipeline_id}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        for i in range(errors):
            logger.error("load failed: timeout %d", i)
        for i in range(infos):
            logger.info("loaded page %d", i)
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
