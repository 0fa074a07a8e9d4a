"""Every field of a received span is stored and returned: flags, trace states, link details, dropped
counts, and no invented time for an event that came without one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from flask.testing import FlaskClient

from exporters.store import TelemetryStore
from exporters.store.queries import LogQueries
from exporters.store.schema import migrate
from tests.span_requests import EVENT_TIME, HAND_TRACE, hand_built_request

PROTOBUF = {"Content-Type": "application/x-protobuf"}
Spans = dict[str, dict[str, Any]]  # the API's spans, by span id


@pytest.fixture
def stored(client: FlaskClient) -> Spans:
    """The hand-built request, received over OTLP/HTTP and read back through the trace route."""
    response = client.post("/v1/traces", data=hand_built_request().SerializeToString(), headers=PROTOBUF)
    assert response.status_code == 200, response.data
    answer = client.get(f"/api/logs/correlation/{HAND_TRACE.hex()}")
    assert answer.status_code == 200
    return {span["span_id"]: span for span in answer.json["spans"]}


def test_an_event_sent_without_a_time_reads_back_without_one(stored: Spans) -> None:
    events = stored["00000000000000a1"]["events"]
    assert [(event["name"], event["timestamp"]) for event in events] == [
        ("no time known", None),  # not the time it was received
        ("timed", "2026-09-21T14:13:20.500000000Z"),
    ]


def test_a_received_span_reads_back_with_every_field_it_was_sent_with(stored: Spans) -> None:
    full, bare = stored["00000000000000a1"], stored["00000000000000a2"]
    assert (full["trace_state"], full["flags"]) == ("vendor=abc,other=1", 0x101)
    dropped = ("dropped_attributes_count", "dropped_events_count", "dropped_links_count")
    assert [full[key] for key in dropped] == [4, 5, 6]
    assert (full["resource_dropped_attributes_count"], full["scope_dropped_attributes_count"]) == (7, 8)
    assert full["events"] == [
        {"name": "no time known", "timestamp": None, "attributes": {"n": {"intValue": "1"}},
         "dropped_attributes_count": 1},
        {"name": "timed", "timestamp": "2026-09-21T14:13:20.500000000Z", "attributes": {},
         "dropped_attributes_count": 0},
    ]  # fmt: skip
    assert full["links"] == [
        {
            "trace_id": "11111111111111111111111111111111",
            "span_id": "2222222222222222",
            "trace_state": "link=state",
            "flags": 0x301,
            "attributes": {"link.kind": "follows"},
            "dropped_attributes_count": 2,
        }
    ]
    # What was there before is unchanged.
    assert (full["name"], full["kind"], full["status"]) == (
        "hand-built server span",
        "SERVER",
        {"code": "ERROR", "message": "boom"},
    )
    assert full["attributes"] == {
        "http.route": "/orders",
        "rows": {"intValue": "3"},
        "ratio": {"doubleValue": 0.5},
        "ok": {"boolValue": True},
    }
    assert list(full["attributes"]) == ["http.route", "rows", "ratio", "ok"]  # in the order sent
    # A span with no flags at all (as the specification's example request) says so, and nothing else.
    assert (bare["flags"], bare["trace_state"], bare["kind"]) == (0, None, "INTERNAL")
    assert [bare[key] for key in dropped] == [0, 0, 0] and (bare["events"], bare["links"]) == ([], [])


def test_spans_stored_before_schema_7_read_back_with_their_new_fields_unknown(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        assert migrate(con, target=5) == 5
        con.execute(
            """INSERT INTO spans (trace_id, span_id, name, start_time, trace_state, events, links)
               VALUES (?, 'a1', 'old span', make_timestamp_ns(?), 'k=v', ?, ?)""",
            [
                HAND_TRACE.hex(),
                EVENT_TIME,
                '[{"name":"e","timestamp":1790000000500000000,"attributes":{}}]',
                '[{"trace_id":"11","span_id":"22","attributes":{}}]',
            ],
        )
    store = TelemetryStore(path)
    try:
        (span,) = LogQueries(store).correlation(HAND_TRACE.hex())[1]
    finally:
        store.close()
    assert (span["trace_state"], span["flags"], span["dropped_attributes_count"]) == ("k=v", None, None)
    assert span["events"] == [
        {"name": "e", "timestamp": "2026-09-21T14:13:20.500000000Z", "attributes": {},
         "dropped_attributes_count": None}
    ]  # fmt: skip
    assert span["links"] == [
        {"trace_id": "11", "span_id": "22", "trace_state": None, "flags": None, "attributes": {},
         "dropped_attributes_count": None}
    ]  # fmt: skip
