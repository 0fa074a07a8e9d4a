"""Render a template into a runnable pipeline script, safely.

Parameters are validated against the template's JSON Schema, then inserted by Jinja2 only through the
``py`` filter, which writes a Python literal (or refuses the value). A string parameter therefore ends
up as a quoted string literal whatever it contains: quotes, newlines and ``__import__`` included. The
result is parsed before it is returned, so a rendered script always parses.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import jsonschema
from jinja2 import Environment, PackageLoader, StrictUndefined

from templates import secret_params
from templates.catalog import TEMPLATES, Template
from templates.secret_params import SecretRef


class TemplateError(ValueError):
    """Bad template name or parameters; ``parameter`` is the JSON path of the offending value."""

    def __init__(self, message: str, parameter: str) -> None:
        super().__init__(message)
        self.parameter = parameter


def python_literal(value: Any) -> str:
    """The Python literal for a JSON-like value; anything else is refused. A secret is read from the
    run's environment instead (``templates/secret_params.py``)."""
    if isinstance(value, SecretRef):
        return f"sources.secret({value.env!r})"
    if value is None or isinstance(value, bool | int | str):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TemplateError(f"{value!r} is not a finite number", "params")
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(python_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TemplateError(f"object keys must be strings, not {key!r}", "params")
            items.append(f"{key!r}: {python_literal(item)}")
        return "{" + ", ".join(items) + "}"
    raise TemplateError(f"a {type(value).__name__} cannot be a parameter", "params")


_environment = Environment(
    loader=PackageLoader("templates", "scripts"),
    undefined=StrictUndefined,
    autoescape=False,  # the output is Python, not HTML; safety comes from the `py` filter
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters["py"] = python_literal


@dataclass(frozen=True)
class Rendered:
    script: str
    public_params: dict[str, Any]  # validated, defaults filled, secrets removed or redacted: safe to store
    secret_env: dict[str, str]  # environment variables carrying the secrets to the run


def template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise TemplateError(f"unknown template {name!r}; one of {', '.join(TEMPLATES)}", "template") from None


def validate(spec: Template, params: Any) -> dict[str, Any]:
    """Validated parameters with defaults filled in; a TemplateError names the first bad one."""
    if not isinstance(params, dict):
        raise TemplateError("params must be a JSON object", "params")
    validator = jsonschema.Draft202012Validator(spec.schema())
    errors = sorted(validator.iter_errors(params), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        error = errors[0]
        path = ".".join(str(part) for part in error.absolute_path)
        if error.validator == "additionalProperties":
            unknown = re.findall(r"'([^']+)' was unexpected", error.message)
            path = ".".join(filter(None, [path, unknown[0] if unknown else ""]))
        parameter = f"params.{path}" if path else "params"
        raise TemplateError(f"{parameter}: {error.message[:300]}", parameter)
    filled = dict(params)
    for key, prop in spec.schema()["properties"].items():
        if key not in filled and "default" in prop:
            filled[key] = prop["default"]
    return filled


def _api_context(params: dict[str, Any]) -> dict[str, Any]:
    paginator = dict(params["paginator"])
    kind = paginator.pop("type")
    auth = dict(params["auth"])
    auth_kind = auth.pop("type")
    resources = []
    for resource in params["resources"]:
        endpoint: dict[str, Any] = {"path": resource["path"]}
        if resource.get("params"):
            endpoint["params"] = resource["params"]
        if resource.get("data_selector"):
            endpoint["data_selector"] = resource["data_selector"]
        entry: dict[str, Any] = {"name": resource["name"], "endpoint": endpoint}
        if resource.get("primary_key"):
            entry["primary_key"] = resource["primary_key"]
        resources.append(entry)
    return {
        "paginator": {"type": "single_page"} if kind == "none" else {"type": kind, **paginator},
        "auth": None
        if auth_kind == "none"
        else {"type": "http_basic" if auth_kind == "basic" else auth_kind, **auth},
        "resources": resources,
    }


def check_user_code(code: str) -> None:
    """The dlt_code template's code must compile and define ``data_source`` at its top level.

    Checked when the pipeline is defined (service.routes.pipelines), so a typo is a 400 naming its
    line, not a failed run later. Only the text is read: the code is not run here. ``render`` itself
    does not check: whatever the text, it becomes one string literal of the script.
    """
    try:
        tree = ast.parse(code, "<dlt_code>")
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        raise TemplateError(f"params.code: {where}: {exc.msg}", "params.code") from None
    except ValueError as exc:  # a NUL character
        raise TemplateError(f"params.code: {exc}", "params.code") from None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = {node.name}
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {target.id for target in targets if isinstance(target, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = {alias.asname or alias.name for alias in node.names}
        else:
            continue
        if "data_source" in names:
            return
    raise TemplateError(
        "params.code: defines no data_source; add def data_source(): returning a dlt source or resource",
        "params.code",
    )


_PIPELINE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


def render(name: str, params: Any, pipeline_name: str, known_secrets: Collection[str] = ()) -> Rendered:
    """The script for template ``name``; ``known_secrets`` names the secret variables the run will have
    (a stored pipeline's), so the leaves they stand for are read from the environment."""
    if not _PIPELINE_NAME.match(pipeline_name):
        # It also names the script in its docstring, as text: only an identifier may go there.
        raise TemplateError(f"pipeline name {pipeline_name!r} must be a lower-case identifier", "name")
    spec = template(name)
    filled = validate(spec, params)
    secrets = {key: filled.pop(key) for key in list(filled) if spec.properties.get(key, {}).get("x-secret")}
    # Credentials in any other field (a base_url's user:pass@, a resource's params.api_key).
    found = secret_params.split(filled, known_secrets)
    context: dict[str, Any] = {"template": name, "pipeline_name": pipeline_name, "params": found.script}
    if name == "api":
        context.update(_api_context(found.script))
    script = _environment.get_template(spec.script).render(**context)
    ast.parse(script)  # a rendered script always parses; a template bug fails here, not in a run
    secret_env = {spec.secrets[key]: str(value) for key, value in secrets.items() if value not in ("", None)}
    return Rendered(script, found.public, {**secret_env, **found.env})
