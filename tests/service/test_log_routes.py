from __future__ import annotations

import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk.resources import Resource

from service.params import NS
from service.state import ServiceState
from tests.helpers import bodies, make_record

T0 = 1_780_000_000 * NS  # 2026-05-28T20:26:40Z
TRACE = 0x0AF7651916CD43DD8448EB211C80319C


def seed(service: ServiceState, specs: list[dict[str, Any]]) -> None:
    """Store records; each spec gives body, offset seconds from T0, and optional context."""
    records = []
    for spec in specs:
        attributes = dict(spec.get("attributes", {}))
        for key in ("pipeline.id", "pipeline.run_id", "pipeline.stage"):
            short = key.split(".")[-1] if key != "pipeline.id" else "pipeline"
            if short in spec:
                attributes[key] = spec[short]
        records.append(
            make_record(
                spec["body"],
                timestamp=T0 + int(spec.get("at", 0) * NS),
                severity=spec.get("severity", SeverityNumber.INFO),
                attributes=attributes,
                trace_id=spec.get("trace_id", 0),
                span_id=spec.get("span_id", 0),
            )
        )
    service.log_exporter.export(records)


@pytest.fixture
def seeded(service: ServiceState) -> ServiceState:
    seed(
        service,
        [
            {"body": "extract started", "at": 0, "pipeline": "orders", "run_id": "r1", "stage": "extract"},
            {"body": "Normalize done", "at": 10, "pipeline": "orders", "run_id": "r1", "stage": "normalize",
             "severity": SeverityNumber.DEBUG},
            {"body": "load slow", "at": 20, "pipeline": "orders", "run_id": "r1", "stage": "load",
             "severity": SeverityNumber.WARN, "attributes": {"table": "customers"}},
            {"body": "load failed", "at": 30, "pipeline": "orders", "run_id": "r2", "stage": "load",
             "severity": SeverityNumber.ERROR, "trace_id": TRACE, "span_id": 0xB7AD6B7169203331},
            {"body": "fatal crash", "at": 40, "pipeline": "orders", "run_id": "r2", "stage": "load",
             "severity": SeverityNumber.FATAL, "trace_id": TRACE},
            {"body": "other pipeline says 100% done_ok", "at": 50, "pipeline": "users", "run_id": "r3",
             "attributes": {"note": 'quote " and back\\slash', "SECRETKEY": "plain"}},
        ],
    )  # fmt: skip
    return service


def test_pipeline_logs_are_newest_first(client: FlaskClient, seeded: ServiceState) -> None:
    body = client.get("/api/logs/pipeline/orders").get_json()
    assert bodies(body["logs"]) == [
        "fatal crash",
        "load failed",
        "load slow",
        "Normalize done",
        "extract started",
    ]
    assert body["next_cursor"] is None
    first = body["logs"][0]
    assert set(first) == {
        "id", "timestamp", "observed_timestamp", "severity_text", "severity_number", "body", "scope",
        "trace_id", "span_id", "event_name", "service_name", "pipeline_id", "run_id", "stage", "attributes",
        "resource", "sort_timestamp", "flags", "dropped_attributes_count", "resource_schema_url",
        "resource_dropped_attributes_count",
    }  # fmt: skip
    assert first["timestamp"] == "2026-05-28T20:27:20.000000000Z"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("run_id=r1", ["load slow", "Normalize done", "extract started"]),
        ("stage=load", ["fatal crash", "load failed", "load slow"]),
        ("level=WARN", ["fatal crash", "load failed", "load slow"]),
        ("level=warning", ["fatal crash", "load failed", "load slow"]),
        ("level=ERROR", ["fatal crash", "load failed"]),
        ("level=debug", ["fatal crash", "load failed", "load slow", "Normalize done", "extract started"]),
        ("level=21", ["fatal crash"]),
        ("since=2026-05-28T20:26:50Z", ["fatal crash", "load failed", "load slow", "Normalize done"]),
        ("until=2026-05-28T20:26:50Z", ["extract started"]),
        ("since=2026-05-28T20:26:50Z&until=2026-05-28T20:27:10.000000001Z", ["load failed", "load slow",
                                                                             "Normalize done"]),
        ("since=2026-05-28T22:26:50%2B02:00&until=2026-05-28T20:27:00Z", ["Normalize done"]),
        ("run_id=r2&stage=load&level=FATAL", ["fatal crash"]),
        ("limit=2", ["fatal crash", "load failed"]),
        ("run_id=nope", []),
    ],
)  # fmt: skip
def test_pipeline_log_filters(
    client: FlaskClient, seeded: ServiceState, query: str, expected: list[str]
) -> None:
    response = client.get(f"/api/logs/pipeline/orders?{query}")
    assert response.status_code == 200, response.get_json()
    assert bodies(response.get_json()["logs"]) == expected


def test_relative_since_window(client: FlaskClient, service: ServiceState) -> None:
    now = time.time_ns()
    service.log_exporter.export(
        [
            make_record("two hours ago", timestamp=now - 2 * 3600 * NS, attributes={"pipeline.id": "p"}),
            make_record("ten minutes ago", timestamp=now - 600 * NS, attributes={"pipeline.id": "p"}),
        ]
    )
    assert bodies(client.get("/api/logs/pipeline/p?since=15m").get_json()["logs"]) == ["ten minutes ago"]
    assert len(client.get("/api/logs/pipeline/p?since=1d").get_json()["logs"]) == 2
    assert bodies(client.get("/api/logs/pipeline/p?until=1h").get_json()["logs"]) == ["two hours ago"]


def test_cursor_paging_has_no_gaps_or_repeats_while_records_arrive(
    client: FlaskClient, service: ServiceState
) -> None:
    # Many records share a timestamp, so the cursor has to break ties by id.
    service.log_exporter.export(
        [
            make_record(f"r{i}", timestamp=T0 + (i // 7) * NS, attributes={"pipeline.id": "p"})
            for i in range(253)
        ]
    )
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = "/api/logs/pipeline/p?limit=20" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url).get_json()
        seen.extend(bodies(page["logs"]))
        pages += 1
        # New records keep arriving, newer than everything paged so far.
        newer = T0 + (10_000 + pages) * NS
        service.log_exporter.export(
            [
                make_record(f"new{pages}-{j}", timestamp=newer, attributes={"pipeline.id": "p"})
                for j in range(5)
            ]
        )
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 13
    assert len(seen) == len(set(seen)) == 253
    assert set(seen) == {f"r{i}" for i in range(253)}


def test_search_matches_body_and_attribute_values_case_insensitively(
    client: FlaskClient, seeded: ServiceState
) -> None:
    def search(q: str, extra: str = "") -> list[str]:
        response = client.get("/api/logs/search", query_string={"q": q, **dict(
            pair.split("=") for pair in extra.split("&") if pair)})  # fmt: skip
        assert response.status_code == 200, response.get_json()
        return bodies(response.get_json()["logs"])

    assert search("FAILED") == ["load failed"]
    # "fatal crash" matches through its pipeline.stage attribute value "load".
    assert search("LOAD") == ["fatal crash", "load failed", "load slow"]
    assert search("normalize") == ["Normalize done"]
    assert search("customers") == ["load slow"]  # an attribute value
    assert search("secretkey") == []  # attribute keys are not searched
    assert search("100%") == ["other pipeline says 100% done_ok"]  # no LIKE wildcards
    assert search("_") == ["other pipeline says 100% done_ok"]
    assert search('quote "') == ["other pipeline says 100% done_ok"]  # escaped in the stored JSON
    assert search("back\\slash") == ["other pipeline says 100% done_ok"]
    assert search("load", "pipeline_id=orders&level=ERROR") == ["fatal crash", "load failed"]
    assert search("load", "pipeline_id=users") == []
    assert search("o", "limit=1") == ["other pipeline says 100% done_ok"]


def test_stats(client: FlaskClient, seeded: ServiceState) -> None:
    # The window keeps out the service's own request logs, which carry today's time.
    stats = client.get("/api/logs/stats?until=2026-05-29T00:00:00Z").get_json()
    assert stats["total"] == 6
    assert stats["by_level"] == {"INFO": 2, "DEBUG": 1, "WARN": 1, "ERROR": 1, "FATAL": 1}
    assert stats["by_pipeline"][0] == {"pipeline_id": "orders", "count": 5, "errors": 2}
    assert stats["error_rate"] == pytest.approx(2 / 6)
    timeline = stats["timeline"]
    # From the first record to `until` is about 3.5 h: five-minute buckets keep it under 120 buckets.
    assert timeline["bucket_seconds"] == 300
    assert timeline["buckets"] == [
        {"start": "2026-05-28T20:25:00.000000000Z", "total": 6,
         "by_level": {"INFO": 2, "DEBUG": 1, "WARN": 1, "ERROR": 1, "FATAL": 1}}
    ]  # fmt: skip
    fine = client.get("/api/logs/stats?pipeline_id=orders").get_json()["timeline"]
    assert fine["bucket_seconds"] == 1
    assert [b["start"] for b in fine["buckets"]][:2] == [
        "2026-05-28T20:26:40.000000000Z",
        "2026-05-28T20:26:50.000000000Z",
    ]
    assert set(stats["ingest"]) == {"logs", "spans"}
    assert stats["ingest"]["logs"]["exported"] >= 6

    orders = client.get("/api/logs/stats?pipeline_id=orders&since=2026-05-28T20:26:55Z").get_json()
    assert orders["total"] == 3
    assert orders["by_level"] == {"WARN": 1, "ERROR": 1, "FATAL": 1}
    assert orders["error_rate"] == pytest.approx(2 / 3)
    assert orders["by_pipeline"] == [{"pipeline_id": "orders", "count": 3, "errors": 2}]


def test_correlation_returns_the_trace_oldest_first(client: FlaskClient, seeded: ServiceState) -> None:
    trace_id = format(TRACE, "032x")
    body = client.get(f"/api/logs/correlation/{trace_id.upper()}").get_json()
    assert body["trace_id"] == trace_id
    assert bodies(body["logs"]) == ["load failed", "fatal crash"]
    assert body["spans"] == []
    assert body["truncated"] is False


def test_correlation_errors(client: FlaskClient, seeded: ServiceState) -> None:
    missing = client.get("/api/logs/correlation/" + "1" * 32)
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "not_found"
    for bad in ("xyz", "1" * 31, "g" * 32, "0" * 32):
        response = client.get(f"/api/logs/correlation/{bad}")
        assert response.status_code == 400
        assert response.get_json()["error"]["parameter"] == "trace_id"


def test_cleanup_dry_run_then_delete(client: FlaskClient, seeded: ServiceState) -> None:
    dry = client.post(
        "/api/logs/cleanup", json={"before": "2026-05-28T20:27:05Z", "dry_run": True}
    ).get_json()
    assert dry["deleted"] == 3 and dry["dry_run"] is True
    assert len(client.get("/api/logs/pipeline/orders").get_json()["logs"]) == 5
    only_users = client.post(
        "/api/logs/cleanup", json={"before": "2026-05-28T20:30:00Z", "pipeline_id": "users"}
    )
    assert only_users.get_json()["deleted"] == 1
    done = client.post("/api/logs/cleanup", json={"before": "2026-05-28T20:27:05Z"}).get_json()
    assert done["deleted"] == 3
    assert bodies(client.get("/api/logs/pipeline/orders").get_json()["logs"]) == [
        "fatal crash",
        "load failed",
    ]


def test_cleanup_older_than_days_removes_spans_too(client: FlaskClient, service: ServiceState) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("old", start_time=T0) as span:
        pass
    service.span_exporter.export([span])  # type: ignore[list-item]
    seed(service, [{"body": "old", "at": 0}])
    response = client.post("/api/logs/cleanup", json={"older_than_days": 1}).get_json()
    assert (response["deleted"], response["deleted_spans"]) == (1, 1)


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/logs/pipeline/p?limit=0", "limit"),
        ("/api/logs/pipeline/p?limit=1001", "limit"),
        ("/api/logs/pipeline/p?limit=-5", "limit"),
        ("/api/logs/pipeline/p?limit=ten", "limit"),
        ("/api/logs/pipeline/p?level=LOUD", "level"),
        ("/api/logs/pipeline/p?level=25", "level"),
        ("/api/logs/pipeline/p?since=yesterday", "since"),
        ("/api/logs/pipeline/p?since=2026-02-30T00:00:00Z", "since"),
        ("/api/logs/pipeline/p?until=2026-01-01T25:00:00Z", "until"),
        ("/api/logs/pipeline/p?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
        ("/api/logs/pipeline/p?since=99999999999d", "since"),
        ("/api/logs/pipeline/p?since=999999999w", None),  # before 1970: from the beginning
        ("/api/logs/pipeline/p?until=999999999w", None),
        ("/api/logs/pipeline/p?since=9999-12-31T23:59:59Z", "since"),
        ("/api/logs/pipeline/p?since=0001-01-01T00:00:00Z", "since"),
        ("/api/logs/pipeline/p?until=1969-12-31T23:59:59Z", "until"),
        ("/api/logs/stats?since=2263-01-01T00:00:00Z", "since"),
        ("/api/logs/pipeline/p?cursor=not-a-cursor", "cursor"),
        ("/api/logs/pipeline/p?cursor=WzEsMl0", None),  # a well-formed cursor is accepted
        ("/api/logs/pipeline/p?run_id=", "run_id"),
        ("/api/logs/pipeline/p?stage=" + "x" * 300, "stage"),
        ("/api/logs/pipeline/p?levle=ERROR", "levle"),
        ("/api/logs/search", "q"),
        ("/api/logs/search?q=", "q"),
        ("/api/logs/search?q=" + "a" * 501, "q"),
        ("/api/logs/search?q=a&limit=x", "limit"),
        ("/api/logs/stats?since=soon", "since"),
        ("/api/logs/stats?limit=3", "limit"),
        ("/api/logs/correlation/abc", "trace_id"),
    ],
)
def test_malformed_parameters_get_a_4xx_naming_them(
    client: FlaskClient, seeded: ServiceState, path: str, parameter: str | None
) -> None:
    response = client.get(path)
    if parameter is None:
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["parameter"] == parameter
    assert parameter in error["message"]


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({}, "older_than_days"),
        ({"older_than_days": 1, "before": "2026-01-01T00:00:00Z"}, "older_than_days"),
        ({"older_than_days": "7"}, "older_than_days"),
        ({"older_than_days": -1}, "older_than_days"),
        ({"older_than_days": True}, "older_than_days"),
        ({"before": 12}, "before"),
        ({"before": "last week"}, "before"),
        ({"before": "0001-01-01T00:00:00Z"}, "before"),
        ({"older_than_days": 1e300}, "older_than_days"),
        ({"older_than_days": 1, "dry_run": "yes"}, "dry_run"),
        ({"older_than_days": 1, "pipeline_id": 5}, "pipeline_id"),
        ({"older_than_days": 1, "everything": True}, "everything"),
        ([1, 2], "body"),
        ("not json", "body"),
    ],
)
def test_malformed_cleanup_bodies_get_a_4xx(
    client: FlaskClient, seeded: ServiceState, body: Any, parameter: str
) -> None:
    if isinstance(body, str):
        response = client.post("/api/logs/cleanup", data=body, content_type="application/json")
    else:
        response = client.post("/api/logs/cleanup", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["parameter"] == parameter
    assert client.get("/api/logs/stats?pipeline_id=orders").get_json()["total"] == 5  # nothing was deleted


def test_unknown_routes_and_methods_answer_json(client: FlaskClient) -> None:
    missing = client.get("/api/logs/nothing-here")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    wrong = client.get("/api/logs/cleanup")
    assert wrong.status_code == 405 and "POST" in wrong.headers["Allow"]


@pytest.fixture
def two_services(service: ServiceState) -> ServiceState:
    """Two programs logging for the same pipeline: only their resource's service.name tells them apart."""
    for name, count in (("billing", 2), ("orders-api", 3)):
        resource = Resource.create({"service.name": name})
        service.log_exporter.export(
            [
                make_record(f"{name} step {i}", timestamp=T0 + i * NS, resource=resource,
                            attributes={"pipeline.id": "shared"},
                            severity=SeverityNumber.ERROR if i == 0 else SeverityNumber.INFO)
                for i in range(count)
            ]
        )  # fmt: skip
    return service


@pytest.mark.parametrize(
    "route",
    ["/api/logs?", "/api/logs/pipeline/shared?", "/api/logs/search?q=step&"],
)
def test_every_log_route_filters_by_service(
    client: FlaskClient, two_services: ServiceState, route: str
) -> None:
    answer = client.get(f"{route}service_name=billing")
    assert answer.status_code == 200
    assert bodies(answer.json["logs"]) == ["billing step 1", "billing step 0"]
    assert {log["service_name"] for log in answer.json["logs"]} == {"billing"}
    assert client.get(f"{route}service_name=nobody").json["logs"] == []


def test_stats_filter_by_service(client: FlaskClient, two_services: ServiceState) -> None:
    stats = client.get("/api/logs/stats?service_name=orders-api").json
    assert (stats["total"], stats["by_level"]) == (3, {"ERROR": 1, "INFO": 2})
    assert stats["error_rate"] == pytest.approx(1 / 3)
