"""Issue 19, the Alerts view, in a real browser against a running ``pipetrace serve`` whose alert loop
runs every half second: a rule made in the form fires on real OTLP logs, shows in the header on every
view, resolves when its window passes, and a real webhook receiver gets Alertmanager's payloads; an edit
keeps the masked webhook URL; a silence shows as muted; every kind's form sends and edits its params;
a real failed run's transition links to its run, trace and logs.

The view's screenshot is saved to ``docs/screenshots/alerts.png`` (the README shows it).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from playwright.sync_api import Page, Request, expect

from tests.alert_receivers import WebhookReceiver, webhook_receiver
from tests.conftest import ALLOW_USER_CODE, LiveServer, start_server
from tests.helpers import make_record, wait_until
from tests.service.pipeline_helpers import create, start, wait_for_run
from tests.ui.screenshots import shot

# Generous: the machine running the tests may be busy; nothing here measures time.
SLOW_MS = 90_000
WINDOW_S = 20
SECRET_PATH = "/hook/s3cret-token-0042"
FAILING_CODE = textwrap.dedent(
    """
    import dlt

    @dlt.resource(name="orders")
    def orders():
        raise RuntimeError("the warehouse is down")
        yield []

    def data_source():
        return orders
    """
)


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as found:
        yield found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {**ALLOW_USER_CODE, "PIPETRACE_ALERT_INTERVAL_SECONDS": "0.5", "PIPETRACE_ALERT_RETRY_SECONDS": "0"}
    live = start_server(tmp_path_factory.mktemp("alerts") / "data", env=env)
    yield live
    live.stop()


def _rule_named(server: LiveServer, name: str) -> dict[str, Any]:
    rules: list[dict[str, Any]] = server.get("/api/alerts/rules").json()["rules"]
    (rule,) = [r for r in rules if r["name"] == name]
    return rule


def _row(page: Page, name: str) -> Any:
    return page.locator("table.alert-rules tr.rule", has=page.locator(".rule-name", has_text=name))


def test_a_log_rule_made_in_the_ui_fires_shows_in_the_header_resolves_and_notifies(
    server: LiveServer, receiver: WebhookReceiver, page: Page
) -> None:
    reads: list[Request] = []
    page.on("request", lambda request: reads.append(request) if request.method == "GET" else None)
    page.goto(f"{server.url}/#/alerts")
    expect(page.locator("h1")).to_have_text("Alerts")
    page.fill("#rule-name", "warehouse refused")
    page.select_option("#rule-kind", "log_condition")
    page.fill("#param-window_seconds", str(WINDOW_S))
    page.fill("#param-threshold", "1")
    page.select_option("#param-level", "ERROR")
    page.fill("#param-text", "connection refused")
    page.click("text=Add a target")
    page.fill("#notify-0-value", receiver.url + SECRET_PATH)
    page.click("#rule-form button[type=submit]")
    row = _row(page, "warehouse refused")
    expect(row).to_have_count(1)
    expect(page.locator("#alerts-note")).to_have_text("Rule warehouse refused created.")
    rule = _rule_named(server, "warehouse refused")
    assert rule["params"] == {"window_seconds": WINDOW_S, "threshold": 1, "level": "ERROR",
                              "service_name": None, "text": "connection refused",
                              "error_rate_percent": None, "min_records": None}  # fmt: skip
    assert rule["notify"] == [{"type": "webhook", "url": f"{receiver.url}/***"}]
    expect(row.locator("td.evaluated")).to_contain_text("UTC", timeout=SLOW_MS)  # evaluated: ok
    expect(row.locator(".badge.alert-ok")).to_be_visible()
    expect(page.locator("#firing-alerts")).to_be_hidden()

    records = [
        make_record("Connection refused by the warehouse", severity=SeverityNumber.ERROR),
        make_record("connection REFUSED again, retrying", severity=SeverityNumber.FATAL),
        make_record("connection refused (only a warning)", severity=SeverityNumber.WARN),
        make_record("disk full", severity=SeverityNumber.ERROR),
    ]
    assert OTLPLogExporter(endpoint=f"{server.url}/v1/logs").export(records).name == "SUCCESS"

    expect(row.locator(".badge.alert-firing")).to_be_visible(timeout=SLOW_MS)
    expect(row.locator(".subjects")).to_contain_text("2 matching records in the store")
    badge = page.locator("#firing-alerts")
    expect(badge).to_have_text("1 firing")
    firing_entry = page.locator("table.alert-history tr", has=page.locator(".transition .badge.alert-firing"))
    expect(firing_entry.locator(".delivery")).to_contain_text("sent, 1 attempt", timeout=SLOW_MS)
    expect(firing_entry.locator("a", has_text="matching logs")).to_have_attribute(
        "href", "#/logs?q=connection+refused&level=ERROR"
    )
    # A quiet rule beside it, for the screenshot (on a pipeline no test runs: it never notifies).
    nightly = {
        "name": "nightly orders failed",
        "kind": "run_failed",
        "pipeline_ids": ["orders"],
        "notify": [{"type": "slack", "url": "https://hooks.slack.com/services/T0/B0/x"}],
    }
    assert server.post("/api/alerts/rules", json=nightly).status_code == 201
    expect(_row(page, "nightly orders failed").locator(".badge.alert-ok")).to_be_visible()
    shot(page, "alerts")

    # From another view: the header still counts it and leads back to the Alerts view.
    page.click("nav a[data-view=logs]")
    expect(page.locator("h1")).to_have_text("Logs")
    expect(badge).to_have_text("1 firing")
    badge.click()
    expect(page.locator("h1")).to_have_text("Alerts")

    # The header's polls, like the UI's other reads, ask not to be recorded (sampled flag off).
    polls = [r for r in reads if r.url.endswith("/api/alerts/rules")]
    assert len(polls) >= 2 and all(r.headers["traceparent"].endswith("-00") for r in polls)

    # The window passes, the count drops to 0: resolved, in the table, the header and the receiver.
    expect(_row(page, "warehouse refused").locator(".badge.alert-resolved")).to_be_visible(timeout=SLOW_MS)
    expect(badge).to_be_hidden(timeout=SLOW_MS)
    assert wait_until(lambda: len(receiver.received) >= 2, timeout=SLOW_MS / 1000)
    firing, resolved = receiver.received[:2]
    assert [path for path, _ in receiver.requests[:2]] == [SECRET_PATH, SECRET_PATH]
    for payload, status in ((firing, "firing"), (resolved, "resolved")):
        assert payload["version"] == "4" and payload["status"] == status
        assert payload["commonLabels"]["alertname"] == "warehouse refused"
        (alert,) = payload["alerts"]
        assert alert["status"] == status
        assert alert["labels"] == {
            "alertname": "warehouse refused",
            "rule_id": rule["id"],
            "kind": "log_condition",
            "severity": "warning",
        }
        assert alert["annotations"]["value"] == "2"
    assert firing["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"

    # An edit of another field keeps the webhook URL the form shows masked.
    _row(page, "warehouse refused").locator("button", has_text="Edit").click()
    expect(page.locator("#rule-form h2")).to_have_text("Edit rule warehouse refused")
    expect(page.locator("#notify-0-value")).to_have_value(f"{receiver.url}/***")
    expect(page.locator("#param-text")).to_have_value("connection refused")
    page.fill("#param-threshold", "5")
    page.click("#rule-form button[type=submit]")
    expect(page.locator("#alerts-note")).to_have_text("Rule warehouse refused saved.")
    edited = _rule_named(server, "warehouse refused")
    assert edited["params"]["threshold"] == 5 and edited["notify"] == rule["notify"]
    # The deliveries made before the edit no longer name today's target as theirs.
    expect(page.locator("li.delivery").first).to_contain_text("target 1 of the rule before its last edit")
    sent_before = len(receiver.requests)
    _row(page, "warehouse refused").locator("button", has_text="Send test").click()
    expect(page.locator("#alerts-note")).to_contain_text(
        f"Test notification of warehouse refused: webhook {receiver.url}/*** sent after 1 attempt"
    )
    assert receiver.requests[sent_before:] == [(SECRET_PATH, 200)]  # the URL kept, not the mask

    # Muted for an hour, then unmuted.
    row = _row(page, "warehouse refused")
    row.locator("button", has_text="Mute 1 h").click()
    expect(row.locator(".muted-until")).to_contain_text("muted until")
    (silence,) = server.get("/api/alerts/silences").json()["silences"]
    assert silence["rule_id"] == rule["id"] and silence["pipeline_id"] is None
    row.locator("button", has_text="Unmute").click()
    expect(row.locator("td.silence")).to_have_text("not muted")
    assert server.get("/api/alerts/silences").json()["silences"] == []


def _create(
    page: Page, name: str, kind: str, fields: Mapping[str, str | bool], targets: list[tuple[str, str]]
) -> None:
    page.fill("#rule-name", name)
    page.select_option("#rule-kind", kind)
    for selector, value in fields.items():
        if isinstance(value, bool):
            page.set_checked(selector, value)
        elif page.locator(selector).evaluate("(node) => node.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    for i, (channel, address) in enumerate(targets):
        page.click("text=Add a target")
        page.select_option(f"#notify-{i}-type", channel)
        page.fill(f"#notify-{i}-value", address)
    page.click("#rule-form button[type=submit]")


def test_every_kind_is_made_and_edited_in_its_form_and_a_refused_field_is_shown_beside_it(
    server: LiveServer, page: Page, tmp_path: Path
) -> None:
    nightly = create(
        server, "simple", {"bucket_url": str(tmp_path), "table_name": "rows"}, name="nightly orders"
    )
    page.goto(f"{server.url}/#/alerts")
    error = page.locator("#rule-error")
    # Refused by the service: the message names the field, which the form marks.
    _create(page, "stale orders", "freshness", {}, [])
    expect(error).to_have_text("params.window_seconds: is required for freshness")
    expect(page.locator("#param-window_seconds")).to_have_attribute("aria-invalid", "true")
    page.fill("#param-window_seconds", "93600")
    page.fill("#rule-for", "")
    page.fill("#rule-repeat", "")
    page.click("#rule-form button[type=submit]")
    expect(page.locator("#alerts-note")).to_have_text("Rule stale orders created.")
    expect(error).to_have_text("")

    fields: dict[str, str | bool] = {
        "#param-table": "orders",
        "#param-min_rows": "1.5",
        "#rule-other-pipelines": "orders, customers",
        "#rule-form input[aria-label='nightly orders']": True,
    }
    _create(
        page, "empty orders", "no_rows", fields, [("webhook", "https://hooks.example.com/services/T0/B0/xyz")]
    )
    expect(error).to_contain_text("params.min_rows: must be a whole number")
    expect(page.locator("#param-min_rows")).to_have_attribute("aria-invalid", "true")
    page.fill("#param-min_rows", "10")
    page.click("#rule-form button[type=submit]")
    expect(page.locator("#alerts-note")).to_have_text("Rule empty orders created.")

    _create(page, "slow orders", "slow_run", {"#param-factor": "2.5", "#rule-for": "60"},
            [("email", "oncall@example.com, lead@example.com")])  # fmt: skip
    expect(page.locator("#alerts-note")).to_have_text("Rule slow orders created.")
    targets = [("slack", "https://hooks.slack.com/services/T1/B1/abc"), ("webhook", "ftp://nowhere/x")]
    _create(page, "failed anything", "run_failed", {"#rule-enabled": False}, targets)
    expect(error).to_contain_text("notify[1].url: must be an http:// or https:// URL")
    expect(page.locator("#notify-1-value")).to_have_attribute("aria-invalid", "true")
    page.locator("#rule-form .target").nth(1).locator("button", has_text="Remove").click()
    page.click("#rule-form button[type=submit]")
    expect(page.locator("#alerts-note")).to_have_text("Rule failed anything created.")
    fields = {"#param-breaker_open": False, "#param-spool_records_above": "1000", "#param-dropped_above": ""}
    _create(page, "ingest spool", "ingest_health", fields, [])
    expect(page.locator("#alerts-note")).to_have_text("Rule ingest spool created.")
    # The error-rate form of a log condition, at a chosen severity: the percentage typed clears the
    # count's default (the service takes one form or the other); a count typed after it is refused.
    fields = {"#param-window_seconds": "600", "#param-error_rate_percent": "5", "#param-threshold": "3",
              "#rule-severity": "critical"}  # fmt: skip
    _create(page, "error share", "log_condition", fields, [])
    expect(error).to_contain_text("params.threshold: the error-rate form")
    expect(page.locator("#param-threshold")).to_have_attribute("aria-invalid", "true")
    page.fill("#param-threshold", "")
    page.click("#rule-form button[type=submit]")
    expect(page.locator("#alerts-note")).to_have_text("Rule error share created.")
    page.select_option("#rule-kind", "log_condition")
    expect(page.locator("#param-threshold")).to_have_value("0")
    page.fill("#param-error_rate_percent", "5")
    expect(page.locator("#param-threshold")).to_have_value("")

    kept = (
        "kind",
        "severity",
        "pipeline_ids",
        "for_seconds",
        "repeat_seconds",
        "params",
        "notify",
        "enabled",
    )
    made = {
        name: {field: _rule_named(server, name)[field] for field in kept}
        for name in (
            "stale orders",
            "empty orders",
            "slow orders",
            "failed anything",
            "ingest spool",
            "error share",
        )
    }
    base = {
        "severity": "warning",
        "pipeline_ids": [],
        "for_seconds": 0,
        "repeat_seconds": 14400,
        "notify": [],
        "enabled": True,
    }
    hooks = {"type": "webhook", "url": "https://hooks.example.com/***"}
    emails = {"type": "email", "to": ["oncall@example.com", "lead@example.com"]}
    slack = {"type": "slack", "url": "https://hooks.slack.com/***"}
    ingest = {"breaker_open": False, "spool_records_above": 1000, "dropped_above": None}
    rate = {"window_seconds": 600, "threshold": None, "level": "ERROR", "service_name": None, "text": None,
            "error_rate_percent": 5, "min_records": 10}  # fmt: skip
    assert made == {
        "stale orders": {**base, "kind": "freshness", "repeat_seconds": None,
                         "params": {"window_seconds": 93600}},
        "empty orders": {**base, "kind": "no_rows", "pipeline_ids": [nightly["id"], "orders", "customers"],
                         "params": {"table": "orders", "min_rows": 10}, "notify": [hooks]},
        "slow orders": {**base, "kind": "slow_run", "for_seconds": 60,
                        "params": {"factor": 2.5, "last_n": 10, "min_runs": 3}, "notify": [emails]},
        "failed anything": {**base, "kind": "run_failed", "params": {}, "notify": [slack], "enabled": False},
        "ingest spool": {**base, "kind": "ingest_health", "params": ingest},
        "error share": {**base, "kind": "log_condition", "severity": "critical", "params": rate},
    }  # fmt: skip

    # Each edit form shows the rule as it is: saved untouched, every rule stays the same (secrets too).
    for name in made:
        _row(page, name).locator("button", has_text="Edit").click()
        expect(page.locator("#rule-form h2")).to_have_text(f"Edit rule {name}")
        page.click("#rule-form button[type=submit]")
        expect(page.locator("#alerts-note")).to_have_text(f"Rule {name} saved.")
        assert {field: _rule_named(server, name)[field] for field in kept} == made[name]
    secrets = sorted((server.data_dir / "secrets").glob("alert-*.json"))
    assert any("hooks.slack.com/services/T1/B1/abc" in path.read_text() for path in secrets)

    # A custom silence, until a chosen time.
    _row(page, "slow orders").locator("button", has_text="Mute until").click()
    expect(page.locator("#silence-rule")).to_have_value(_rule_named(server, "slow orders")["id"])
    page.fill("#silence-until", "2099-01-31T12:00")
    page.fill("#silence-comment", "holiday")
    page.click("#silence-form button[type=submit]")
    expect(_row(page, "slow orders").locator(".muted-until")).to_contain_text("muted until 2099-01-31")
    # A pipeline muted for every rule: shown on the rules that watch it, listed, and ended there.
    page.select_option("#silence-rule", "")
    page.fill("#silence-comment", "")
    page.click("#silence-form button[type=submit]")
    expect(page.locator("#silence-error")).to_have_text(
        "rule_id: give rule_id, pipeline_id or both: a silence mutes something"
    )
    page.fill("#silence-pipeline", "orders")
    page.fill("#silence-until", "2099-02-01T12:00")
    page.click("#silence-form button[type=submit]")
    muted_orders = _row(page, "empty orders").locator(".muted-until")
    expect(_row(page, "empty orders").locator("td.pipelines")).to_have_text(
        "nightly orders, orders, customers"
    )
    expect(muted_orders).to_have_text("muted for orders (every rule) until 2099-02-01 12:00:00 UTC")
    expect(page.locator("table.alert-silences tbody tr")).to_have_count(2)
    pipeline_silence = page.locator("table.alert-silences tr", has_text="every rule")
    expect(pipeline_silence).to_contain_text("orders")
    pipeline_silence.locator("button", has_text="End").click()
    expect(_row(page, "empty orders").locator("td.silence")).to_have_text("not muted")
    (left,) = server.get("/api/alerts/silences").json()["silences"]
    assert (left["rule_id"], left["pipeline_id"], left["comment"]) == (
        _rule_named(server, "slow orders")["id"],
        None,
        "holiday",
    )

    # Deleted, after the confirmation.
    page.once("dialog", lambda dialog: dialog.accept())
    _row(page, "ingest spool").locator("button", has_text="Delete").click()
    expect(_row(page, "ingest spool")).to_have_count(0)
    assert [r for r in server.get("/api/alerts/rules").json()["rules"] if r["name"] == "ingest spool"] == []


def test_a_failed_run_s_transition_links_to_its_run_trace_and_logs(server: LiveServer, page: Page) -> None:
    pipeline = create(server, "dlt_code", {"code": FAILING_CODE}, name="broken load")
    body = {"name": "broken load failed", "kind": "run_failed", "pipeline_ids": [pipeline["id"]]}
    assert server.post("/api/alerts/rules", json=body).status_code == 201
    run = wait_for_run(server, start(server, pipeline["id"])["run_id"])
    assert run["status"] == "failed"
    page.goto(f"{server.url}/#/alerts")
    entry = page.locator("table.alert-history tr", has_text="broken load failed")
    expect(entry.locator(".transition")).to_contain_text("ok → firing", timeout=SLOW_MS)
    expect(entry).to_contain_text("the warehouse is down")
    expect(entry.get_by_role("link", name="trace", exact=True)).to_have_attribute(
        "href", f"#/trace/{run['trace_id']}"
    )
    logs = f"#/logs?pipeline_id={pipeline['id']}&run_id={run['run_id']}"
    expect(entry.get_by_role("link", name="logs", exact=True)).to_have_attribute("href", logs)
    expect(_row(page, "broken load failed").locator("td.pipelines")).to_have_text("broken load")
    entry.get_by_role("link", name="run", exact=True).click()
    expect(page.locator("#run-status")).to_have_text("failed")
    expect(page.locator("h1")).to_contain_text(run["run_id"])
