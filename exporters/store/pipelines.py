"""Pipeline definitions and runs, kept in the service's database; secrets kept beside it, not in it."""

from __future__ import annotations

import datetime
import os
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson

from exporters.store.connection import TelemetryStore
from exporters.store.statements import record, records, statement

RUN_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")
# The run fields update_run may set, each as ``column = $column``.
_RUN_FIELDS = ("status", "started_at", "finished_at", "exit_code", "rows_loaded", "error", "warnings")

_INSERT_PIPELINE = statement("insert_pipeline")
_PIPELINE = statement("pipeline")
_ALL_PIPELINES = statement("all_pipelines")
_INSERT_RUN = statement("insert_run")
_RUN = statement("run")
_PIPELINE_RUNS = statement("pipeline_runs")
_RUN_ERROR_COUNTS = statement("run_error_counts")
_UNFINISHED_RUNS = statement("unfinished_runs")
_PIPELINE_NAMED = statement("pipeline_named")
_NAME_TAKEN = statement("pipeline_name_taken")
_UPDATE_PIPELINE = statement("update_pipeline")
_DELETE_PIPELINE = statement("delete_pipeline")
_ACTIVE_RUNS = statement("active_runs")
_RUN_OUTCOMES = statement("run_outcomes")
# How a run can end up, as the stats count them (see sql/run_outcomes.sql).
OUTCOMES = ("succeeded", "succeeded_with_warnings", "failed", "cancelled", "queued", "running")


class DuplicateName(ValueError):
    """Another pipeline has this name (names are compared without case)."""

    def __init__(self, name: str, other_id: str) -> None:
        super().__init__(f"pipeline {other_id} is already named {name!r}")
        self.other_id = other_id


class PipelineBusy(RuntimeError):
    """The pipeline has runs queued or running, so it cannot be removed now."""

    def __init__(self, pipeline_id: str, run_ids: list[str]) -> None:
        super().__init__(
            f"pipeline {pipeline_id} has runs in flight ({', '.join(run_ids)}): cancel them first"
        )
        self.run_ids = run_ids


def _time(value: datetime.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Pipeline:
    id: str
    name: str
    template: str
    params: dict[str, Any]
    created_at: str | None
    # {"cron": ..., "timezone": ...} as it was sent (see service.schedule), or None: runs on demand only.
    schedule: dict[str, Any] | None = None

    @property
    def dlt_name(self) -> str:
        """dlt's pipeline name: stable per pipeline, so its state carries over between runs.

        A lower-case ASCII identifier whatever the name's script (dlt and the rendered script want
        one): accents are dropped (``übersicht`` -> ``ubersicht``), other letters (CJK) give way to
        ``pipeline``; the id's prefix keeps it unique either way. The name itself is kept as given."""
        folded = unicodedata.normalize("NFKD", self.name).encode("ascii", "ignore").decode().lower()
        slug = "".join(ch if ch.isalnum() else "_" for ch in folded).strip("_")[:40] or "pipeline"
        if not slug[0].isalpha():
            slug = f"p_{slug}"
        return f"{slug}_{self.id[:8]}"

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "template": self.template, "params": self.params,
                "schedule": self.schedule, "created_at": self.created_at}  # fmt: skip


class PipelineRepository:
    """Reads and writes the ``pipelines`` and ``runs`` tables; each secret goes to a 0600 file."""

    def __init__(self, store: TelemetryStore, secrets_dir: Path) -> None:
        self.store = store
        self.secrets_dir = secrets_dir

    def create(
        self,
        name: str,
        template: str,
        params: dict[str, Any],
        secret_env: dict[str, str],
        schedule: dict[str, Any] | None = None,
        pipeline_id: str | None = None,
    ) -> Pipeline:
        """Store a new pipeline (with ``pipeline_id`` when given and free); DuplicateName when another
        one has its name."""
        if pipeline_id is None or self.get(pipeline_id) is not None:
            pipeline_id = uuid.uuid4().hex[:16]
        # Under the write lock: two requests with one name cannot both pass the check.
        with self.store.writer() as cur:
            _refuse_duplicate(cur, name, None)
            self._write_secrets(pipeline_id, secret_env)
            values = {
                "id": pipeline_id,
                "name": name,
                "template": template,
                "params": orjson.dumps(params).decode(),
                "schedule": _json_or_null(schedule),
            }
            _INSERT_PIPELINE.run(cur, values)
        found = self.get(pipeline_id)
        assert found is not None
        return found

    def update(
        self,
        pipeline_id: str,
        name: str,
        params: dict[str, Any],
        secret_env: dict[str, str],
        schedule: dict[str, Any] | None,
    ) -> Pipeline | None:
        """Replace a pipeline's name, parameters, secrets and schedule; None when it does not exist."""
        with self.store.writer() as cur:
            if record(_PIPELINE.run(cur, {"id": pipeline_id})) is None:
                return None
            _refuse_duplicate(cur, name, pipeline_id)
            self._write_secrets(pipeline_id, secret_env)
            values = {
                "id": pipeline_id,
                "name": name,
                "params": orjson.dumps(params).decode(),
                "schedule": _json_or_null(schedule),
            }
            _UPDATE_PIPELINE.run(cur, values)
        return self.get(pipeline_id)

    def delete(self, pipeline_id: str) -> bool:
        """Remove a pipeline and its secrets, keeping its runs; PipelineBusy while any is in flight."""
        with self.store.writer() as cur:
            if record(_PIPELINE.run(cur, {"id": pipeline_id})) is None:
                return False
            active = [row["id"] for row in records(_ACTIVE_RUNS.run(cur, {"pipeline_id": pipeline_id}))]
            if active:
                raise PipelineBusy(pipeline_id, active)
            _DELETE_PIPELINE.run(cur, {"id": pipeline_id})
            self._write_secrets(pipeline_id, {})
        return True

    def active_runs(self, pipeline_id: str) -> list[str]:
        """Ids of the pipeline's runs queued or running, oldest first."""
        rows = records(_ACTIVE_RUNS.run(self.store.cursor(), {"pipeline_id": pipeline_id}))
        return [row["id"] for row in rows]

    def _write_secrets(self, pipeline_id: str, secret_env: dict[str, str]) -> None:
        """The pipeline's secrets file holds exactly ``secret_env``; none at all when it is empty."""
        path = self.secrets_dir / f"{pipeline_id}.json"
        if not secret_env:
            path.unlink(missing_ok=True)
            return
        self.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(orjson.dumps(secret_env))

    def secret_env(self, pipeline_id: str) -> dict[str, str]:
        path = self.secrets_dir / f"{pipeline_id}.json"
        secrets: dict[str, str] = orjson.loads(path.read_bytes()) if path.exists() else {}
        return secrets

    def get(self, pipeline_id: str) -> Pipeline | None:
        row = record(_PIPELINE.run(self.store.cursor(), {"id": pipeline_id}))
        return _pipeline(row) if row else None

    def named(self, name: str, template: str) -> Pipeline | None:
        """The pipeline of this name and template (the oldest, should there be several)."""
        row = record(_PIPELINE_NAMED.run(self.store.cursor(), {"name": name, "template": template}))
        return _pipeline(row) if row else None

    def all(self) -> list[Pipeline]:
        return [_pipeline(row) for row in records(_ALL_PIPELINES.run(self.store.cursor(), {}))]

    def add_run(
        self, pipeline_id: str, run_id: str, trace_id: str | None, overrides: dict[str, Any] | None = None
    ) -> None:
        values = {"id": run_id, "pipeline_id": pipeline_id, "trace_id": trace_id,
                  "overrides": _json_or_null(overrides or None)}  # fmt: skip
        with self.store.writer() as cur:
            _INSERT_RUN.run(cur, values)

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set the given fields (of ``_RUN_FIELDS``) of one run; the others keep their values."""
        values: dict[str, Any] = {}
        for key, value in fields.items():
            if key not in _RUN_FIELDS:
                raise ValueError(f"unknown run field {key}")
            is_json = key in ("rows_loaded", "error", "warnings") and value is not None
            values[key] = orjson.dumps(value).decode() if is_json else value
        assignments = ", ".join(f"{key} = ${key}" for key in values)
        with self.store.writer() as cur:
            cur.execute(f"UPDATE runs SET {assignments} WHERE id = $run_id", {**values, "run_id": run_id})

    def run(self, run_id: str) -> dict[str, Any] | None:
        row = record(_RUN.run(self.store.cursor(), {"id": run_id}))
        return _run(row) if row else None

    def runs(self, pipeline_id: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = records(_PIPELINE_RUNS.run(self.store.cursor(), {"pipeline_id": pipeline_id, "limit": limit}))
        runs = [_run(row) for row in rows]
        if runs:
            # Error records per run, for the runs listed: one grouped scan of the pipeline's logs.
            found = records(_RUN_ERROR_COUNTS.run(self.store.cursor(), {"pipeline_id": pipeline_id}))
            counts = {row["run_id"]: row["errors"] for row in found}
            for run in runs:
                run["error_count"] = int(counts.get(run["run_id"], 0))
        return runs

    def outcomes(
        self, pipeline_id: str | None = None, since_ns: int | None = None, until_ns: int | None = None
    ) -> dict[str, int]:
        """How many runs (queued in the window, of the pipeline when given) ended each way."""
        values = {"pipeline_id": pipeline_id, "since_ns": since_ns, "until_ns": until_ns}
        counts = {
            row["outcome"]: int(row["runs"])
            for row in records(_RUN_OUTCOMES.run(self.store.cursor(), values))
        }
        return {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}

    def unfinished_runs(self) -> list[tuple[str, str]]:
        """(run id, status) of every run still queued or running, oldest first."""
        rows = records(_UNFINISHED_RUNS.run(self.store.cursor(), {}))
        return [(row["id"], row["status"]) for row in rows]


def _json_or_null(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _refuse_duplicate(cur: duckdb.DuckDBPyConnection, name: str, except_id: str | None) -> None:
    found = record(_NAME_TAKEN.run(cur, {"name": name, "except_id": except_id}))
    if found is not None:
        raise DuplicateName(name, found["id"])


def _pipeline(row: Mapping[str, Any]) -> Pipeline:
    schedule = orjson.loads(row["schedule"]) if row["schedule"] else None
    return Pipeline(
        row["id"], row["name"], row["template"], orjson.loads(row["params"]), _time(row["created_at"]),
        schedule,
    )  # fmt: skip


def _run(row: Mapping[str, Any]) -> dict[str, Any]:
    started, finished = row["started_at"], row["finished_at"]
    duration = (finished - started).total_seconds() if started and finished else None
    return {
        "run_id": row["id"],
        "pipeline_id": row["pipeline_id"],
        "status": row["status"],
        "trace_id": row["trace_id"],
        "queued_at": _time(row["queued_at"]),
        "started_at": _time(started),
        "finished_at": _time(finished),
        "duration_seconds": duration,
        "exit_code": row["exit_code"],
        "rows_loaded": orjson.loads(row["rows_loaded"]) if row["rows_loaded"] else {},
        "error": orjson.loads(row["error"]) if row["error"] else None,
        # Parameters this run was started with over its pipeline's (see POST .../runs).
        "overrides": orjson.loads(row["overrides"]) if row["overrides"] else {},
        # What a run that finished said to look at, e.g. "no rows loaded"; its status stays true.
        "warnings": orjson.loads(row["warnings"]) if row["warnings"] else [],
    }
