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

import orjson

from exporters.store.connection import TelemetryStore
from exporters.store.statements import record, records, statement

RUN_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")
# The run fields update_run may set, each as ``column = $column``.
_RUN_FIELDS = ("status", "started_at", "finished_at", "exit_code", "rows_loaded", "error")

_INSERT_PIPELINE = statement("insert_pipeline")
_PIPELINE = statement("pipeline")
_ALL_PIPELINES = statement("all_pipelines")
_INSERT_RUN = statement("insert_run")
_RUN = statement("run")
_PIPELINE_RUNS = statement("pipeline_runs")
_RUN_ERROR_COUNTS = statement("run_error_counts")
_UNFINISHED_RUNS = statement("unfinished_runs")
_PIPELINE_NAMED = statement("pipeline_named")


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
                "created_at": self.created_at}  # fmt: skip


class PipelineRepository:
    """Reads and writes the ``pipelines`` and ``runs`` tables; each secret goes to a 0600 file."""

    def __init__(self, store: TelemetryStore, secrets_dir: Path) -> None:
        self.store = store
        self.secrets_dir = secrets_dir

    def create(
        self, name: str, template: str, params: dict[str, Any], secret_env: dict[str, str]
    ) -> Pipeline:
        pipeline_id = uuid.uuid4().hex[:16]
        if secret_env:
            self.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = self.secrets_dir / f"{pipeline_id}.json"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(orjson.dumps(secret_env))
        with self.store.writer() as cur:
            values = {
                "id": pipeline_id,
                "name": name,
                "template": template,
                "params": orjson.dumps(params).decode(),
            }
            _INSERT_PIPELINE.run(cur, values)
        found = self.get(pipeline_id)
        assert found is not None
        return found

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

    def add_run(self, pipeline_id: str, run_id: str, trace_id: str | None) -> None:
        with self.store.writer() as cur:
            _INSERT_RUN.run(cur, {"id": run_id, "pipeline_id": pipeline_id, "trace_id": trace_id})

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set the given fields (of ``_RUN_FIELDS``) of one run; the others keep their values."""
        values: dict[str, Any] = {}
        for key, value in fields.items():
            if key not in _RUN_FIELDS:
                raise ValueError(f"unknown run field {key}")
            is_json = key in ("rows_loaded", "error") and value is not None
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

    def unfinished_runs(self) -> list[tuple[str, str]]:
        """(run id, status) of every run still queued or running, oldest first."""
        rows = records(_UNFINISHED_RUNS.run(self.store.cursor(), {}))
        return [(row["id"], row["status"]) for row in rows]


def _pipeline(row: Mapping[str, Any]) -> Pipeline:
    return Pipeline(
        row["id"], row["name"], row["template"], orjson.loads(row["params"]), _time(row["created_at"])
    )


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
    }
