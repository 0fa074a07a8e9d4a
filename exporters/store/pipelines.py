"""Pipeline definitions and runs, kept in the service's database; secrets kept beside it, not in it."""

from __future__ import annotations

import datetime
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from exporters.store import TelemetryStore

RUN_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")


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
        """dlt's pipeline name: stable per pipeline, so its state carries over between runs."""
        slug = "".join(ch if ch.isalnum() else "_" for ch in self.name.lower()).strip("_")[:40] or "pipeline"
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
            cur.execute(
                "INSERT INTO pipelines (id, name, template, params) VALUES (?, ?, ?, ?)",
                [pipeline_id, name, template, orjson.dumps(params).decode()],
            )
        found = self.get(pipeline_id)
        assert found is not None
        return found

    def secret_env(self, pipeline_id: str) -> dict[str, str]:
        path = self.secrets_dir / f"{pipeline_id}.json"
        secrets: dict[str, str] = orjson.loads(path.read_bytes()) if path.exists() else {}
        return secrets

    def get(self, pipeline_id: str) -> Pipeline | None:
        row = (
            self.store.cursor()
            .execute(
                "SELECT id, name, template, params, created_at FROM pipelines WHERE id = ?", [pipeline_id]
            )
            .fetchone()
        )
        return _pipeline(row) if row else None

    def all(self) -> list[Pipeline]:
        rows = (
            self.store.cursor()
            .execute(
                "SELECT id, name, template, params, created_at FROM pipelines ORDER BY created_at DESC, id"
            )
            .fetchall()
        )
        return [_pipeline(row) for row in rows]

    def add_run(self, pipeline_id: str, run_id: str, trace_id: str | None) -> None:
        with self.store.writer() as cur:
            cur.execute(
                "INSERT INTO runs (id, pipeline_id, status, trace_id) VALUES (?, ?, 'queued', ?)",
                [run_id, pipeline_id, trace_id],
            )

    def update_run(self, run_id: str, **fields: Any) -> None:
        columns, values = [], []
        for key, value in fields.items():
            if key not in {"status", "started_at", "finished_at", "exit_code", "rows_loaded", "error"}:
                raise ValueError(f"unknown run field {key}")
            columns.append(f"{key} = ?")
            is_json = key in ("rows_loaded", "error") and value is not None
            values.append(orjson.dumps(value).decode() if is_json else value)
        with self.store.writer() as cur:
            cur.execute(f"UPDATE runs SET {', '.join(columns)} WHERE id = ?", [*values, run_id])

    def run(self, run_id: str) -> dict[str, Any] | None:
        row = (
            self.store.cursor().execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", [run_id]).fetchone()
        )
        return _run(row) if row else None

    def runs(self, pipeline_id: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = (
            self.store.cursor()
            .execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE pipeline_id = ? ORDER BY queued_at DESC, id LIMIT ?",
                [pipeline_id, limit],
            )
            .fetchall()
        )
        runs = [_run(row) for row in rows]
        if runs:
            # Error records per run, for the runs listed: one grouped scan of the pipeline's logs.
            counts = dict(
                self.store.cursor()
                .execute(
                    "SELECT run_id, count(*) FROM logs WHERE pipeline_id = ? AND severity_number >= 17"
                    " GROUP BY run_id",
                    [pipeline_id],
                )
                .fetchall()
            )
            for run in runs:
                run["error_count"] = int(counts.get(run["run_id"], 0))
        return runs

    def fail_interrupted(self) -> int:
        """Runs left queued or running by a service that died can never finish: mark them failed."""
        error = orjson.dumps(
            {"type": "Interrupted", "message": "the service stopped while the run was in flight"}
        )
        with self.store.writer() as cur:
            row = cur.execute(
                "UPDATE runs SET status = 'failed', finished_at = now(), error = ? "
                "WHERE status IN ('queued', 'running')",
                [error.decode()],
            ).fetchone()
        return int(row[0]) if row else 0


_RUN_COLUMNS = (
    "id, pipeline_id, status, trace_id, queued_at, started_at, finished_at, exit_code, rows_loaded, error"
)


def _pipeline(row: Any) -> Pipeline:
    return Pipeline(row[0], row[1], row[2], orjson.loads(row[3]), _time(row[4]))


def _run(row: Any) -> dict[str, Any]:
    run_id, pipeline_id, status, trace_id, queued, started, finished, exit_code, rows, error = row
    duration = (finished - started).total_seconds() if started and finished else None
    return {
        "run_id": run_id,
        "pipeline_id": pipeline_id,
        "status": status,
        "trace_id": trace_id,
        "queued_at": _time(queued),
        "started_at": _time(started),
        "finished_at": _time(finished),
        "duration_seconds": duration,
        "exit_code": exit_code,
        "rows_loaded": orjson.loads(rows) if rows else {},
        "error": orjson.loads(error) if error else None,
    }
