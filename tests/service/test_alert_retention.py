"""Alert history is kept ``PIPETRACE_ALERT_HISTORY_DAYS``: the retention job removes older transitions
and the notifications they sent (never a pending one), says how many, and leaves newer ones."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import pytest

from service.app import close_app, create_app
from service.retention import RetentionWorker
from tests.alert_receivers import WebhookReceiver
from tests.service.alert_helpers import Clock, add_pipeline, add_rule, add_run, alerting_app, alerts


def test_retention_removes_alert_history_older_than_the_setting_and_reports_it(
    tmp_path: Path, clock: Clock, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    real_now = clock.now
    clock.now = real_now - datetime.timedelta(days=40)  # the old transitions happen 40 days ago
    with alerting_app(
        tmp_path / "data", clock, alert_history_days=30, retention_interval_seconds=3600
    ) as app:
        client = app.test_client()
        notify = [{"type": "webhook", "url": f"{receiver.url}/hook"}]
        rule = add_rule(client, kind="run_failed", repeat_seconds=None, notify=notify)
        pipeline = add_pipeline(app)
        add_run(app, pipeline, "failed", clock.now)
        alerts(app).run_once()  # ok -> firing, sent, 40 days ago
        add_run(app, pipeline, "succeeded", clock.now, rows_loaded={"t": 1})
        alerts(app).evaluator.evaluate_once()  # firing -> resolved: queued, left pending
        clock.now = real_now
        add_run(app, pipeline, "failed", clock.now)
        alerts(app).evaluator.evaluate_once()  # resolved -> firing today, queued
        worker: RetentionWorker = app.extensions["pipetrace.retention"]
        with caplog.at_level(logging.INFO, logger="service.retention"):
            removed = worker.run_once()
        assert (removed["alert_history"], removed["alert_deliveries"]) == (2, 1)
        assert (
            "retention removed 2 alert transitions and 1 alert notifications older than 30 days"
            in caplog.text
        )
        history = client.get(f"/api/alerts/history?rule_id={rule['id']}").json["history"]
        assert [(h["from"], h["to"]) for h in history] == [("resolved", "firing")]
        # The old "resolved" was never sent: it stays, and goes out with today's.
        pending = alerts(app).store.pending_deliveries()
        assert sorted(d.event for d in pending) == ["firing", "resolved"]
        assert client.get(f"/api/alerts/rules/{rule['id']}").json["state"] == "firing"
        assert worker.run_once()["alert_history"] == 0


def test_the_retention_job_runs_for_alert_history_alone_unless_it_is_0(tmp_path: Path) -> None:
    app = create_app(data_dir=tmp_path / "a", alert_interval_seconds=0)
    try:
        assert isinstance(app.extensions.get("pipetrace.retention"), RetentionWorker)
    finally:
        close_app(app)
    app = create_app(data_dir=tmp_path / "b", alert_interval_seconds=0, alert_history_days=0)
    try:
        assert app.extensions.get("pipetrace.retention") is None
    finally:
        close_app(app)


def test_an_alert_history_period_longer_than_the_calendar_keeps_everything(
    tmp_path: Path, clock: Clock
) -> None:
    """A period reaching back before year 1 (someone's "keep it all": 1,000,000 days) is no error
    every interval: nothing is that old, so nothing is removed."""
    with alerting_app(tmp_path / "data", clock, alert_history_days=1_000_000) as app:
        add_rule(app.test_client(), kind="run_failed", repeat_seconds=None)
        add_run(app, add_pipeline(app), "failed", clock.now)
        alerts(app).run_once()
        worker: RetentionWorker = app.extensions["pipetrace.retention"]
        assert worker.run_once()["alert_history"] == 0
        assert len(app.test_client().get("/api/alerts/history").json["history"]) == 1
