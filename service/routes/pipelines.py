"""``/api/templates``, ``/api/pipelines`` and ``/api/runs``: define pipelines, run them, follow runs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from service.errors import ApiError, bad_parameter
from service.params import parse_identifier, parse_limit, reject_unknown
from service.run_manifest import InvalidManifest, check_manifest, check_outcome
from service.state import state
from templates.catalog import TEMPLATES
from templates.render import TemplateError, render

blueprint = Blueprint("pipelines", __name__, url_prefix="/api")


# The one template that runs whatever code the request sends.
USER_CODE_TEMPLATE = "dlt_code"


def _refuse_user_code(template_name: object) -> None:
    if template_name == USER_CODE_TEMPLATE and not state().settings.user_code_allowed:
        raise ApiError(
            403, "user_code_disabled", f"the {USER_CODE_TEMPLATE} template runs arbitrary code: set "
            "PIPETRACE_API_TOKEN, or PIPETRACE_ALLOW_USER_CODE=true on a loopback address", "template",
        )  # fmt: skip


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "expected a JSON object", "body")
    return body


@blueprint.get("/templates")
def templates() -> Response:
    reject_unknown(request.args, frozenset())
    return jsonify(
        {"templates": [{"name": t.name, "description": t.description, "parameters": t.schema()}
                       for t in TEMPLATES.values()]}
    )  # fmt: skip


@blueprint.post("/pipelines")
def create_pipeline() -> tuple[Response, int]:
    body = _body()
    unknown = set(body) - {"name", "template", "params"}
    if unknown:
        raise bad_parameter(sorted(unknown)[0], "unknown field; expected name, template, params")
    name, template_name = body.get("name"), body.get("template")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise bad_parameter("name", "must be a non-empty string of at most 200 characters")
    if not isinstance(template_name, str):
        raise bad_parameter("template", f"must be one of {', '.join(TEMPLATES)}")
    _refuse_user_code(template_name)
    try:
        # Rendering once here validates the parameters and proves the script parses before we keep it.
        rendered = render(template_name, body.get("params", {}), "validation")
    except TemplateError as exc:
        raise ApiError(400, "invalid_parameter", str(exc), exc.parameter) from exc
    pipeline = state().repository.create(
        name.strip(), template_name, rendered.public_params, rendered.secret_env
    )
    return jsonify(pipeline.as_json()), 201


@blueprint.get("/pipelines")
def list_pipelines() -> Response:
    reject_unknown(request.args, frozenset())
    return jsonify({"pipelines": [p.as_json() for p in state().repository.all()]})


def _or_404(found: Any, parameter: str, value: str) -> Any:
    if found is None:
        raise ApiError(404, "not_found", f"no {parameter.removesuffix('_id')} {value}", parameter)
    return found


def _pipeline(pipeline_id: str) -> Any:
    return _or_404(
        state().repository.get(parse_identifier("pipeline_id", pipeline_id)), "pipeline_id", pipeline_id
    )


@blueprint.get("/pipelines/<pipeline_id>")
def get_pipeline(pipeline_id: str) -> Response:
    pipeline = _pipeline(pipeline_id)
    return jsonify({**pipeline.as_json(), "runs": state().repository.runs(pipeline.id, limit=10)})


@blueprint.post("/pipelines/<pipeline_id>/runs")
def start_run(pipeline_id: str) -> tuple[Response, int]:
    pipeline = _pipeline(pipeline_id)
    _refuse_user_code(pipeline.template)  # one defined while it was allowed runs only while it still is
    return jsonify(state().runs.start(pipeline)), 202


@blueprint.get("/pipelines/<pipeline_id>/runs")
def list_runs(pipeline_id: str) -> Response:
    reject_unknown(request.args, frozenset({"limit"}))
    pipeline = _pipeline(pipeline_id)
    return jsonify({"runs": state().repository.runs(pipeline.id, parse_limit(request.args.get("limit")))})


def _run(run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = _or_404(
        state().repository.run(parse_identifier("run_id", run_id)), "run_id", run_id
    )
    return run


@blueprint.get("/runs/<run_id>")
def get_run(run_id: str) -> Response:
    return jsonify(_run(run_id))


@blueprint.post("/runs")
def register_run() -> tuple[Response, int]:
    """A run that ``pipetrace run`` started here: recorded like the service's own (service.run_manifest)."""
    try:
        manifest = check_manifest(request.get_json(silent=True))
    except InvalidManifest as exc:
        raise bad_parameter(exc.parameter, exc.message) from exc
    if state().repository.run(manifest["run_id"]) is not None:
        raise ApiError(409, "conflict", f"run {manifest['run_id']} exists already", "run_id")
    return jsonify(state().runs.register(manifest)), 201


@blueprint.post("/runs/<run_id>/outcome")
def report_outcome(run_id: str) -> tuple[Response, int]:
    """How a run of ``pipetrace run`` ended, reported by the command (the service watches its own)."""
    run = _run(run_id)
    try:
        outcome = check_outcome(request.get_json(silent=True))
    except InvalidManifest as exc:
        raise bad_parameter(exc.parameter, exc.message) from exc
    if not state().runs.record_outcome(run["run_id"], outcome):
        raise ApiError(
            409, "conflict", f"run {run_id} does not wait for an outcome ({run['status']})", "run_id"
        )
    return jsonify(_run(run_id)), 200


@blueprint.post("/runs/<run_id>/cancel")
def cancel_run(run_id: str) -> tuple[Response, int]:
    run = _run(run_id)
    if not state().runs.cancel(run["run_id"]):
        raise ApiError(409, "conflict", f"run {run_id} has already finished ({run['status']})", "run_id")
    return jsonify({"run_id": run["run_id"], "status": "cancelling"}), 202
