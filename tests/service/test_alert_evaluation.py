"""Each rule kind over a real store fires once, repeats while firing, resolves once and is muted by a
silence; notifications reach a real HTTP receiver as Alertmanager's webhook payload (version 4)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from opentelemetry._logs import SeverityNumber

from service.alerts.conditions import IngestHealth
from service.alerts.evaluator import Evaluator
from service.state import state
from tests.alert_receivers import WebhookReceiver, webhook_receiver
from tests.helpers import make_record
from tests.service.alert_helpers import (
    PUBLIC_URL,
    Clock,
    add_pipeline,
    add_rule,
    add_run,
    alerting_app,
    alerts,
    rule_state,
)

NOT_ENDED = "0001-01-01T00:00:00Z"


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Flask]:
    with alerting_app(tmp_path / "data", clock) as found:
        yield found


def cycle(app: Flask, clock: Clock, seconds: float = 0) -> None:
    clock.advance(seconds)
    alerts(app).run_once()


def statuses(receiver: WebhookReceiver) -> list[str]:
    return [payload["status"] for payload in receiver.received]


def webhook(receiver: WebhookReceiver) -> list[dict[str, str]]:
    return [{"type": "webhook", "url": f"{receiver.url}/hook/s3cret"}]


def test_a_failed_run_fires_once_repeats_and_resolves_once_as_alertmanager_payloads(
    app: Flask, clock: Clock, receiver: WebhookReceiver
) -> None:
    client = app.test_client()
    rule = add_rule(
        client, name="load failed", kind="run_failed", repeat_seconds=600, notify=webhook(receiver)
    )
    pipeline = add_pipeline(app)
    trace_id = "ab" * 16
    run_id = add_run(app, pipeline, "failed", clock.now, trace_id=trace_id,
                     error={"type": "RuntimeError", "message": "the source broke"})  # fmt: skip
    cycle(app, clock)
    assert statuses(receiver) == ["firing"]
    assert rule_state(client, rule["id"]) == "firing"
    payload = receiver.received[0]
    assert receiver.requests[0][0] == "/hook/s3cret"
    assert payload["version"] == "4" and payload["receiver"] == "pipetrace" and payload["status"] == "firing"
    assert payload["externalURL"] == PUBLIC_URL
    assert payload["groupLabels"] == {"alertname": "load failed", "rule_id": rule["id"]}
    labels = {"alertname": "load failed", "rule_id": rule["id"], "kind": "run_failed", "severity": "warning",
              "pipeline_id": pipeline.id}  # fmt: skip
    assert payload["commonLabels"] == labels
    assert payload["groupKey"] == f'{{}}:{{alertname="load failed", rule_id="{rule["id"]}"}}'
    assert payload["truncatedAlerts"] == 0
    (alert,) = payload["alerts"]
    assert set(alert) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    assert alert["labels"] == labels and alert["status"] == "firing" and alert["endsAt"] == NOT_ENDED
    annotations = alert["annotations"]
    assert "the source broke" in annotations["summary"] and annotations["run_id"] == run_id
    assert annotations["trace_id"] == trace_id and '"RuntimeError"' in annotations["error"]
    assert annotations["run_url"] == f"{PUBLIC_URL}/#/run/{run_id}"
    assert annotations["trace_url"] == f"{PUBLIC_URL}/#/trace/{trace_id}"
    assert annotations["logs_url"] == f"{PUBLIC_URL}/#/logs?pipeline_id={pipeline.id}&run_id={run_id}"
    assert payload["commonAnnotations"] == annotations
    assert alert["generatorURL"] == annotations["run_url"] and re.fullmatch(
        r"[0-9a-f]{16}", alert["fingerprint"]
    )
    assert datetime.datetime.fromisoformat(alert["startsAt"]) == clock.now

    cycle(app, clock, 300)  # still failing, before the repeat interval: nothing
    assert statuses(receiver) == ["firing"]
    cycle(app, clock, 300)  # the repeat interval passed
    assert statuses(receiver) == ["firing", "firing"]
    assert receiver.received[1]["alerts"][0]["fingerprint"] == alert["fingerprint"]

    add_run(app, pipeline, "succeeded", clock.now, rows_loaded={"orders": 5})
    cycle(app, clock, 60)
    cycle(app, clock, 60)
    assert statuses(receiver) == ["firing", "firing", "resolved"]
    resolved = receiver.received[2]["alerts"][0]
    assert resolved["endsAt"] != NOT_ENDED and resolved["startsAt"] == alert["startsAt"]
    assert rule_state(client, rule["id"]) == "resolved"

    history = client.get(f"/api/alerts/history?rule_id={rule['id']}").json["history"]
    assert [(h["from"], h["to"]) for h in reversed(history)] == [
        ("ok", "firing"),
        ("firing", "firing"),
        ("firing", "resolved"),
    ]
    deliveries = [d for h in history for d in h["deliveries"]]
    assert [(d["event"], d["status"], d["attempts"]) for d in reversed(deliveries)] == [
        ("firing", "sent", 1),
        ("repeat", "sent", 1),
        ("resolved", "sent", 1),
    ]


def test_the_pending_period_holds_back_firing_and_a_short_failure_never_notifies(
    app: Flask, clock: Clock, receiver: WebhookReceiver
) -> None:
    client = app.test_client()
    rule = add_rule(client, kind="run_failed", for_seconds=300, notify=webhook(receiver))
    pipeline = add_pipeline(app)
    add_run(app, pipeline, "failed", clock.now)
    cycle(app, clock)
    assert rule_state(client, rule["id"]) == "pending" and receiver.received == []
    cycle(app, clock, 200)
    assert rule_state(client, rule["id"]) == "pending" and receiver.received == []
    cycle(app, clock, 100)
    assert rule_state(client, rule["id"]) == "firing" and statuses(receiver) == ["firing"]

    other = add_pipeline(app, "other")
    add_run(app, other, "failed", clock.now)
    cycle(app, clock, 10)
    add_run(app, other, "succeeded", clock.now)
    cycle(app, clock, 10)  # pending, then ok again: no notification either way
    subjects = {s["key"]: s["state"] for s in client.get(f"/api/alerts/rules/{rule['id']}").json["subjects"]}
    assert subjects == {pipeline.id: "firing", other.id: "ok"}
    assert statuses(receiver) == ["firing"]


def test_a_run_that_loaded_nothing_or_too_little_into_a_table_fires(
    app: Flask, clock: Clock, receiver: WebhookReceiver
) -> None:
    client = app.test_client()
    empty = add_rule(client, kind="no_rows", notify=webhook(receiver))
    few = add_rule(
        client, kind="no_rows", params={"table": "orders", "min_rows": 10}, notify=webhook(receiver)
    )
    pipeline = add_pipeline(app)
    add_run(app, pipeline, "succeeded", clock.now, rows_loaded={})
    cycle(app, clock)
    assert rule_state(client, empty["id"]) == "firing" and rule_state(client, few["id"]) == "firing"
    assert sorted(p["alerts"][0]["annotations"]["value"] for p in receiver.received) == ["0", "0"]

    add_run(app, pipeline, "succeeded", clock.now, rows_loaded={"orders": 3, "customers": 50})
    cycle(app, clock, 60)
    assert rule_state(client, empty["id"]) == "resolved" and rule_state(client, few["id"]) == "firing"
    add_run(app, pipeline, "failed", clock.now)  # a failure is not a load of nothing: no change
    cycle(app, clock, 60)
    add_run(app, pipeline, "succeeded", clock.now, rows_loaded={"orders": 10})
    cycle(app, clock, 60)
    assert rule_state(client, few["id"]) == "resolved"
    assert sorted(statuses(receiver)) == ["firing", "firing", "resolved", "resolved"]


def test_a_pipeline_that_has_not_succeeded_within_the_window_fires_until_it_does(
    app: Flask, clock: Clock, receiver: WebhookReceiver
) -> None:
    client = app.test_client()
    pipeline = add_pipeline(app)
    rule = add_rule(client, kind="freshness", params={"window_seconds": 3600}, repeat_seconds=3600,
                    notify=webhook(receiver))  # fmt: skip
    cycle(app, clock, 1800)  # defined half an hour ago, never ran: not late yet
    assert rule_state(client, rule["id"]) == "ok"
    cycle(app, clock, 1900)  # a schedule that never fired
    assert statuses(receiver) == ["firing"]
    assert receiver.received[0]["commonLabels"]["pipeline_id"] == pipeline.id
    cycle(app, clock, 3600)
    assert statuses(receiver) == ["firing", "firing"]
    add_run(app, pipeline, "succeeded", clock.now - datetime.timedelta(seconds=20))
    cycle(app, clock, 60)
    cycle(app, clock, 60)
    assert statuses(receiver) == ["firing", "firing", "resolved"]
    cycle(app, clock, 3700)  # late again
    assert statuses(receiver) == ["firing", "firing", "resolved", "firing"]


def test_a_run_slower_than_k_times_the_median_fires_and_a_normal_one_resolves(
    app: Flask, clock: Clock, receiver: WebhookReceiver
) -> None:
    client = app.test_client()
    pipeline = add_pipeline(app)
    rule = add_rule(client, kind="slow_run", params={"factor": 3, "last_n": 5, "min_runs": 3},
                    notify=webhook(receiver))  # fmt: skip
    for seconds in (10, 12, 8):
        add_run(app, pipeline, "succeeded", clock.advance(100), seconds)
    cycle(app, clock)
    assert rule_state(client, rule["id"]) == "ok"
    slow = add_run(app, pipeline, "succeeded", clock.advance(100), 31)  # over 3 x 10 s
    cycle(app, clock, 60)
    assert statuses(receiver) == ["firing"]
    annotations = receiver.received[0]["alerts"][0]["annotations"]
    assert annotations["run_id"] == slow and annotations["value"] == "31.0"
    add_run(app, pipeline, "succeeded", clock.advance(100), 11)
    cycle(app, clock, 60)
    assert statuses(receiver) == ["firing", "resolved"]
    # A run still going counts from its start: one hanging for 40 s fires before it ends.
    add_run(app, pipeline, "running", clock.now)
    cycle(app, clock, 40)
    assert statuses(receiver) == ["firing", "resolved", "firing"]
    assert "has been running for" in receiver.received[2]["alerts"][0]["annotations"]["summary"]


def test_error_records_over_a_threshold_in_a_window_fire_per_pipeline(
    app: Flask, clock: Clock, receiver: WebhookReceiver
) -> None:
    client = app.test_client()
    rule = add_rule(
        client, kind="log_condition", pipeline_ids=["orders", "quiet"], notify=webhook(receiver),
        params={"window_seconds": 600, "threshold": 2, "level": "ERROR", "text": "timeout",
                "service_name": "test-client"},
    )  # fmt: skip
    now_ns = int(clock.now.timestamp() * 1e9)
    records = [
        make_record(body, timestamp=now_ns - i * 10**9, severity=severity, attributes={"pipeline.id": p})
        for i, (body, severity, p) in enumerate([
            ("read TIMEOUT", SeverityNumber.ERROR, "orders"),
            ("read timeout", SeverityNumber.FATAL, "orders"),
            ("read timeout", SeverityNumber.WARN, "orders"),  # below the level
            ("disk full", SeverityNumber.ERROR, "orders"),  # without the text
            ("read timeout", SeverityNumber.ERROR, "other"),  # not a watched pipeline
            ("read timeout", SeverityNumber.ERROR, "quiet"),
        ])
    ]  # fmt: skip
    state(app).log_exporter.export(records)
    cycle(app, clock, 1)
    assert rule_state(client, rule["id"]) == "ok"  # two matches in orders: not over 2
    again = make_record(
        "timeout", timestamp=now_ns, severity=SeverityNumber.ERROR, attributes={"pipeline.id": "orders"}
    )
    state(app).log_exporter.export([again])
    cycle(app, clock, 1)
    assert statuses(receiver) == ["firing"]
    alert = receiver.received[0]["alerts"][0]
    assert alert["labels"]["pipeline_id"] == "orders" and alert["annotations"]["value"] == "3"
    cycle(app, clock, 600)  # the records left the window
    assert statuses(receiver) == ["firing", "resolved"]


def test_ingest_health_fires_on_an_open_breaker_a_full_spool_and_drops(tmp_path: Path, clock: Clock) -> None:
    """The exporters' counters stand in for a broken store (the only fake): open breaker, spool, drops."""
    closed = {"breaker": "closed", "dropped": 0, "quarantined": 0, "spool": None}
    counters: dict[str, Any] = {"logs": closed, "spans": closed}
    with alerting_app(tmp_path / "data", clock) as app, webhook_receiver() as receiver:
        client = app.test_client()
        add_rule(client, kind="ingest_health", params={"spool_records_above": 100, "dropped_above": 0},
                 notify=webhook(receiver))  # fmt: skip
        running = alerts(app)
        running.evaluator = Evaluator(running.store, running.evaluator.queries, lambda: counters,
                                      running.evaluator.base_url, clock)  # fmt: skip
        cycle(app, clock)
        assert receiver.received == []
        counters["logs"] = {"breaker": "open", "last_error": "disk full", "dropped": 5, "quarantined": 0,
                            "spool": {"records": 500}}  # fmt: skip
        cycle(app, clock, 60)
        assert statuses(receiver) == ["firing"]
        alert = receiver.received[0]["alerts"][0]
        assert alert["labels"]["subject"] == "logs"
        summary = alert["annotations"]["summary"]
        assert "breaker open: disk full" in summary and "500 records spooled" in summary
        assert "5 records dropped" in summary
        counters["logs"] = {"breaker": "closed", "dropped": 5, "quarantined": 0, "spool": {"records": 0}}
        cycle(app, clock, 60)  # nothing more dropped, breaker closed, spool drained
        assert statuses(receiver) == ["firing", "resolved"]
    assert isinstance(running.evaluator._conditions["ingest_health"], IngestHealth)


def test_a_silence_of_the_rule_or_the_pipeline_holds_notifications_back_until_it_ends(
    app: Flask, clock: Clock, receiver: WebhookReceiver
) -> None:
    client = app.test_client()
    rule = add_rule(client, kind="run_failed", notify=webhook(receiver))
    muted, loud = add_pipeline(app, "muted"), add_pipeline(app, "loud")
    until = (clock.now + datetime.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    response = client.post("/api/alerts/silences", json={"pipeline_id": muted.id, "until": until})
    assert response.status_code == 201, response.json
    add_run(app, muted, "failed", clock.now)
    add_run(app, loud, "failed", clock.now)
    cycle(app, clock)
    assert [p["commonLabels"]["pipeline_id"] for p in receiver.received] == [loud.id]
    history = client.get("/api/alerts/history").json["history"]
    assert {(h["key"], h["silenced"]) for h in history} == {(muted.id, True), (loud.id, False)}
    assert rule_state(client, rule["id"]) == "firing"

    silence = client.post("/api/alerts/silences", json={"rule_id": rule["id"], "until": until}).json
    add_run(app, loud, "succeeded", clock.now)
    cycle(app, clock, 60)  # resolved under the rule's silence: no "resolved" sent
    assert len(receiver.received) == 1
    assert client.delete(f"/api/alerts/silences/{silence['id']}", json={}).status_code == 204
    cycle(app, clock, 3600)  # the pipeline's silence ended: the failure still holds, so it is sent now
    assert [(p["status"], p["commonLabels"]["pipeline_id"]) for p in receiver.received] == [
        ("firing", loud.id),
        ("firing", muted.id),
    ]


def test_a_disabled_rule_is_not_evaluated_and_history_pages_newest_first(
    app: Flask, clock: Clock, receiver: WebhookReceiver
) -> None:
    client = app.test_client()
    off = add_rule(client, kind="run_failed", enabled=False, notify=webhook(receiver))
    on = add_rule(client, kind="run_failed", notify=webhook(receiver))
    for name in ("a", "b", "c"):
        add_run(app, add_pipeline(app, name), "failed", clock.now)
    cycle(app, clock)
    assert client.get(f"/api/alerts/rules/{off['id']}").json["evaluated_at"] is None
    assert rule_state(client, off["id"]) == "ok" and len(receiver.received) == 1
    assert len(receiver.received[0]["alerts"]) == 3
    first = client.get("/api/alerts/history?limit=2").json
    assert len(first["history"]) == 2 and first["next_before"] == first["history"][-1]["id"]
    rest = client.get(f"/api/alerts/history?limit=2&before={first['next_before']}").json
    assert len(rest["history"]) == 1 and rest["next_before"] is None
    ids = [h["id"] for h in first["history"] + rest["history"]]
    assert ids == sorted(ids, reverse=True) and {h["rule_id"] for h in first["history"]} == {on["id"]}


def test_readyz_says_when_the_rules_were_last_evaluated(app: Flask, clock: Clock) -> None:
    client = app.test_client()
    assert client.get("/readyz").json["alerts"] == {"last_run_at": None, "error": None}
    cycle(app, clock, 5)
    expected = clock.now.isoformat().replace("+00:00", "Z")
    assert client.get("/readyz").json["alerts"] == {"last_run_at": expected, "error": None}


class Scenario:
    """One rule kind, and how to make its condition hold for a pipeline and then clear."""

    def __init__(self, app: Flask, clock: Clock) -> None:
        self.app, self.clock = app, clock
        self.pipeline = add_pipeline(app)
        self.counters: dict[str, Any] = {"logs": {"breaker": "closed", "dropped": 0, "spool": None}}

    def logs(self, count: int) -> None:
        now_ns = int(self.clock.now.timestamp() * 1e9)
        attributes = {"pipeline.id": self.pipeline.id}
        error = SeverityNumber.ERROR
        records = [
            make_record("boom", timestamp=now_ns - i, severity=error, attributes=attributes)
            for i in range(count)
        ]
        state(self.app).log_exporter.export(records)

    def setup(self, kind: str) -> dict[str, Any]:
        if kind == "slow_run":
            for _ in range(3):
                add_run(self.app, self.pipeline, "succeeded", self.clock.advance(60), 10)
        return {
            "run_failed": {},
            "no_rows": {},
            "freshness": {"window_seconds": 600},
            "slow_run": {"factor": 3},
            "log_condition": {"window_seconds": 3600, "threshold": 1, "level": "ERROR"},
            "ingest_health": {},
        }[kind]

    def make_true(self, kind: str) -> None:
        now = self.clock.now
        if kind == "run_failed":
            add_run(self.app, self.pipeline, "failed", now)
        elif kind == "no_rows":
            add_run(self.app, self.pipeline, "succeeded", now, rows_loaded={})
        elif kind == "freshness":
            add_run(self.app, self.pipeline, "succeeded", now - datetime.timedelta(seconds=700), 1)
        elif kind == "slow_run":
            add_run(self.app, self.pipeline, "succeeded", now, 40)
        elif kind == "log_condition":
            self.logs(2)
        else:
            self.counters["logs"] = {
                "breaker": "open",
                "last_error": "disk full",
                "dropped": 0,
                "spool": None,
            }

    def make_false(self, kind: str) -> None:
        now = self.clock.now
        if kind == "log_condition":
            self.clock.advance(3600)  # the records leave the window
        elif kind == "ingest_health":
            self.counters["logs"] = {"breaker": "closed", "dropped": 0, "spool": None}
        else:
            add_run(self.app, self.pipeline, "succeeded", now - datetime.timedelta(seconds=10), 10,
                    rows_loaded={"orders": 1})  # fmt: skip


@pytest.mark.parametrize(
    "kind", ["run_failed", "no_rows", "freshness", "slow_run", "log_condition", "ingest_health"]
)
def test_every_kind_fires_once_repeats_is_silenced_and_resolves_once(
    app: Flask, clock: Clock, receiver: WebhookReceiver, kind: str
) -> None:
    client = app.test_client()
    scenario = Scenario(app, clock)
    running = alerts(app)
    running.evaluator = Evaluator(running.store, running.evaluator.queries, lambda: scenario.counters,
                                  running.evaluator.base_url, clock)  # fmt: skip
    pipelines = [] if kind == "ingest_health" else [scenario.pipeline.id]
    params = scenario.setup(kind)
    rule = add_rule(client, kind=kind, pipeline_ids=pipelines, params=params, repeat_seconds=120,
                    notify=webhook(receiver))  # fmt: skip
    cycle(app, clock, 1)
    assert rule_state(client, rule["id"]) == "ok" and receiver.received == []
    scenario.make_true(kind)
    cycle(app, clock, 1)
    cycle(app, clock, 60)
    assert statuses(receiver) == ["firing"]
    cycle(app, clock, 60)
    assert statuses(receiver) == ["firing", "firing"]
    until = (clock.now + datetime.timedelta(seconds=300)).isoformat().replace("+00:00", "Z")
    silence = client.post("/api/alerts/silences", json={"rule_id": rule["id"], "until": until}).json
    cycle(app, clock, 150)  # a repeat was due, but the rule is silenced
    assert statuses(receiver) == ["firing", "firing"] and rule_state(client, rule["id"]) == "firing"
    assert client.delete(f"/api/alerts/silences/{silence['id']}", json={}).status_code == 204
    scenario.make_false(kind)
    cycle(app, clock, 1)
    cycle(app, clock, 200)
    assert statuses(receiver) == ["firing", "firing", "resolved"]
    assert rule_state(client, rule["id"]) == "resolved"
