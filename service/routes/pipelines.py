"""``/api/templates``, ``/api/pipelines`` and ``/api/runs``: define pipelines, run them, follow runs."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Collection
from typing import Any

from flask import Blueprint, Response, jsonify, request

from exporters.store.pipelines import DuplicateName, Pipeline, PipelineBusy
from service.errors import ApiError, bad_parameter
from service.params import parse_identifier, parse_limit, reject_unknown
from service.run_manifest import InvalidManifest, check_manifest, check_outcome
from service.schedule import Schedule, parse_schedule
from service.state import state
from templates import secret_params
from templates.catalog import TEMPLATES
from templates.render import Rendered, TemplateError, check_user_code, render, template

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


# The fields of a pipeline definition, in POST (name and template required) and PUT (name required).
_DEFINITION_FIELDS = ("name", "template", "params", "schedule")


def _definition(body: dict[str, Any]) -> tuple[str, str | None, Schedule | None]:
    """The name, template and schedule of a POST or PUT body; unknown fields are refused."""
    unknown = set(body) - set(_DEFINITION_FIELDS)
    if unknown:
        raise bad_parameter(sorted(unknown)[0], f"unknown field; expected {', '.join(_DEFINITION_FIELDS)}")
    name, template_name = body.get("name"), body.get("template")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise bad_parameter("name", "must be a non-empty string of at most 200 characters")
    if template_name is not None and not isinstance(template_name, str):
        raise bad_parameter("template", f"must be one of {', '.join(TEMPLATES)}")
    return name.strip(), template_name, parse_schedule(body.get("schedule"))


def _rendered(template_name: str, params: Any, known_secrets: Collection[str] = ()) -> Rendered:
    try:
        # Rendering validates the parameters and proves the script parses before we keep it.
        rendered = render(template_name, params, "validation", known_secrets)
        if template_name == USER_CODE_TEMPLATE:
            check_user_code(rendered.public_params["code"])
        return rendered
    except TemplateError as exc:
        raise ApiError(400, "invalid_parameter", str(exc), exc.parameter) from exc


def _json(pipeline: Pipeline) -> dict[str, Any]:
    next_run = state().scheduler.next_run_at(pipeline.id)
    return {**pipeline.as_json(), "next_run_at": _time(next_run)}


def _time(moment: datetime.datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _duplicate(exc: DuplicateName) -> ApiError:
    return ApiError(409, "conflict", f"name: {exc}; pipeline names are unique (without case)", "name")


@blueprint.post("/pipelines")
def create_pipeline() -> tuple[Response, int]:
    body = _body()
    name, template_name, schedule = _definition(body)
    if template_name is None:
        raise bad_parameter("template", f"must be one of {', '.join(TEMPLATES)}")
    _refuse_user_code(template_name)
    rendered = _rendered(template_name, body.get("params", {}))
    try:
        pipeline = state().repository.create(
            name, template_name, rendered.public_params, rendered.secret_env,
            schedule.as_json() if schedule else None,
        )  # fmt: skip
    except DuplicateName as exc:
        raise _duplicate(exc) from exc
    state().scheduler.track(pipeline)
    return jsonify(_json(pipeline)), 201


@blueprint.put("/pipelines/<pipeline_id>")
def replace_pipeline(pipeline_id: str) -> Response:
    """Replace the definition: name, params and schedule as sent; the template cannot change.

    Secrets are never returned, so a secret parameter left out keeps its stored value; one sent (even
    empty) replaces it.
    """
    pipeline = _pipeline(pipeline_id)
    body = _body()
    name, template_name, schedule = _definition(body)
    if template_name is not None and template_name != pipeline.template:
        raise bad_parameter("template", f"is {pipeline.template} and cannot change; define a new pipeline")
    _refuse_user_code(pipeline.template)
    params = body.get("params", {})
    spec = template(pipeline.template)
    stored = state().repository.secret_env(pipeline.id)
    kept = {key for key, variable in spec.secrets.items() if variable in stored}
    if isinstance(params, dict):
        kept -= set(params)
        # A required secret kept from before passes validation as a placeholder; it never reaches the
        # stored parameters (secrets are taken out of them).
        params = {**params, **{key: "<kept>" for key in kept if key in spec.required}}
    # Credentials found in ordinary fields (secret_params) sent back as listed, redacted: kept too.
    unchanged = secret_params.unchanged(pipeline.params, params, stored)
    rendered = _rendered(pipeline.template, params, unchanged)
    kept_env = {spec.secrets[key]: stored[spec.secrets[key]] for key in kept}
    kept_env |= {variable: stored[variable] for variable in unchanged}
    try:
        updated = state().repository.update(
            pipeline.id, name, rendered.public_params,
            {**rendered.secret_env, **kept_env}, schedule.as_json() if schedule else None,
        )  # fmt: skip
    except DuplicateName as exc:
        raise _duplicate(exc) from exc
    if updated is None:
        raise ApiError(404, "not_found", f"no pipeline {pipeline_id}", "pipeline_id")
    state().scheduler.track(updated)
    return jsonify(_json(updated))


@blueprint.delete("/pipelines/<pipeline_id>")
def delete_pipeline(pipeline_id: str) -> Response:
    """Remove the definition and its secrets; its runs and their telemetry stay. 409 while one runs."""
    pipeline = _pipeline(pipeline_id)
    try:
        deleted = state().repository.delete(pipeline.id)
    except PipelineBusy as exc:
        raise ApiError(409, "conflict", str(exc), "pipeline_id") from exc
    if not deleted:
        raise ApiError(404, "not_found", f"no pipeline {pipeline_id}", "pipeline_id")
    state().scheduler.forget(pipeline.id)
    return jsonify({"id": pipeline.id, "deleted": True})


@blueprint.get("/pipelines")
def list_pipelines() -> Response:
    reject_unknown(request.args, frozenset())
    return jsonify({"pipelines": [_json(p) for p in state().repository.all()]})


def _or_404(found: Any, parameter: str, value: str) -> Any:
    if found is None:
        raise ApiError(404, "not_found", f"no {parameter.removesuffix('_id')} {value}", parameter)
    return found


def _pipeline(pipeline_id: str) -> Pipeline:
    found: Pipeline = _or_404(
        state().repository.get(parse_identifier("pipeline_id", pipeline_id)), "pipeline_id", pipeline_id
    )
    return found


@blueprint.get("/pipelines/<pipeline_id>")
def get_pipeline(pipeline_id: str) -> Response:
    pipeline = _pipeline(pipeline_id)
    return jsonify({**_json(pipeline), "runs": state().repository.runs(pipeline.id, limit=10)})


def _run_overrides(pipeline: Pipeline) -> dict[str, Any]:
    """The ``params`` of a POST .../runs body: this run's parameters over the pipeline's.

    No body, or ``{}``, runs the pipeline as defined. Secrets cannot be overridden: they live only in
    the pipeline's definition (PUT it to change one).
    """
    if not request.get_data():
        return {}
    body = _body()
    unknown = set(body) - {"params"}
    if unknown:
        raise bad_parameter(sorted(unknown)[0], "unknown field; expected params")
    overrides = body.get("params", {})
    if not isinstance(overrides, dict):
        raise bad_parameter("params", "must be an object of parameters for this run")
    secret = sorted(set(overrides) & set(template(pipeline.template).secrets))
    if secret:
        raise bad_parameter(f"params.{secret[0]}", "is a secret: it cannot be set per run; PUT the pipeline")
    return overrides


@blueprint.post("/pipelines/<pipeline_id>/runs")
def start_run(pipeline_id: str) -> tuple[Response, int]:
    pipeline = _pipeline(pipeline_id)
    _refuse_user_code(pipeline.template)  # one defined while it was allowed runs only while it still is
    overrides = _run_overrides(pipeline)
    if overrides:
        # Validated as a whole, as the run will use them: the template's schema and its checks.
        secrets = {key: "<secret>" for key in template(pipeline.template).required
                   if key in template(pipeline.template).secrets}  # fmt: skip
        merged = _rendered(pipeline.template, {**pipeline.params, **secrets, **overrides}).public_params
        pipeline = dataclasses.replace(pipeline, params=merged)
    return jsonify(state().runs.start(pipeline, overrides)), 202


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
    try:
        return jsonify(state().runs.register(manifest)), 201
    except DuplicateName as exc:
        raise _duplicate(exc) from exc


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
