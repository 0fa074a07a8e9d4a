"""Schedules: the rules with an injected clock, the API, and one real every-minute schedule."""

from __future__ import annotations

import datetime
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from opentelemetry import trace

from exporters.store import TelemetryStore
from exporters.store.pipelines import Pipeline, PipelineRepository
from service.cli import main
from service.scheduler import Scheduler, traced_start
from tests.conftest import start_server
from tests.helpers import LockHolder
from tests.service.pipeline_helpers import create, wait_for_logs, wait_for_run

UTC = datetime.UTC
NIGHTLY = {"cron": "0 2 * * *", "timezone": "Europe/Berlin"}
PARAMS = {"bucket_url": "/nowhere"}


class Clock:
    def __init__(self, now: datetime.datetime) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[PipelineRepository]:
    store = TelemetryStore(tmp_path / "telemetry.duckdb")
    yield PipelineRepository(store, tmp_path / "secrets")
    store.close()


def _at(*parts: int) -> datetime.datetime:
    return datetime.datetime(*parts, tzinfo=UTC)


def _recorder(repository: PipelineRepository, started: list[str]) -> Callable[[Pipeline], dict[str, str]]:
    """Starts a run as the service does, as far as the store can tell: queued until told otherwise."""

    def start(pipeline: Pipeline) -> dict[str, str]:
        run_id = uuid.uuid4().hex[:16]
        repository.add_run(pipeline.id, run_id, None)
        started.append(run_id)
        return {"run_id": run_id, "trace_id": ""}

    return start


def test_a_schedule_starts_one_run_at_its_local_time(repository: PipelineRepository) -> None:
    clock = Clock(_at(2026, 11, 28, 12, 0))
    started: list[str] = []
    scheduler = Scheduler(repository, _recorder(repository, started), clock)
    pipeline = repository.create("nightly", "simple", PARAMS, {}, NIGHTLY)
    scheduler.track(pipeline)
    assert scheduler.next_run_at(pipeline.id) == _at(2026, 11, 29, 1, 0)  # 02:00 in Berlin, winter time
    clock.now = _at(2026, 11, 29, 0, 59, 59)
    assert scheduler.tick() == []
    clock.now = _at(2026, 11, 29, 1, 0, 0)
    assert scheduler.tick() == [pipeline.id]
    assert scheduler.tick() == []  # once per time
    assert len(started) == 1
    assert scheduler.next_run_at(pipeline.id) == _at(2026, 11, 30, 1, 0)
    # In summer time the same schedule is an hour earlier in UTC.
    clock.now = _at(2027, 6, 1, 12, 0)
    scheduler.track(pipeline)
    assert scheduler.next_run_at(pipeline.id) == _at(2027, 6, 2, 0, 0)


def test_a_pipeline_whose_run_is_in_flight_is_skipped_and_logged(
    repository: PipelineRepository, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(_at(2026, 11, 28, 12, 0, 30))
    started: list[str] = []
    scheduler = Scheduler(repository, _recorder(repository, started), clock)
    pipeline = repository.create(
        "every minute", "simple", PARAMS, {}, {"cron": "* * * * *", "timezone": "UTC"}
    )
    scheduler.track(pipeline)
    clock.now = _at(2026, 11, 28, 12, 1, 0)
    assert scheduler.tick() == [pipeline.id]
    clock.now = _at(2026, 11, 28, 12, 2, 0)
    with caplog.at_level(logging.WARNING, logger="service.scheduler"):
        assert scheduler.tick() == []  # the first run is still queued
    (skipped,) = [r for r in caplog.records if r.name == "service.scheduler"]
    assert skipped.levelno == logging.WARNING and started[0] in skipped.getMessage()
    assert scheduler.next_run_at(pipeline.id) == _at(2026, 11, 28, 12, 3, 0)
    repository.update_run(started[0], status="succeeded")
    clock.now = _at(2026, 11, 28, 12, 3, 0)
    assert scheduler.tick() == [pipeline.id]
    assert len(started) == 2


def test_missed_times_are_skipped_not_made_up(repository: PipelineRepository) -> None:
    clock = Clock(_at(2026, 11, 28, 12, 0))
    started: list[str] = []
    scheduler = Scheduler(repository, _recorder(repository, started), clock)
    pipeline = repository.create("hourly", "simple", PARAMS, {}, {"cron": "0 * * * *", "timezone": "UTC"})
    scheduler.track(pipeline)
    clock.now = _at(2026, 12, 1, 9, 30)  # three days of hourly times passed without a tick
    assert scheduler.tick() == [pipeline.id]
    assert len(started) == 1
    assert scheduler.next_run_at(pipeline.id) == _at(2026, 12, 1, 10, 0)
    # A service starting up schedules from now: times passed while it was down are not run.
    restarted = Scheduler(repository, _recorder(repository, started), Clock(_at(2026, 12, 5, 7, 45)))
    restarted.load()
    assert restarted.next_run_at(pipeline.id) == _at(2026, 12, 5, 8, 0)
    assert restarted.tick() == [] and len(started) == 1


def test_an_unscheduled_or_deleted_pipeline_is_not_started(repository: PipelineRepository) -> None:
    clock = Clock(_at(2026, 11, 28, 12, 0))
    started: list[str] = []
    scheduler = Scheduler(repository, _recorder(repository, started), clock)
    kept = repository.create("kept", "simple", PARAMS, {}, {"cron": "* * * * *", "timezone": "UTC"})
    gone = repository.create("gone", "simple", PARAMS, {}, {"cron": "* * * * *", "timezone": "UTC"})
    scheduler.track(kept)
    scheduler.track(gone)
    updated = repository.update(kept.id, "kept", PARAMS, {}, None)
    assert updated is not None
    scheduler.track(updated)
    assert scheduler.next_run_at(kept.id) is None
    repository.delete(gone.id)  # deleted behind the scheduler's back: the tick finds it gone
    clock.now = _at(2026, 11, 28, 12, 5)
    assert scheduler.tick() == [] and started == []
    assert scheduler.next_run_at(gone.id) is None


def test_the_api_takes_a_schedule_and_says_when_it_runs_next(client: FlaskClient) -> None:
    response = client.post(
        "/api/pipelines",
        json={"name": "nightly", "template": "simple", "params": PARAMS, "schedule": NIGHTLY},
    )
    assert response.status_code == 201 and response.json is not None
    assert response.json["schedule"] == NIGHTLY
    next_run = datetime.datetime.fromisoformat(response.json["next_run_at"])
    assert next_run > datetime.datetime.now(UTC)
    assert next_run.astimezone(datetime.timezone(datetime.timedelta(hours=1))).hour in (
        1,
        2,
    )  # Berlin's 02:00
    listed = client.get("/api/pipelines").json
    assert listed is not None and listed["pipelines"][0]["next_run_at"] == response.json["next_run_at"]
    unscheduled = client.put(
        f"/api/pipelines/{response.json['id']}", json={"name": "nightly", "params": PARAMS}
    )
    assert unscheduled.json is not None
    assert unscheduled.json["schedule"] is None and unscheduled.json["next_run_at"] is None
    on_demand = client.post("/api/pipelines", json={"name": "manual", "template": "simple", "params": PARAMS})
    assert on_demand.json is not None and on_demand.json["next_run_at"] is None


@pytest.mark.parametrize(
    ("schedule", "parameter"),
    [
        ("0 2 * * *", "schedule"),
        ({"cron": "0 2 * * *"}, "schedule.timezone"),
        ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "schedule.timezone"),
        ({"cron": "0 2 * * *", "timezone": "../../etc/passwd"}, "schedule.timezone"),
        ({"cron": "0 25 * * *", "timezone": "UTC"}, "schedule.cron"),
        ({"cron": "0 0 2 * * *", "timezone": "UTC"}, "schedule.cron"),  # six fields: seconds
        ({"cron": "0 0 30 2 *", "timezone": "UTC"}, "schedule.cron"),  # February 30th never comes
        ({"cron": "0 2 * * *", "timezone": "UTC", "every": 2}, "schedule.every"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_field(
    client: FlaskClient, schedule: object, parameter: str
) -> None:
    body = {"name": "bad", "template": "simple", "params": PARAMS, "schedule": schedule}
    response = client.post("/api/pipelines", json=body)
    assert response.status_code == 400 and response.json is not None
    assert response.json["error"]["parameter"] == parameter
    assert client.get("/api/pipelines").json == {"pipelines": []}


def test_a_real_every_minute_schedule_starts_a_traced_run(tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "rows.csv").write_text("id,name\n1,a\n2,b\n3,c\n")
    server = start_server(tmp_path / "svc")
    try:
        pipeline = create(
            server,
            "simple",
            {"bucket_url": str(folder), "table_name": "rows"},
            name="every minute",
            schedule={"cron": "* * * * *", "timezone": "UTC"},
        )
        due = datetime.datetime.fromisoformat(pipeline["next_run_at"])
        deadline = time.monotonic() + 150  # bounded: the next minute, plus a run's start-up
        runs: list[dict[str, object]] = []
        while not runs:
            assert time.monotonic() < deadline, "the schedule started no run"
            time.sleep(1)
            runs = server.get(f"/api/pipelines/{pipeline['id']}/runs").json()["runs"]
        run = wait_for_run(server, str(runs[0]["run_id"]))
        assert run["status"] == "succeeded" and run["rows_loaded"] == {"rows": 3}
        assert datetime.datetime.fromisoformat(run["queued_at"]) >= due
        after = server.get(f"/api/pipelines/{pipeline['id']}").json()
        assert datetime.datetime.fromisoformat(after["next_run_at"]) > due
        trace = wait_for_logs(
            server,
            f"/api/logs/correlation/{run['trace_id']}",
            lambda body: any(span["name"] == "scheduled run every minute" for span in body["spans"]),
        )
        assert any(span["name"].startswith("pipeline ") for span in trace["spans"])
    finally:
        server.stop()


def test_the_cli_lists_pipelines_with_their_schedule_and_next_run(tmp_path: Path) -> None:
    server = start_server(tmp_path / "svc")
    try:
        nightly = create(server, "simple", PARAMS, name="nightly", schedule=NIGHTLY)
        create(server, "simple", PARAMS, name="by hand")
        result = CliRunner().invoke(main, ["pipelines", "list", "--service-url", server.url])
        assert result.exit_code == 0, result.output
        header, *rows = result.output.splitlines()
        assert header.split() == ["NAME", "ID", "TEMPLATE", "SCHEDULE", "NEXT", "RUN"]
        by_name = {row.split("  ")[0]: row for row in rows}
        assert "0 2 * * * (Europe/Berlin)" in by_name["nightly"]
        assert nightly["next_run_at"] in by_name["nightly"] and nightly["id"] in by_name["nightly"]
        assert "on demand" in by_name["by hand"]
        as_json = CliRunner().invoke(main, ["pipelines", "list", "--json"], env={"PIPETRACE_URL": server.url})
        assert {p["name"]: p["schedule"] for p in json.loads(as_json.output)["pipelines"]} == {
            "nightly": NIGHTLY,
            "by hand": None,
        }
    finally:
        server.stop()
    gone = CliRunner().invoke(main, ["pipelines", "list", "--service-url", server.url])
    assert gone.exit_code == 1
    assert gone.output.startswith(f"Error: no pipetrace service answers at {server.url}")
    assert len(gone.output.strip().splitlines()) == 1


def test_a_scheduled_run_the_service_would_refuse_is_skipped_and_logged(
    repository: PipelineRepository, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = repository.create("code", "dlt_code", {"code": "def data_source(): ..."}, {}, NIGHTLY)
    calls: list[str] = []
    start = traced_start(
        lambda p: calls.append(p.id) or {"run_id": "r1", "trace_id": ""},
        trace.NoOpTracer(),
        lambda p: "user code is not allowed now" if p.template == "dlt_code" else None,
    )
    with caplog.at_level(logging.WARNING, logger="service.scheduler"):
        start(pipeline)
    assert calls == []
    assert "user code is not allowed now" in caplog.text


def test_schedules_wait_for_a_store_that_is_locked_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A service starting on a file another process holds starts degraded: its schedules are read
    by the first tick that can, and the wait is said once, not at every tick."""
    path = tmp_path / "telemetry.duckdb"
    seeded = TelemetryStore(path)
    PipelineRepository(seeded, tmp_path / "secrets").create(
        "hourly", "simple", PARAMS, {}, {"cron": "0 * * * *", "timezone": "UTC"}
    )
    seeded.close()
    holder = LockHolder(path)
    store = TelemetryStore(path)  # opened at first use, as the service's is
    repository = PipelineRepository(store, tmp_path / "secrets")
    scheduler = Scheduler(repository, _recorder(repository, []), Clock(_at(2026, 11, 28, 12, 10)))
    try:
        with holder, caplog.at_level(logging.INFO, logger="service.scheduler"):
            assert [scheduler.tick() for _ in range(3)] == [[], [], []]
            holder.release()
            assert scheduler.tick() == []
        (hourly,) = repository.all()
        assert scheduler.next_run_at(hourly.id) == _at(2026, 11, 28, 13, 0)
        messages = [r.getMessage() for r in caplog.records if r.name == "service.scheduler"]
        assert sum("schedules paused" in m for m in messages) == 1
        assert sum("schedules resumed" in m for m in messages) == 1
    finally:
        store.close()
