"""``/api/alerts``: alert rules with their state, the history of transitions and deliveries, silences,
and a test notification per rule."""

from __future__ import annotations

import datetime
import re
from typing import Any

from flask import Blueprint, Response, jsonify, request

from exporters.store.alerts import Notification, StoredRule
from service.alerts.rules import parse_rule, rule_json
from service.alerts.service import Alerts, alerts_of
from service.errors import ApiError, bad_parameter
from service.params import NS, parse_identifier, parse_limit, parse_time, reject_unknown

blueprint = Blueprint("alerts", __name__, url_prefix="/api/alerts")

_WHOLE_NUMBER = re.compile(r"^[0-9]{1,18}$")


def _body() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "expected a JSON object", "body")
    return body


def _rule(rule_id: str) -> Any:
    found = alerts_of().store.rule(parse_identifier("rule_id", rule_id))
    if found is None:
        raise ApiError(404, "not_found", f"no rule {rule_id}", "rule_id")
    return found


def _answer(rule: Any) -> dict[str, Any]:
    return rule_json(rule, alerts_of().store.instances().get(rule.id, {}))


@blueprint.get("/rules")
def list_rules() -> Response:
    reject_unknown(request.args, frozenset())
    alerts = alerts_of()
    instances = alerts.store.instances()
    return jsonify({"rules": [rule_json(rule, instances.get(rule.id, {})) for rule in alerts.store.rules()]})


@blueprint.post("/rules")
def create_rule() -> tuple[Response, int]:
    alerts = alerts_of()
    definition, secrets = parse_rule(_body())
    rule = alerts.store.create_rule(definition, secrets, alerts.evaluator.clock())
    return jsonify(_answer(rule)), 201


@blueprint.get("/rules/<rule_id>")
def get_rule(rule_id: str) -> Response:
    reject_unknown(request.args, frozenset())
    return jsonify(_answer(_rule(rule_id)))


@blueprint.put("/rules/<rule_id>")
def update_rule(rule_id: str) -> Response:
    alerts = alerts_of()
    rule = _rule(rule_id)
    stored_secrets = alerts.store.rule_secrets(rule.id)
    definition, secrets = parse_rule(_body(), stored_secrets)
    if definition == rule.definition and secrets == stored_secrets:
        # Saved as it was (a form saved untouched): it keeps its state, and no "resolved" is sent
        # for an alert that still holds.
        return jsonify(_answer(rule))
    with alerts.evaluator.lock:
        _resolve(alerts, rule, "the rule was edited")
        updated = alerts.store.update_rule(rule.id, definition, secrets, alerts.evaluator.clock())
    if updated is None:  # deleted meanwhile
        raise ApiError(404, "not_found", f"no rule {rule_id}", "rule_id")
    return jsonify(_answer(updated))


@blueprint.delete("/rules/<rule_id>")
def delete_rule(rule_id: str) -> tuple[str, int]:
    alerts = alerts_of()
    rule = _rule(rule_id)
    with alerts.evaluator.lock:
        _resolve(alerts, rule, "the rule was deleted")
        alerts.store.delete_rule(rule.id)
    return "", 204


def _resolve(alerts: Alerts, rule: StoredRule, reason: str) -> None:
    """A rule that changes or goes while it fires tells its targets, once, that its alerts resolved:
    sent now, before the change, to the targets that were told it fired (an edit may change them).
    Each delivery is recorded as any other; one that fails does not hold the edit back. The rule's
    notifications still queued from an evaluation go first, in order, where they were meant to."""
    alerts.deliverer.deliver_rule(rule.id, last=alerts.evaluator.resolve_all(rule, reason))


@blueprint.post("/rules/<rule_id>/test")
def test_rule(rule_id: str) -> Response:
    """Send a test alert to each of the rule's targets now; answer how each delivery went."""
    alerts = alerts_of()
    rule = _rule(rule_id)
    if not rule.definition["notify"]:
        raise bad_parameter("notify", "the rule has no notification targets")
    now = alerts.evaluator.clock()
    message = alerts.evaluator.test_message(rule, now)
    ids = [
        alerts.store.queue(rule.id, Notification(i, target["type"], "test", message), now)
        for i, target in enumerate(rule.definition["notify"])
    ]
    for delivery_id in ids:
        alerts.deliverer.deliver(delivery_id)
    return jsonify({"deliveries": [alerts.store.delivery(delivery_id) for delivery_id in ids]})


@blueprint.get("/history")
def history() -> Response:
    reject_unknown(request.args, frozenset({"rule_id", "limit", "before"}))
    rule_id = request.args.get("rule_id")
    if rule_id is not None:
        parse_identifier("rule_id", rule_id)
    before = request.args.get("before")
    if before is not None and not _WHOLE_NUMBER.match(before):
        raise bad_parameter("before", "must be the id of a history entry (a whole number)")
    limit = parse_limit(request.args.get("limit"))
    entries = alerts_of().store.history(rule_id, int(before) if before is not None else None, limit)
    next_before = entries[-1]["id"] if len(entries) == limit else None
    return jsonify({"history": entries, "next_before": next_before})


def _silence_json(silence: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in silence.items() if key != "until_time"}


@blueprint.get("/silences")
def list_silences() -> Response:
    reject_unknown(request.args, frozenset())
    return jsonify({"silences": [_silence_json(s) for s in alerts_of().store.silences()]})


@blueprint.post("/silences")
def create_silence() -> tuple[Response, int]:
    """Mute a rule, a pipeline (for every rule), or one rule for one pipeline, until a time."""
    alerts = alerts_of()
    body = _body()
    for name in body:
        if name not in ("rule_id", "pipeline_id", "until", "comment"):
            raise bad_parameter(name, "unknown field; expected rule_id, pipeline_id, until, comment")
    rule_id, pipeline_id = body.get("rule_id"), body.get("pipeline_id")
    for name, value in (("rule_id", rule_id), ("pipeline_id", pipeline_id)):
        if value is not None and not isinstance(value, str):
            raise bad_parameter(name, "must be a string")
        if value is not None:
            parse_identifier(name, value)
    if rule_id is None and pipeline_id is None:
        raise bad_parameter("rule_id", "give rule_id, pipeline_id or both: a silence mutes something")
    if rule_id is not None and alerts.store.rule(rule_id) is None:
        raise bad_parameter("rule_id", f"no rule {rule_id}")
    until = body.get("until")
    if not isinstance(until, str):
        raise bad_parameter("until", "must be an RFC 3339 time (2026-01-31T12:00:00Z)")
    until_ns = parse_time("until", until)
    now = alerts.evaluator.clock()
    until_time = datetime.datetime.fromtimestamp(until_ns // NS, datetime.UTC) + datetime.timedelta(
        microseconds=(until_ns % NS) // 1000
    )
    if until_time <= now:
        raise bad_parameter("until", "must be in the future")
    comment = body.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > 1000):
        raise bad_parameter("comment", "must be a string of at most 1000 characters")
    silence = alerts.store.add_silence(rule_id, pipeline_id, until_time, comment, now)
    return jsonify(_silence_json(silence)), 201


@blueprint.delete("/silences/<silence_id>")
def delete_silence(silence_id: str) -> tuple[str, int]:
    if not alerts_of().store.delete_silence(parse_identifier("silence_id", silence_id)):
        raise ApiError(404, "not_found", f"no silence {silence_id}", "silence_id")
    return "", 204
