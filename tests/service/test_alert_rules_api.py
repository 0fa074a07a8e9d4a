"""``/api/alerts``: rules are created, read, edited and deleted as JSON, returned with their state; a
bad definition gets a 400 naming its field."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.alerts.service import alerts_of

WEBHOOK = {"type": "webhook", "url": "https://hooks.example.com/alerts/abc123"}


def test_a_rule_is_created_listed_edited_and_deleted(client: FlaskClient) -> None:
    email = {"type": "email", "to": ["a@example.com"]}
    sent = {"name": "nightly freshness", "kind": "freshness", "pipeline_ids": ["p1", "p2"],
            "for_seconds": 120, "params": {"window_seconds": 93600}, "notify": [WEBHOOK, email]}  # fmt: skip
    response = client.post("/api/alerts/rules", json=sent)
    assert response.status_code == 201, response.json
    rule = response.json
    assert {k: rule[k] for k in ("name", "kind", "pipeline_ids", "for_seconds", "params")} == {
        **{k: sent[k] for k in ("name", "kind", "pipeline_ids", "for_seconds")},
        "params": {"window_seconds": 93600},
    }
    assert rule["notify"] == [{"type": "webhook", "url": "https://hooks.example.com/***"}, sent["notify"][1]]
    assert rule["state"] == "ok" and rule["subjects"] == [] and rule["repeat_seconds"] == 14400
    assert rule["enabled"] is True and rule["evaluated_at"] is None
    assert client.get(f"/api/alerts/rules/{rule['id']}").json == rule
    assert client.get("/api/alerts/rules").json == {"rules": [rule]}

    edited = {"name": "slow", "kind": "slow_run", "params": {"factor": 2.5}, "repeat_seconds": None}
    response = client.put(f"/api/alerts/rules/{rule['id']}", json=edited)
    assert response.status_code == 200, response.json
    assert response.json["params"] == {"factor": 2.5, "last_n": 10, "min_runs": 3}
    assert response.json["repeat_seconds"] is None and response.json["notify"] == []
    assert response.json["created_at"] == rule["created_at"]

    assert client.delete(f"/api/alerts/rules/{rule['id']}", json={}).status_code == 204
    assert client.get(f"/api/alerts/rules/{rule['id']}").status_code == 404
    assert client.delete(f"/api/alerts/rules/{rule['id']}", json={}).status_code == 404
    assert client.put(f"/api/alerts/rules/{rule['id']}", json=edited).status_code == 404
    assert client.get("/api/alerts/rules").json == {"rules": []}


BASE: dict[str, Any] = {"name": "r", "kind": "run_failed"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "run_failed"}, "name"),
        ({**BASE, "name": "  "}, "name"),
        ({**BASE, "kind": "cpu_high"}, "kind"),
        ({**BASE, "colour": "red"}, "colour"),
        ({**BASE, "pipeline_ids": "p1"}, "pipeline_ids"),
        ({**BASE, "pipeline_ids": ["p1", 2]}, "pipeline_ids[1]"),
        ({**BASE, "pipeline_ids": ["a\nb"]}, "pipeline_ids[0]"),
        ({**BASE, "for_seconds": -1}, "for_seconds"),
        ({**BASE, "for_seconds": True}, "for_seconds"),
        ({**BASE, "for_seconds": "60"}, "for_seconds"),
        ({**BASE, "repeat_seconds": 0}, "repeat_seconds"),
        ({**BASE, "enabled": "yes"}, "enabled"),
        ({**BASE, "params": {"window_seconds": 60}}, "params.window_seconds"),
        ({**BASE, "params": []}, "params"),
        ({"name": "r", "kind": "freshness"}, "params.window_seconds"),
        ({"name": "r", "kind": "freshness", "params": {"window_seconds": 0}}, "params.window_seconds"),
        ({"name": "r", "kind": "no_rows", "params": {"min_rows": 1.5}}, "params.min_rows"),
        ({"name": "r", "kind": "slow_run", "params": {"factor": 0.5}}, "params.factor"),
        (
            {"name": "r", "kind": "log_condition", "params": {"window_seconds": 60, "level": "LOUD"}},
            "params.level",
        ),
        (
            {
                "name": "r",
                "kind": "log_condition",
                "params": {"window_seconds": 60, "error_rate_percent": 101},
            },
            "params.error_rate_percent",
        ),
        (
            {
                "name": "r",
                "kind": "log_condition",
                "params": {"window_seconds": 60, "error_rate_percent": "5"},
            },
            "params.error_rate_percent",
        ),
        (
            {
                "name": "r",
                "kind": "log_condition",
                "params": {"window_seconds": 60, "error_rate_percent": 5, "min_records": 0},
            },
            "params.min_records",
        ),
        (
            {
                "name": "r",
                "kind": "log_condition",
                "params": {"window_seconds": 60, "error_rate_percent": 5, "threshold": 3},
            },
            "params.threshold",
        ),
        (
            {"name": "r", "kind": "log_condition", "params": {"window_seconds": 60, "min_records": 5}},
            "params.min_records",
        ),
        ({"name": "r", "kind": "ingest_health", "pipeline_ids": ["p1"]}, "pipeline_ids"),
        (
            {"name": "r", "kind": "ingest_health", "params": {"breaker_open": False, "dropped_above": None}},
            "params",
        ),
        ({**BASE, "notify": {"type": "webhook"}}, "notify"),
        ({**BASE, "notify": [{"type": "pager"}]}, "notify[0].type"),
        ({**BASE, "notify": [WEBHOOK, {"type": "webhook", "url": "ftp://x/y"}]}, "notify[1].url"),
        ({**BASE, "notify": [{"type": "slack", "url": "http://[::1"}]}, "notify[0].url"),
        ({**BASE, "notify": [{"type": "slack", "url": "https://h:99999/x"}]}, "notify[0].url"),
        ({**BASE, "notify": [{"type": "email", "to": []}]}, "notify[0].to"),
        ({**BASE, "notify": [{"type": "email", "to": ["nobody"]}]}, "notify[0].to[0]"),
        ({**BASE, "notify": [{"type": "email", "to": ["a@b.c"], "url": "https://x"}]}, "notify[0].url"),
    ],
)
def test_a_bad_definition_gets_a_400_naming_the_field(client: FlaskClient, body: Any, field: str) -> None:
    response = client.post("/api/alerts/rules", json=body)
    assert response.status_code == 400, response.json
    assert response.json["error"]["parameter"] == field, response.json
    assert client.get("/api/alerts/rules").json == {"rules": []}


def test_the_error_rate_form_is_answered_with_its_defaults_and_takes_itself_back(client: FlaskClient) -> None:
    body = {"name": "r", "kind": "log_condition", "params": {"window_seconds": 600, "error_rate_percent": 5}}
    created = client.post("/api/alerts/rules", json=body).json
    assert created["params"] == {
        "window_seconds": 600, "threshold": None, "level": "ERROR", "service_name": None, "text": None,
        "error_rate_percent": 5, "min_records": 10,
    }  # fmt: skip
    again = {key: created[key] for key in ("name", "kind", "params")}
    assert client.put(f"/api/alerts/rules/{created['id']}", json=again).json["params"] == created["params"]
    count = {"name": "c", "kind": "log_condition", "params": {"window_seconds": 60}}
    counted = client.post("/api/alerts/rules", json=count).json["params"]
    assert (counted["threshold"], counted["error_rate_percent"], counted["min_records"]) == (0, None, None)


def test_a_body_that_is_not_an_object_gets_a_400(client: FlaskClient) -> None:
    response = client.post("/api/alerts/rules", data="[1]", content_type="application/json")
    assert response.status_code == 400 and response.json["error"]["parameter"] == "body"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"until": "2099-01-01T00:00:00Z"}, "rule_id"),
        ({"pipeline_id": "p1"}, "until"),
        ({"pipeline_id": "p1", "until": "2001-01-01T00:00:00Z"}, "until"),
        ({"pipeline_id": "p1", "until": "1h"}, "until"),
        ({"pipeline_id": "p1", "until": "tomorrow"}, "until"),
        ({"rule_id": "nope", "until": "2099-01-01T00:00:00Z"}, "rule_id"),
        ({"pipeline_id": "p1", "until": "2099-01-01T00:00:00Z", "why": "x"}, "why"),
    ],
)
def test_a_bad_silence_gets_a_400_naming_the_field(client: FlaskClient, body: Any, field: str) -> None:
    response = client.post("/api/alerts/silences", json=body)
    assert response.status_code == 400 and response.json["error"]["parameter"] == field, response.json


def test_silences_are_listed_and_removed(client: FlaskClient) -> None:
    body = {"pipeline_id": "p1", "until": "2099-01-01T00:00:00Z", "comment": "maintenance"}
    silence = client.post("/api/alerts/silences", json=body).json
    assert {k: silence[k] for k in body} == body and silence["rule_id"] is None
    assert client.get("/api/alerts/silences").json == {"silences": [silence]}
    assert client.delete(f"/api/alerts/silences/{silence['id']}", json={}).status_code == 204
    assert client.delete(f"/api/alerts/silences/{silence['id']}", json={}).status_code == 404
    assert client.get("/api/alerts/silences").json == {"silences": []}


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("before=x", "before"), ("rule=1", "rule"), ("rule_id=%0A", "rule_id")],
)
def test_bad_history_parameters_get_a_400_naming_them(client: FlaskClient, query: str, field: str) -> None:
    response = client.get(f"/api/alerts/history?{query}")
    assert response.status_code == 400 and response.json["error"]["parameter"] == field


_ANY = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["ERROR", "warn", "LOUD", 0, 5, 10, 100, 100.5, -1, 2**62, 1e308]),
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    params=st.dictionaries(
        st.sampled_from(
            ["error_rate_percent", "min_records", "threshold", "level", "text", "window_seconds"]
        ),
        _ANY,
        max_size=6,
    ),
    severity=_ANY,
)
def test_any_log_condition_params_and_severity_get_a_201_or_a_400_naming_the_field(
    client: FlaskClient, params: dict[str, Any], severity: Any
) -> None:
    body = {"name": "r", "kind": "log_condition", "severity": severity, "params": params}
    response = client.post("/api/alerts/rules", json=body)
    assert response.status_code in (201, 400), response.get_data(as_text=True)
    if response.status_code == 400:
        field = response.json["error"]["parameter"]
        assert field == "severity" or field.startswith("params"), response.json
    else:
        rule = response.json
        rate = rule["params"]["error_rate_percent"]
        assert (rule["params"]["threshold"] is None) == (rate is not None)
        assert (rule["params"]["min_records"] is None) == (rate is None)


def test_a_rule_stored_before_severity_and_the_error_rate_form_is_answered_with_their_defaults(
    app: Flask, client: FlaskClient
) -> None:
    params = {"window_seconds": 60, "threshold": 0, "level": None, "service_name": None, "text": None}
    old = {"name": "old", "kind": "log_condition", "pipeline_ids": [], "for_seconds": 0,
           "repeat_seconds": None, "params": params, "notify": [], "enabled": True}  # fmt: skip
    stored = alerts_of(app).store.create_rule(old, [], datetime.datetime.now(datetime.UTC))
    answered = client.get(f"/api/alerts/rules/{stored.id}").json
    assert answered["severity"] == "warning"
    assert (answered["params"]["error_rate_percent"], answered["params"]["min_records"]) == (None, None)
    alerts_of(app).run_once()  # evaluated in the count form
    assert client.get(f"/api/alerts/rules/{stored.id}").json["evaluation_error"] is None
