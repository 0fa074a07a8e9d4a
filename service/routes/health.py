"""Probes: ``/healthz`` says the process answers, ``/readyz`` that the store takes writes."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

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
    problem = service.store.check_writable()
    body = {
        "status": "ready" if problem is None else "unavailable",
        "store": {
            "path": service.store.path,
            "schema_version": service.store.schema_version,
            "error": problem,
        },
        "ingest": service.ingest_counters(),
    }
    response = jsonify(body)
    response.status_code = 200 if problem is None else 503
    return response
