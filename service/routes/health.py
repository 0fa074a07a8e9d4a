"""Probes: ``/healthz`` says the process answers, ``/readyz`` that records sent now are stored (the
store takes a write, and its exporters' breakers are closed and their spools have room) (and, to
whoever holds the API token when one is set, where the store is and what failed, and where the
OTLP/gRPC receiver listens)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from service.alerts.service import alerts_of
from service.auth import presents_token
from service.openapi import document
from service.state import state

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@blueprint.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document())


@blueprint.get("/readyz")
def readyz() -> Response:
    service = state()
    problem = service.unready_because()
    body: dict[str, Any] = {"status": "ready" if problem is None else "unavailable"}
    # The bare status is for probes, which hold no token; the data path and error text are not.
    if presents_token(service.settings.api_token_value):
        body["store"] = {
            "path": service.store.path,
            "schema_version": service.store.schema_version,
            "error": problem,
        }
        body["ingest"] = service.ingest_counters()
        body["alerts"] = alerts_of().status()
        # Where the OTLP/gRPC receiver listens; null when it is off (or the app runs without `serve`).
        body["otlp_grpc"] = current_app.config.get("PIPETRACE_GRPC_ADDRESS")
    response = jsonify(body)
    response.status_code = 200 if problem is None else 503
    return response
