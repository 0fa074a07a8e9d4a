"""The OpenAPI description of ``/api/alerts`` (see ``service.openapi``, which serves it with the rest)."""

from __future__ import annotations

from typing import Any

from service.alerts.rules import CHANNELS, DEFAULT_MIN_RECORDS, KINDS, SEVERITIES, kind_params
from service.openapi import _IDENTIFIER, _json, _list, _object, _path, _query, _ref, _responses

_NULLABLE_STRING = {"type": ["string", "null"]}
_SECONDS = {"type": "number", "minimum": 0, "maximum": 366 * 86_400}
_STATE = {"type": "string", "enum": ["ok", "pending", "firing", "resolved"]}

_PARAMS_HELP = "; ".join(
    f"{kind}: " + (", ".join(f"{name}={default!r}" for name, default in params.items()) or "none")
    for kind, params in kind_params().items()
)

_TARGET = {
    "type": "object",
    "required": ["type"],
    "additionalProperties": False,
    "description": "webhook and slack take a url (a secret: answered masked, as scheme://host/***; sending "
    "the masked value back keeps the URL); email takes to, a list of addresses.",
    "properties": {
        "type": {"type": "string", "enum": list(CHANNELS)},
        "url": {"type": "string", "maxLength": 2000},
        "to": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 20},
    },
}

_DEFINITION = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "kind": {"type": "string", "enum": list(KINDS)},
    "severity": {
        "type": "string",
        "enum": list(SEVERITIES),
        "description": "The severity label of the rule's alerts (default warning).",
    },
    "pipeline_ids": {"type": "array", "items": _IDENTIFIER, "maxItems": 100, "description": "Empty: all."},
    "for_seconds": {**_SECONDS, "description": "How long the condition holds before the rule fires."},
    "repeat_seconds": {
        "type": ["number", "null"],
        "minimum": 1,
        "maximum": 366 * 86_400,
        "description": "Notify again this often while firing (default 14400); null: never again.",
    },
    "params": {
        "type": "object",
        "description": f"The kind's parameters and their defaults: {_PARAMS_HELP}. log_condition has two "
        "forms: records matching the filters (level, service_name, text, pipeline_ids) in window_seconds "
        "over threshold; or, with error_rate_percent (0-100), the share of the records matching "
        "service_name, text and pipeline_ids that are at or above level (default ERROR) over that "
        f"percentage, judged only on at least min_records records (default {DEFAULT_MIN_RECORDS}). The "
        "form not chosen leaves its parameters null; sending them gets a 400.",
    },
    "notify": {"type": "array", "items": _ref("AlertTarget"), "maxItems": 10},
    "enabled": {"type": "boolean"},
}

_DELIVERY = _object(
    id={"type": "string"},
    rule_id={"type": "string"},
    target={"type": "integer", "description": "Index of the rule's notify target"},
    channel={"type": "string", "enum": list(CHANNELS)},
    event={"type": "string", "enum": ["firing", "repeat", "resolved", "test"]},
    status={"type": "string", "enum": ["pending", "sent", "failed"]},
    attempts={"type": "integer", "minimum": 0},
    last_error=_NULLABLE_STRING,
    created_at={"type": "string"},
    updated_at={"type": "string"},
)

_SUBJECT = _object(
    key={"type": "string", "description": "A pipeline id, an exporter's name, or '' for the whole store"},
    state=_STATE,
    since=_NULLABLE_STRING,
    active_since=_NULLABLE_STRING,
    notified_at=_NULLABLE_STRING,
    details={"type": "object"},
)

ALERT_SCHEMAS: dict[str, Any] = {
    "AlertTarget": _TARGET,
    "NewAlertRule": {
        "type": "object",
        "required": ["name", "kind"],
        "additionalProperties": False,
        "properties": _DEFINITION,
    },
    "AlertRule": {
        "type": "object",
        "required": [*_DEFINITION, "id", "state", "subjects"],
        "properties": {
            "id": {"type": "string"},
            **_DEFINITION,
            "state": {**_STATE, "description": "The worst state of its subjects"},
            "subjects": {"type": "array", "items": _SUBJECT},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "evaluated_at": _NULLABLE_STRING,
            "evaluation_error": _NULLABLE_STRING,
        },
    },
    "AlertDelivery": _DELIVERY,
    "AlertTransition": _object(
        id={"type": "integer"},
        rule_id={"type": "string"},
        rule_name={"type": "string"},
        key={"type": "string"},
        **{"from": _STATE, "to": _STATE},
        at={"type": "string"},
        silenced={"type": "boolean"},
        details={"type": "object"},
        deliveries=_list("AlertDelivery"),
    ),
    "NewSilence": {
        "type": "object",
        "required": ["until"],
        "additionalProperties": False,
        "description": "Give rule_id, pipeline_id or both.",
        "properties": {
            "rule_id": _IDENTIFIER,
            "pipeline_id": _IDENTIFIER,
            "until": {"type": "string", "description": "RFC 3339, in the future"},
            "comment": {"type": "string", "maxLength": 1000},
        },
    },
    "Silence": _object(
        id={"type": "string"},
        rule_id=_NULLABLE_STRING,
        pipeline_id=_NULLABLE_STRING,
        until={"type": "string"},
        comment=_NULLABLE_STRING,
        created_at={"type": "string"},
    ),
}

_SECURITY: list[dict[str, list[str]]] = [{"api": []}]
_RULE_ID = _path("rule_id", "The rule's id")
_DELETED = {"204": {"description": "Deleted"}}


def _operation(summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"summary": summary, "tags": ["alerts"], "security": _SECURITY, **more, "responses": responses}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, **_json(_ref(schema))}


ALERT_PATHS: dict[str, Any] = {
    "/api/alerts/rules": {
        "get": _operation(
            "Alert rules with their state", _responses("200", _object(rules=_list("AlertRule")))
        ),
        "post": _operation(
            "Create an alert rule",
            _responses("201", _ref("AlertRule"), "415"),
            requestBody=_body("NewAlertRule"),
        ),
    },
    "/api/alerts/rules/{rule_id}": {
        "get": _operation(
            "An alert rule", _responses("200", _ref("AlertRule"), "404"), parameters=[_RULE_ID]
        ),
        "put": _operation(
            "Replace an alert rule's definition (its subjects start again from ok)",
            _responses("200", _ref("AlertRule"), "404", "415"),
            parameters=[_RULE_ID],
            requestBody=_body("NewAlertRule"),
        ),
        "delete": _operation(
            "Delete an alert rule (its history stays)",
            {**_responses("204", {}, "404", "415"), **_DELETED},
            parameters=[_RULE_ID],
        ),
    },
    "/api/alerts/rules/{rule_id}/test": {
        "post": _operation(
            "Send a test notification to each of the rule's targets now",
            _responses("200", _object(deliveries=_list("AlertDelivery")), "404", "415"),
            parameters=[_RULE_ID],
        )
    },
    "/api/alerts/history": {
        "get": _operation(
            "Transitions, newest first, with the notifications each caused",
            _responses(
                "200", _object(history=_list("AlertTransition"), next_before={"type": ["integer", "null"]})
            ),
            parameters=[
                _query("rule_id", _IDENTIFIER, "Only this rule's transitions."),
                _query(
                    "limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "Page size."
                ),
                _query("before", {"type": "integer", "minimum": 0}, "next_before of the previous page."),
            ],
        )
    },
    "/api/alerts/silences": {
        "get": _operation("Silences", _responses("200", _object(silences=_list("Silence")))),
        "post": _operation(
            "Mute a rule, a pipeline or both until a time",
            _responses("201", _ref("Silence"), "415"),
            requestBody=_body("NewSilence"),
        ),
    },
    "/api/alerts/silences/{silence_id}": {
        "delete": _operation(
            "End a silence",
            {**_responses("204", {}, "404", "415"), **_DELETED},
            parameters=[_path("silence_id", "The silence's id")],
        )
    },
}
