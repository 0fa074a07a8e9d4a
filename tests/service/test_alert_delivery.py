"""Notifications reach real receivers (HTTP, SMTP), are retried when the receiver fails, are recorded,
keep their URLs secret, and a restart sends none twice."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import duckdb
import pytest

from exporters.store.alerts import Notification
from service.state import state
from tests.alert_receivers import WebhookReceiver, smtp_receiver
from tests.conftest import free_port
from tests.service.alert_helpers import (
    PUBLIC_URL,
    Clock,
    add_pipeline,
    add_rule,
    add_run,
    alerting_app,
    alerts,
)

SECRET_PATH = "/services/T000/B000/very-secret-token"


def test_a_receiver_answering_500_gets_retries_and_the_delivery_records_them(
    tmp_path: Path, clock: Clock, receiver: WebhookReceiver
) -> None:
    receiver.statuses = [500, 503]
    with alerting_app(tmp_path / "data", clock, alert_delivery_attempts=3) as app:
        client = app.test_client()
        add_rule(client, kind="run_failed", notify=[{"type": "webhook", "url": receiver.url + SECRET_PATH}])
        add_run(app, add_pipeline(app), "failed", clock.now)
        alerts(app).run_once()
        assert [status for _, status in receiver.requests] == [500, 503, 200]
        assert len(receiver.received) == 1
        (entry,) = client.get("/api/alerts/history").json["history"]
        (delivery,) = entry["deliveries"]
        assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == ("sent", 3, None)


def test_a_receiver_that_is_down_fails_after_its_attempts_without_the_secret_in_errors_or_logs(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}{SECRET_PATH}"  # nothing listens there
    with alerting_app(tmp_path / "data", clock, alert_delivery_attempts=2) as app:
        client = app.test_client()
        rule = add_rule(client, kind="run_failed", notify=[{"type": "slack", "url": url}])
        add_run(app, add_pipeline(app), "failed", clock.now)
        with caplog.at_level(logging.DEBUG):
            alerts(app).run_once()
        (entry,) = client.get("/api/alerts/history").json["history"]
        (delivery,) = entry["deliveries"]
        assert (delivery["status"], delivery["attempts"]) == ("failed", 2)
        assert "could not be reached" in delivery["last_error"]
        answers = [client.get("/api/alerts/rules").get_data(as_text=True),
                   client.get(f"/api/alerts/rules/{rule['id']}").get_data(as_text=True),
                   client.get("/api/alerts/history").get_data(as_text=True), caplog.text]  # fmt: skip
        assert all("very-secret-token" not in answer for answer in answers)
        assert rule["notify"] == [{"type": "slack", "url": f"{url.split('/services')[0]}/***"}]
        alerts(app).run_once()  # a failed delivery is not tried again by later cycles
        assert client.get("/api/alerts/history").json["history"][0]["deliveries"][0]["attempts"] == 2
        database = state(app).store.path
    with duckdb.connect(database, read_only=True) as con:
        tables = [
            row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        ]
        for table in (t for t in tables if t.startswith("alert_")):
            assert "very-secret-token" not in str(con.execute(f"SELECT * FROM {table}").fetchall())
    secrets = list((tmp_path / "data" / "secrets").glob("alert-*.json"))
    assert len(secrets) == 1 and stat.S_IMODE(secrets[0].stat().st_mode) == 0o600
    assert "very-secret-token" in secrets[0].read_text()


def test_an_edit_that_sends_the_masked_url_back_keeps_the_secret_url(
    tmp_path: Path, clock: Clock, receiver: WebhookReceiver
) -> None:
    with alerting_app(tmp_path / "data", clock) as app:
        client = app.test_client()
        rule = add_rule(
            client, kind="run_failed", notify=[{"type": "webhook", "url": receiver.url + SECRET_PATH}]
        )
        edited = {k: rule[k] for k in ("name", "kind", "pipeline_ids", "for_seconds", "params", "notify")}
        response = client.put(f"/api/alerts/rules/{rule['id']}", json={**edited, "name": "renamed"})
        assert response.status_code == 200 and response.json["name"] == "renamed"
        add_run(app, add_pipeline(app), "failed", clock.now)
        alerts(app).run_once()
        assert [path for path, _ in receiver.requests] == [SECRET_PATH]
        assert receiver.received[0]["commonLabels"]["alertname"] == "renamed"


def test_slack_and_email_notifications_carry_the_alert_and_its_links(
    tmp_path: Path, clock: Clock, receiver: WebhookReceiver
) -> None:
    with smtp_receiver() as (port, mailbox):
        settings = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_from": "alerts@pipetrace.example"}
        with alerting_app(tmp_path / "data", clock, **settings) as app:
            client = app.test_client()
            add_rule(client, name="nightly load", kind="run_failed", notify=[
                {"type": "slack", "url": receiver.url + SECRET_PATH},
                {"type": "email", "to": ["oncall@example.com", "data@example.com"]},
            ])  # fmt: skip
            pipeline = add_pipeline(app)
            run_id = add_run(app, pipeline, "failed", clock.now, error={"message": "boom"})
            alerts(app).run_once()
    (slack,) = receiver.received
    assert set(slack) == {"text"}
    assert slack["text"].startswith(
        f"[FIRING] nightly load: run {run_id} of pipeline {pipeline.id} failed: boom"
    )
    assert f"<{PUBLIC_URL}/#/run/{run_id}|run>" in slack["text"]
    (mail,) = mailbox.messages
    assert mailbox.envelopes == [("alerts@pipetrace.example", ["oncall@example.com", "data@example.com"])]
    assert (
        mail["Subject"].startswith("[FIRING] nightly load")
        and mail["To"] == "oncall@example.com, data@example.com"
    )
    body = mail.get_payload()
    assert isinstance(body, str) and f"run_url: {PUBLIC_URL}/#/run/{run_id}" in body
    assert f"pipeline_id: {pipeline.id}" in body


def test_email_without_an_smtp_server_fails_saying_so(tmp_path: Path, clock: Clock) -> None:
    with alerting_app(tmp_path / "data", clock) as app:
        client = app.test_client()
        rule = add_rule(client, kind="run_failed", notify=[{"type": "email", "to": ["a@example.com"]}])
        response = client.post(f"/api/alerts/rules/{rule['id']}/test", json={})
        (delivery,) = response.json["deliveries"]
        assert delivery["status"] == "failed" and "PIPETRACE_SMTP_HOST" in delivery["last_error"]


def test_the_test_notification_reaches_every_target_and_answers_how_it_went(
    tmp_path: Path, clock: Clock, receiver: WebhookReceiver
) -> None:
    with smtp_receiver() as (port, mailbox), alerting_app(tmp_path / "data", clock, smtp_host="127.0.0.1",
                                                           smtp_port=port) as app:  # fmt: skip
        client = app.test_client()
        rule = add_rule(client, name="probe", kind="freshness", params={"window_seconds": 60}, notify=[
            {"type": "webhook", "url": receiver.url + "/hook"}, {"type": "email", "to": ["a@example.com"]},
        ])  # fmt: skip
        response = client.post(f"/api/alerts/rules/{rule['id']}/test", json={})
        assert response.status_code == 200
        assert [(d["channel"], d["event"], d["status"]) for d in response.json["deliveries"]] == [
            ("webhook", "test", "sent"),
            ("email", "test", "sent"),
        ]
        assert receiver.received[0]["alerts"][0]["labels"]["test"] == "true"
        assert mailbox.messages[0]["Subject"].startswith("[TEST] probe")
        assert client.get("/api/alerts/rules").json["rules"][0]["state"] == "ok"  # a test changes no state


def test_a_restart_sends_nothing_twice_and_sends_what_was_queued_before_it(
    tmp_path: Path, clock: Clock, receiver: WebhookReceiver
) -> None:
    data = tmp_path / "data"
    notify = [{"type": "webhook", "url": receiver.url + "/hook"}]
    with alerting_app(data, clock) as app:
        add_rule(app.test_client(), kind="run_failed", repeat_seconds=3600, notify=notify)
        first, second = add_pipeline(app, "first"), add_pipeline(app, "second")
        add_run(app, first, "failed", clock.now)
        alerts(app).run_once()
        assert len(receiver.received) == 1
        add_run(app, second, "failed", clock.now)
        alerts(app).evaluator.evaluate_once()  # queued; the process stops before sending it
        assert len(receiver.received) == 1
    clock.advance(60)
    with alerting_app(data, clock) as app:
        alerts(app).run_once()
        alerts(app).run_once()
        # The second notification is the rule's group: both pipelines' alerts.
        assert [[a["labels"]["pipeline_id"] for a in p["alerts"]] for p in receiver.received] == [
            [first.id],
            sorted([first.id, second.id]),
        ]
    clock.advance(3600)
    with alerting_app(data, clock) as app:  # the repeat interval is counted across restarts too
        alerts(app).run_once()
        assert len(receiver.received) == 3 and len(receiver.received[2]["alerts"]) == 2


def test_a_notification_queued_before_grouping_is_sent_as_a_group_of_one(
    tmp_path: Path, clock: Clock, receiver: WebhookReceiver
) -> None:
    """A delivery left pending by an older version holds one alert, not a group: it still goes out as
    Alertmanager's payload."""
    with alerting_app(tmp_path / "data", clock) as app:
        rule = add_rule(
            app.test_client(), kind="run_failed", notify=[{"type": "webhook", "url": receiver.url}]
        )
        single = {"status": "firing", "labels": {"alertname": "run_failed", "rule_id": rule["id"]},
                  "annotations": {"summary": "old"}, "startsAt": "2026-01-01T00:00:00Z",
                  "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "0" * 16}  # fmt: skip
        alerts(app).store.queue(rule["id"], Notification(0, "webhook", "firing", single), clock.now)
        assert alerts(app).deliverer.deliver_pending() == 1
    (payload,) = receiver.received
    assert payload["version"] == "4" and payload["alerts"] == [single] and payload["status"] == "firing"
    assert payload["groupLabels"] == {"alertname": "run_failed", "rule_id": rule["id"]}


def test_an_email_for_a_run_whose_error_has_several_lines_is_delivered(tmp_path: Path, clock: Clock) -> None:
    """A run that reported no outcome fails with its last output, lines and all: the subject (one
    header line) has them on one line, the body has the summary as it is."""
    error = {
        "type": "ProcessExit",
        "message": "the run exited with code 1; its last output:\nTraceback\r\nKeyError",
    }
    with (
        smtp_receiver() as (port, mailbox),
        alerting_app(tmp_path / "data", clock, smtp_host="127.0.0.1", smtp_port=port) as app,
    ):
        client = app.test_client()
        email = [{"type": "email", "to": ["a@example.com"]}]
        add_rule(client, name="nightly", kind="run_failed", notify=email)
        run_id = add_run(app, add_pipeline(app), "failed", clock.now, error=error)
        alerts(app).run_once()
        (entry,) = client.get("/api/alerts/history").json["history"]
    assert [(d["status"], d["last_error"]) for d in entry["deliveries"]] == [("sent", None)]
    (mail,) = mailbox.messages
    subject = mail["Subject"].replace("\r\n", "").replace("\n", "")  # unfolded, as RFC 5322 says
    summary = f"run {run_id} of pipeline {entry['key']} failed: the run exited with code 1; its last output:"
    assert subject == f"[FIRING] nightly: {summary} Traceback KeyError"
    body = mail.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert f"{summary}\nTraceback\nKeyError" in body
