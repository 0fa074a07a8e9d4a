"""A rule over several pipelines makes one alert per pipeline, and each notification carries the
rule's alerts as one Alertmanager group (webhook payload version 4), to a real HTTP receiver. A rule
edited or deleted while it fires tells its receivers, once, that its alerts resolved."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.alert_receivers import WebhookReceiver
from tests.service.alert_helpers import (
    PUBLIC_URL,
    Clock,
    add_pipeline,
    add_rule,
    add_run,
    alerting_app,
    alerts,
)

NOT_ENDED = "0001-01-01T00:00:00Z"
# Every field of Alertmanager's webhook payload, version 4 (its notify/webhook Message: template.Data
# plus version, groupKey and truncatedAlerts), and of each of its alerts.
PAYLOAD_FIELDS = {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
                  "commonLabels", "commonAnnotations", "externalURL", "alerts"}  # fmt: skip
ALERT_FIELDS = {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Flask]:
    with alerting_app(tmp_path / "data", clock) as found:
        yield found


def cycle(app: Flask, clock: Clock, seconds: float = 60) -> None:
    clock.advance(seconds)
    alerts(app).run_once()


def by_pipeline(payload: dict[str, Any]) -> dict[str, str]:
    return {alert["labels"]["pipeline_id"]: alert["status"] for alert in payload["alerts"]}


def test_a_rule_over_two_pipelines_notifies_their_alerts_as_one_group(
    app: Flask, clock: Clock, receiver: WebhookReceiver
) -> None:
    client = app.test_client()
    rule = add_rule(client, name="loads", kind="run_failed", severity="critical", repeat_seconds=None,
                    notify=[{"type": "webhook", "url": f"{receiver.url}/hook"}])  # fmt: skip
    orders, users = add_pipeline(app, "orders"), add_pipeline(app, "users")
    add_run(app, orders, "failed", clock.now, error={"message": "orders broke"})
    cycle(app, clock)
    add_run(app, users, "failed", clock.now, error={"message": "users broke"})
    cycle(app, clock)
    assert len(receiver.received) == 2
    first, both = receiver.received
    assert set(first) == set(both) == PAYLOAD_FIELDS
    assert by_pipeline(first) == {orders.id: "firing"}
    assert by_pipeline(both) == {orders.id: "firing", users.id: "firing"}
    assert both["status"] == "firing" and both["version"] == "4" and both["truncatedAlerts"] == 0
    assert both["groupLabels"] == {"alertname": "loads", "rule_id": rule["id"]}
    assert both["groupKey"] == f'{{}}:{{alertname="loads", rule_id="{rule["id"]}"}}' == first["groupKey"]
    # What the alerts share, and nothing that only one of them has.
    assert both["commonLabels"] == {"alertname": "loads", "rule_id": rule["id"], "kind": "run_failed",
                                    "severity": "critical"}  # fmt: skip
    assert both["commonAnnotations"] == {"value": "failed"}
    assert both["externalURL"] == PUBLIC_URL
    for alert in both["alerts"]:
        assert set(alert) == ALERT_FIELDS and alert["endsAt"] == NOT_ENDED
        assert alert["labels"]["severity"] == "critical" and re.fullmatch(
            r"[0-9a-f]{16}", alert["fingerprint"]
        )
        assert alert["generatorURL"] == alert["annotations"]["run_url"]
    assert len({alert["fingerprint"] for alert in both["alerts"]}) == 2
    fingerprints = {alert["labels"]["pipeline_id"]: alert["fingerprint"] for alert in both["alerts"]}
    assert fingerprints[orders.id] == first["alerts"][0]["fingerprint"]

    add_run(app, orders, "succeeded", clock.now, rows_loaded={"orders": 1})
    cycle(app, clock)  # one resolves, the other still fires: the group is still firing
    resolving = receiver.received[2]
    assert by_pipeline(resolving) == {orders.id: "resolved", users.id: "firing"}
    assert resolving["status"] == "firing"
    ended = next(a for a in resolving["alerts"] if a["status"] == "resolved")
    assert ended["endsAt"] != NOT_ENDED
    add_run(app, users, "succeeded", clock.now, rows_loaded={"users": 1})
    cycle(app, clock)
    cycle(app, clock)
    assert len(receiver.received) == 4
    assert receiver.received[3]["status"] == "resolved" and by_pipeline(receiver.received[3]) == {
        users.id: "resolved"
    }
    # Each transition lists the notifications that told of it.
    history = client.get(f"/api/alerts/history?rule_id={rule['id']}").json["history"]
    told = {(h["key"], h["to"]): [d["event"] for d in h["deliveries"]] for h in history}
    assert told == {
        (orders.id, "firing"): ["firing"],
        (users.id, "firing"): ["firing"],
        (orders.id, "resolved"): ["resolved"],
        (users.id, "resolved"): ["resolved"],
    }


@pytest.mark.parametrize("change", ["edit", "delete"])
def test_a_rule_edited_or_deleted_while_firing_sends_resolved_once(
    app: Flask, clock: Clock, receiver: WebhookReceiver, change: str
) -> None:
    client = app.test_client()
    body = {
        "name": "loads",
        "kind": "run_failed",
        "notify": [{"type": "webhook", "url": f"{receiver.url}/old"}],
    }
    rule = add_rule(client, **body)
    pipeline = add_pipeline(app)
    add_run(app, pipeline, "failed", clock.now)
    cycle(app, clock)
    assert [p["status"] for p in receiver.received] == ["firing"]
    clock.advance(60)
    if change == "edit":
        edited = {**body, "name": "renamed", "notify": [{"type": "webhook", "url": f"{receiver.url}/new"}]}
        response = client.put(f"/api/alerts/rules/{rule['id']}", json=edited)
        assert response.status_code == 200 and response.json["state"] == "ok"
    else:
        assert client.delete(f"/api/alerts/rules/{rule['id']}", json={}).status_code == 204
    # Told where the firing went, under the name it fired with, before the change.
    assert [
        (path, p["status"]) for (path, _), p in zip(receiver.requests, receiver.received, strict=True)
    ] == [
        ("/old", "firing"),
        ("/old", "resolved"),
    ]
    resolved = receiver.received[1]
    assert resolved["commonLabels"]["alertname"] == "loads"
    (alert,) = resolved["alerts"]
    assert alert["status"] == "resolved" and alert["endsAt"] != NOT_ENDED
    assert alert["startsAt"] == receiver.received[0]["alerts"][0]["startsAt"]
    history = client.get(f"/api/alerts/history?rule_id={rule['id']}").json["history"]
    assert history[0]["to"] == "resolved" and history[0]["details"]["resolved_because"].startswith(
        "the rule was"
    )
    assert [(d["event"], d["status"]) for d in history[0]["deliveries"]] == [("resolved", "sent")]

    cycle(app, clock)
    cycle(app, clock)
    if change == "edit":  # still failing: the edited rule fires again, as itself, where it now points
        assert [
            (path, p["status"]) for (path, _), p in zip(receiver.requests, receiver.received, strict=True)
        ][2:] == [("/new", "firing")]
        assert receiver.received[2]["commonLabels"]["alertname"] == "renamed"
    else:
        assert len(receiver.received) == 2  # nothing more: no second "resolved"


def test_a_firing_rule_saved_unchanged_keeps_firing_and_sends_nothing(
    app: Flask, clock: Clock, receiver: WebhookReceiver
) -> None:
    client = app.test_client()
    body = {
        "name": "loads",
        "kind": "run_failed",
        "notify": [{"type": "webhook", "url": f"{receiver.url}/h"}],
    }
    rule = add_rule(client, **body)
    add_run(app, add_pipeline(app), "failed", clock.now)
    cycle(app, clock)
    shown = client.get(f"/api/alerts/rules/{rule['id']}").json
    assert shown["state"] == "firing" and shown["notify"][0]["url"].endswith("/***")
    sent_back = {key: shown[key] for key in ("name", "kind", "pipeline_ids", "for_seconds", "notify")}
    response = client.put(f"/api/alerts/rules/{rule['id']}", json=sent_back)  # the masked URL too
    assert response.status_code == 200 and response.json["state"] == "firing"
    cycle(app, clock)
    assert [p["status"] for p in receiver.received] == ["firing"]  # no false "resolved", no new firing
    assert client.get(f"/api/alerts/rules/{rule['id']}").json["state"] == "firing"


def test_an_edit_of_a_rule_that_is_not_firing_sends_nothing(
    app: Flask, clock: Clock, receiver: WebhookReceiver
) -> None:
    client = app.test_client()
    body = {"name": "loads", "kind": "run_failed", "for_seconds": 600,
            "notify": [{"type": "webhook", "url": f"{receiver.url}/hook"}]}  # fmt: skip
    rule = add_rule(client, **body)
    add_run(app, add_pipeline(app), "failed", clock.now)
    cycle(app, clock)  # pending, never notified
    assert client.get(f"/api/alerts/rules/{rule['id']}").json["state"] == "pending"
    assert client.put(f"/api/alerts/rules/{rule['id']}", json={**body, "name": "x"}).status_code == 200
    assert client.delete(f"/api/alerts/rules/{rule['id']}", json={}).status_code == 204
    assert receiver.requests == []


@pytest.mark.parametrize("change", ["edit", "delete"])
def test_a_notification_still_queued_when_the_rule_changes_goes_out_first_where_it_was_meant(
    app: Flask, clock: Clock, receiver: WebhookReceiver, change: str
) -> None:
    """An evaluation queued "firing" and the loop has not sent it yet when the rule is edited: it goes
    to the old target before the "resolved" the edit sends, never after it nor to the new target."""
    client = app.test_client()
    body = {
        "name": "loads",
        "kind": "run_failed",
        "notify": [{"type": "webhook", "url": f"{receiver.url}/old"}],
    }
    rule = add_rule(client, **body)
    add_run(app, add_pipeline(app), "failed", clock.now)
    clock.advance(60)
    alerts(app).evaluator.evaluate_once()  # queued, not sent: the loop delivers after it evaluates
    assert receiver.received == []
    if change == "edit":
        edited = {**body, "notify": [{"type": "webhook", "url": f"{receiver.url}/new"}]}
        assert client.put(f"/api/alerts/rules/{rule['id']}", json=edited).status_code == 200
    else:
        assert client.delete(f"/api/alerts/rules/{rule['id']}", json={}).status_code == 204
    sent = [(path, p["status"]) for (path, _), p in zip(receiver.requests, receiver.received, strict=True)]
    assert sent == [("/old", "firing"), ("/old", "resolved")]
    assert alerts(app).store.pending_deliveries() == []
