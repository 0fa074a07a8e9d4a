"""What ``pipetrace run`` tells a service about a run it started: the manifest, and the outcome.

The same objects arrive over the API (``POST /api/runs``, ``POST /api/runs/<id>/outcome``) and, when
no service answered, in the run folder (``run.json``, ``result.json``), so both are checked here.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from exporters.store.pipelines import FINISHED
from templates.catalog import TEMPLATES
from templates.render import TemplateError, render, template

_RUN_ID = re.compile(r"^[0-9a-f]{16}$")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_MANIFEST_FIELDS = frozenset({"run_id", "trace_id", "pipeline", "started_at", "pid", "create_time", "client"})
_CLIENT_FIELDS = frozenset({"host", "boot_time", "pid", "create_time", "run_dir"})
_OUTCOME_FIELDS = frozenset(
    {"status", "rows_loaded", "error", "exit_code", "finished_at", "trace_id", "duration_seconds"}
)


class InvalidManifest(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


def _unknown(body: dict[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidManifest(unknown[0], f"unknown field; expected {', '.join(sorted(known))}")


def check_manifest(body: Any) -> dict[str, Any]:
    """The manifest, checked: a 16-hex run id, a 32-hex trace id, and a pipeline whose parameters
    are valid for its template (secret ones are not sent: the run had them, the service keeps none)."""
    if not isinstance(body, dict):
        raise InvalidManifest("body", "expected a JSON object")
    _unknown(body, _MANIFEST_FIELDS)
    if not isinstance(body.get("run_id"), str) or not _RUN_ID.match(body["run_id"]):
        raise InvalidManifest("run_id", "must be 16 lower-case hex characters")
    if not isinstance(body.get("trace_id"), str) or not _TRACE_ID.match(body["trace_id"]):
        raise InvalidManifest("trace_id", "must be 32 lower-case hex characters")
    _check_time(body, "started_at")
    if "client" in body:
        _check_client(body["client"])
    pipeline = body.get("pipeline")
    if not isinstance(pipeline, dict):
        raise InvalidManifest("pipeline", "expected an object with name, template, params")
    _unknown(pipeline, frozenset({"id", "name", "template", "params"}))
    if "id" in pipeline and (not isinstance(pipeline["id"], str) or not _RUN_ID.match(pipeline["id"])):
        raise InvalidManifest("pipeline.id", "must be 16 lower-case hex characters")
    name, template_name, params = pipeline.get("name"), pipeline.get("template"), pipeline.get("params")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidManifest("pipeline.name", "must be a non-empty string of at most 200 characters")
    if not isinstance(template_name, str) or template_name not in TEMPLATES:
        raise InvalidManifest("pipeline.template", f"must be one of {', '.join(TEMPLATES)}")
    if not isinstance(params, dict):
        raise InvalidManifest("pipeline.params", "expected an object")
    spec = template(template_name)
    withheld = {key: "<secret>" for key in spec.secrets if key in spec.required and key not in params}
    try:
        render(template_name, params | withheld, "validation")
    except TemplateError as exc:
        raise InvalidManifest(f"pipeline.{exc.parameter}" if exc.parameter else "pipeline", str(exc)) from exc
    checked = {"name": name.strip(), "template": template_name, "params": params}
    return {**body, "pipeline": checked | ({"id": pipeline["id"]} if "id" in pipeline else {})}


def _check_client(client: Any) -> None:
    """The ``pipetrace run`` process that registered the run and where its run folder is: the service
    watches that process when it runs on the same machine (same host name and boot time)."""
    if not isinstance(client, dict):
        raise InvalidManifest("client", "expected an object with host, boot_time, pid, create_time, run_dir")
    _unknown(client, _CLIENT_FIELDS)
    for key, kind in (
        ("host", str),
        ("run_dir", str),
        ("pid", int),
        ("boot_time", float),
        ("create_time", float),
    ):
        value = client.get(key)
        if kind is float:
            valid = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 2**53
        elif kind is int:
            valid = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31
        else:
            valid = isinstance(value, str) and 0 < len(value) <= 4096 and "\x00" not in value
        if not valid:
            raise InvalidManifest(
                f"client.{key}", f"expected {'a number' if kind is not str else 'a string'}"
            )


def check_outcome(body: Any) -> dict[str, Any]:
    """A run's result: a finished status, rows per table, an error object or null, an exit code."""
    if not isinstance(body, dict):
        raise InvalidManifest("body", "expected a JSON object")
    _unknown(body, _OUTCOME_FIELDS)
    if body.get("status") not in FINISHED:
        raise InvalidManifest("status", f"must be one of {', '.join(FINISHED)}")
    rows = body.get("rows_loaded", {})
    if not isinstance(rows, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63
        for k, v in rows.items()
    ):
        raise InvalidManifest("rows_loaded", "expected an object of table names to row counts")
    if body.get("error") is not None and not isinstance(body["error"], dict):
        raise InvalidManifest("error", "expected an object or null")
    code = body.get("exit_code")
    if code is not None and (
        not isinstance(code, int) or isinstance(code, bool) or not -(2**31) <= code < 2**31
    ):
        raise InvalidManifest("exit_code", "expected a 32-bit integer or null")
    _check_time(body, "finished_at")
    return body


def _check_time(body: dict[str, Any], key: str) -> None:
    value = body.get(key)
    if value is None:
        return
    try:
        parsed = datetime.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidManifest(key, "must be an RFC 3339 time with its offset")
