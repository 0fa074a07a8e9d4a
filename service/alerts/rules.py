"""An alert rule as the API takes it: validated field by field, every failure naming its field.

A field left out takes its default, and the rule is returned with it, so what a rule does is read from
the rule. Notification URLs (webhook, Slack) are secrets: they are taken out of the definition and
kept apart (``exporters.store.alerts``); the definition and every answer hold them masked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from exporters.store.alerts import iso
from service.alerts.messages import DEFAULT_SEVERITY
from service.errors import bad_parameter
from service.params import LEVELS, parse_identifier

KINDS = ("run_failed", "no_rows", "freshness", "slow_run", "log_condition", "ingest_health")
CHANNELS = ("webhook", "slack", "email")
# Alertmanager's default repeat interval.
DEFAULT_REPEAT_SECONDS = 4 * 3600
_YEAR = 366 * 86_400
_MAX_TARGETS = 10
_MAX_PIPELINES = 100
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")
MASK = "***"

_FIELDS = ("name", "kind", "severity", "pipeline_ids", "for_seconds", "repeat_seconds", "params", "notify",
           "enabled")  # fmt: skip
# The severity label of the rule's alerts, for a receiver's routing (Alertmanager's convention).
SEVERITIES = ("critical", "warning", "info")


def _number(field: str, value: Any, low: float, high: float, *, whole: bool = False) -> float | int:
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        what = "a whole number" if whole else "a number"
        raise bad_parameter(field, f"must be {what} from {low:g} to {high:g}")
    return value


def _text(field: str, value: Any, max_length: int = 200) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise bad_parameter(field, f"must be a non-empty string of at most {max_length} characters")
    if any(ord(ch) < 32 for ch in value):
        raise bad_parameter(field, "must not contain control characters")
    return value


def _bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise bad_parameter(field, "must be true or false")
    return value


def _level(field: str, value: Any) -> str:
    if not isinstance(value, str) or value.upper() not in LEVELS:
        raise bad_parameter(field, f"must be one of {', '.join(LEVELS)}")
    return value.upper()


# Each kind's params: name -> (parse, default); a default of ... means the param is required.
_Param = tuple[Callable[[str, Any], Any], Any]
_PARAMS: dict[str, dict[str, _Param]] = {
    "run_failed": {},
    "no_rows": {
        "table": (lambda f, v: None if v is None else _text(f, v), None),
        "min_rows": (lambda f, v: _number(f, v, 1, 2**62, whole=True), 1),
    },
    "freshness": {"window_seconds": (lambda f, v: _number(f, v, 1, 10 * _YEAR), ...)},
    "slow_run": {
        "factor": (lambda f, v: _number(f, v, 1, 1000), 3),
        "last_n": (lambda f, v: _number(f, v, 1, 1000, whole=True), 10),
        "min_runs": (lambda f, v: _number(f, v, 1, 1000, whole=True), 3),
    },
    "log_condition": {
        "window_seconds": (lambda f, v: _number(f, v, 1, _YEAR), ...),
        "threshold": (lambda f, v: None if v is None else _number(f, v, 0, 2**62, whole=True), 0),
        "level": (lambda f, v: None if v is None else _level(f, v), None),
        "service_name": (lambda f, v: None if v is None else _text(f, v, 256), None),
        "text": (lambda f, v: None if v is None else _text(f, v, 500), None),
        "error_rate_percent": (lambda f, v: None if v is None else _number(f, v, 0, 100), None),
        "min_records": (lambda f, v: None if v is None else _number(f, v, 1, 2**62, whole=True), None),
    },
    "ingest_health": {
        "breaker_open": (_bool, True),
        "spool_records_above": (
            lambda f, v: None if v is None else _number(f, v, 0, 2**62, whole=True),
            None,
        ),
        "dropped_above": (lambda f, v: None if v is None else _number(f, v, 0, 2**62, whole=True), 0),
    },
}


def kind_params() -> dict[str, dict[str, Any]]:
    """Each kind's params and their defaults (None: optional, unset), for the OpenAPI document."""
    return {
        kind: {name: default for name, (_, default) in params.items()} for kind, params in _PARAMS.items()
    }


def mask_url(url: str) -> str:
    """Scheme and host only: the path of a webhook or Slack URL is its credential."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}/{MASK}"


def _url(field: str, value: Any) -> str:
    url = _text(field, value, 2000)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise bad_parameter(field, f"is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_parameter(field, "must be an http:// or https:// URL with a host")
    return url


def _target(field: str, value: Any, previous: Sequence[str | None]) -> tuple[dict[str, Any], str | None]:
    """One notification target, masked, and its secret URL (None for e-mail)."""
    if not isinstance(value, dict):
        raise bad_parameter(field, 'must be an object such as {"type": "webhook", "url": "https://..."}')
    channel = value.get("type")
    if channel not in CHANNELS:
        raise bad_parameter(f"{field}.type", f"must be one of {', '.join(CHANNELS)}")
    allowed = {"type", "to"} if channel == "email" else {"type", "url"}
    for name in value:
        if name not in allowed:
            raise bad_parameter(
                f"{field}.{name}", f"unknown field; {channel} takes {', '.join(sorted(allowed))}"
            )
    if channel == "email":
        to = value.get("to")
        if not isinstance(to, list) or not 1 <= len(to) <= 20:
            raise bad_parameter(f"{field}.to", "must be a list of 1 to 20 e-mail addresses")
        for i, address in enumerate(to):
            if not isinstance(address, str) or len(address) > 254 or not _EMAIL.match(address):
                raise bad_parameter(f"{field}.to[{i}]", "is not an e-mail address")
        return {"type": channel, "to": list(to)}, None
    sent = value.get("url")
    # An answer's masked URL sent back unchanged (an edit of other fields) keeps the URL it stands for.
    kept = next((old for old in previous if old is not None and mask_url(old) == sent), None)
    url = kept if kept is not None else _url(f"{field}.url", sent)
    return {"type": channel, "url": mask_url(url)}, url


def _params(kind: str, value: Any) -> dict[str, Any]:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise bad_parameter("params", "must be an object")
    specs = _PARAMS[kind]
    for name in value:
        if name not in specs:
            expected = ", ".join(specs) or "none"
            raise bad_parameter(f"params.{name}", f"unknown parameter for {kind}; expected {expected}")
    parsed: dict[str, Any] = {}
    for name, (parse, default) in specs.items():
        if name in value:
            parsed[name] = parse(f"params.{name}", value[name])
        elif default is ...:
            raise bad_parameter(f"params.{name}", f"is required for {kind}")
        else:
            parsed[name] = default
    if kind == "log_condition":
        _log_condition_form(value, parsed)
    if kind == "ingest_health" and not parsed["breaker_open"] and parsed["spool_records_above"] is None \
            and parsed["dropped_above"] is None:  # fmt: skip
        raise bad_parameter(
            "params", "ingest_health needs breaker_open, spool_records_above or dropped_above"
        )
    return parsed


# The error-rate form's defaults: the share of records at or above ERROR, and no verdict on fewer than
# this many records (1 error among 1 record is 100 %; a user who wants that says min_records 1).
DEFAULT_RATE_LEVEL = "ERROR"
DEFAULT_MIN_RECORDS = 10


def _log_condition_form(sent: Mapping[str, Any], parsed: dict[str, Any]) -> None:
    """A log condition counts matching records (``threshold``) or, with ``error_rate_percent``, weighs
    the records at or above ``level`` against all records matching the other filters. The parameters
    of the form not chosen are refused rather than ignored, and left null in the rule."""
    if parsed["error_rate_percent"] is None:
        if sent.get("min_records") is not None:
            raise bad_parameter("params.min_records", "only applies with error_rate_percent")
        if parsed["threshold"] is None:  # a rule answered in the other form, sent back
            parsed["threshold"] = 0
        return
    if sent.get("threshold") is not None:
        raise bad_parameter(
            "params.threshold", "the error-rate form (error_rate_percent) takes no threshold; leave it out"
        )
    parsed["threshold"] = None
    if parsed["level"] is None:
        parsed["level"] = DEFAULT_RATE_LEVEL
    if parsed["min_records"] is None:
        parsed["min_records"] = DEFAULT_MIN_RECORDS


def parse_rule(
    body: Any, previous_secrets: Sequence[str | None] = ()
) -> tuple[dict[str, Any], list[str | None]]:
    """The rule's definition (URLs masked) and its targets' secret URLs, in order."""
    if not isinstance(body, dict):
        raise bad_parameter("body", "expected a JSON object")
    for name in body:
        if name not in _FIELDS:
            raise bad_parameter(name, f"unknown field; expected one of {', '.join(_FIELDS)}")
    name = _text("name", body.get("name"))
    kind = body.get("kind")
    if kind not in KINDS:
        raise bad_parameter("kind", f"must be one of {', '.join(KINDS)}")
    severity = body.get("severity", DEFAULT_SEVERITY)
    if severity not in SEVERITIES:
        raise bad_parameter("severity", f"must be one of {', '.join(SEVERITIES)}")
    pipeline_ids = body.get("pipeline_ids", [])
    if not isinstance(pipeline_ids, list) or len(pipeline_ids) > _MAX_PIPELINES:
        raise bad_parameter("pipeline_ids", f"must be a list of at most {_MAX_PIPELINES} pipeline ids")
    for i, pipeline_id in enumerate(pipeline_ids):
        if not isinstance(pipeline_id, str):
            raise bad_parameter(f"pipeline_ids[{i}]", "must be a string")
        parse_identifier(f"pipeline_ids[{i}]", pipeline_id)
    if kind == "ingest_health" and pipeline_ids:
        raise bad_parameter(
            "pipeline_ids", "ingest_health watches the service, not pipelines: leave it empty"
        )
    for_seconds = _number("for_seconds", body.get("for_seconds", 0), 0, _YEAR)
    repeat = body.get("repeat_seconds", DEFAULT_REPEAT_SECONDS)
    repeat_seconds = None if repeat is None else _number("repeat_seconds", repeat, 1, _YEAR)
    notify = body.get("notify", [])
    if not isinstance(notify, list) or len(notify) > _MAX_TARGETS:
        raise bad_parameter("notify", f"must be a list of at most {_MAX_TARGETS} targets")
    targets = [_target(f"notify[{i}]", target, previous_secrets) for i, target in enumerate(notify)]
    definition = {
        "name": name,
        "kind": kind,
        "severity": severity,
        "pipeline_ids": list(dict.fromkeys(pipeline_ids)),
        "for_seconds": for_seconds,
        "repeat_seconds": repeat_seconds,
        "params": _params(kind, body.get("params")),
        "notify": [target for target, _ in targets],
        "enabled": _bool("enabled", body.get("enabled", True)),
    }
    return definition, [secret for _, secret in targets]


def rule_json(rule: Any, instances: Mapping[str, Any]) -> dict[str, Any]:
    """A stored rule as the API answers it: its definition, its state (the worst of its subjects') and
    each subject's state."""
    subjects = [instance.as_json() for instance in instances.values()]
    order = {"firing": 3, "pending": 2, "resolved": 1, "ok": 0}
    state = max((s["state"] for s in subjects), key=order.__getitem__, default="ok")
    definition = dict(rule.definition)
    # A rule stored before a field existed behaves as its default says: answered with it.
    definition.setdefault("severity", DEFAULT_SEVERITY)
    if rule.kind == "log_condition":
        definition["params"] = {"error_rate_percent": None, "min_records": None, **definition["params"]}
    return {
        "id": rule.id,
        **definition,
        "state": state,
        "subjects": subjects,
        "created_at": iso(rule.created_at),
        "updated_at": iso(rule.updated_at),
        "evaluated_at": iso(rule.evaluated_at),
        "evaluation_error": rule.evaluation_error,
    }
