from __future__ import annotations

import logging

from flask.testing import FlaskClient
from opentelemetry import trace

from instrumentation.context import current_pipeline_context, pipeline_context
from service.state import ServiceState


def test_context_nests_and_restores() -> None:
    assert current_pipeline_context() == {}
    with pipeline_context(pipeline_id="p1", run_id="r1"):
        with pipeline_context(stage="extract") as inner:
            assert dict(inner) == {"pipeline.id": "p1", "pipeline.run_id": "r1", "pipeline.stage": "extract"}
        assert dict(current_pipeline_context()) == {"pipeline.id": "p1", "pipeline.run_id": "r1"}
    assert current_pipeline_context() == {}


def test_logs_and_spans_in_a_pipeline_context_are_tagged(client: FlaskClient, service: ServiceState) -> None:
    tracer = service.telemetry.tracer_provider.get_tracer("ctx.test")
    logger = logging.getLogger("ctx.test")
    with pipeline_context(pipeline_id="orders", run_id="run-7"):
        with pipeline_context(stage="load"), tracer.start_as_current_span("load step") as span:
            logger.info("loading", extra={"pipeline.stage": "explicit-wins"})
            logger.info("loaded")
        logger.info("outside the stage")
    logger.info("outside any pipeline")
    service.telemetry.force_flush()
    trace_id = format(span.get_span_context().trace_id, "032x")

    found = client.get(f"/api/logs/correlation/{trace_id}").get_json()
    assert [(log["body"], log["stage"]) for log in found["logs"]] == [
        ("loading", "explicit-wins"),
        ("loaded", "load"),
    ]
    assert all(log["run_id"] == "run-7" for log in found["logs"])
    (stored_span,) = found["spans"]
    assert (stored_span["pipeline_id"], stored_span["run_id"], stored_span["stage"]) == (
        "orders",
        "run-7",
        "load",
    )

    page = client.get("/api/logs/pipeline/orders?run_id=run-7").get_json()
    assert [log["body"] for log in page["logs"]] == ["outside the stage", "loaded", "loading"]
    assert page["logs"][0]["stage"] is None
    assert trace.get_current_span() is trace.INVALID_SPAN
