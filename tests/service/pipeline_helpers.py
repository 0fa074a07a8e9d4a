"""Drive pipelines through a running service, as a user of the API would."""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests

from tests.conftest import LiveServer

FINISHED = ("succeeded", "failed", "cancelled")


def create(
    server: LiveServer,
    template: str,
    params: dict[str, Any],
    name: str | None = None,
    schedule: dict[str, Any] | None = None,
) -> dict[str, Any]:
    # Names are unique: a test that defines several of one template gets one each.
    body = {"name": name or f"{template} test {uuid.uuid4().hex[:8]}", "template": template, "params": params}
    if schedule is not None:
        body["schedule"] = schedule
    response = server.post("/api/pipelines", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def start(server: LiveServer, pipeline_id: str, traceparent: str | None = None) -> dict[str, Any]:
    headers = {"traceparent": traceparent} if traceparent else {}
    response = server.post(f"/api/pipelines/{pipeline_id}/runs", headers=headers, json={})
    assert response.status_code == 202, response.text
    started: dict[str, Any] = response.json()
    return started


def delete(server: LiveServer, pipeline_id: str) -> requests.Response:
    # JSON, as every write to the API is without a token (service.exposure).
    return requests.delete(
        f"{server.url}/api/pipelines/{pipeline_id}", json={}, headers=server.headers, timeout=10
    )


def wait_for_status(server: LiveServer, run_id: str, status: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while server.get(f"/api/runs/{run_id}").json()["status"] != status:
        assert time.monotonic() < deadline, f"run {run_id} never became {status}"
        time.sleep(0.1)


def wait_for_run(server: LiveServer, run_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = server.get(f"/api/runs/{run_id}")
        # 404 until a service just started has adopted a run started while none answered (in the
        # background: a locked store must not hold up the start).
        run = response.json() if response.status_code != 404 else {}
        if run.get("status") in FINISHED:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s: {run}")


def wait_for_logs(server: LiveServer, path: str, predicate: Any, timeout: float = 20) -> dict[str, Any]:
    """The run's telemetry arrives asynchronously (OTLP, then the service's batch): poll for it."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = server.get(path)
        if response.status_code == 200:
            body = response.json()
            if predicate(body):
                return body
        time.sleep(0.25)
    raise AssertionError(f"{path} never satisfied the check; last answer: {str(body)[:2000]}")
