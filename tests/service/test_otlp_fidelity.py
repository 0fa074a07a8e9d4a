"""What was sent is what is stored and returned: OTLP log records through a running ``pipetrace serve``.

Expected values are read from the request's own protobuf (protobuf's JSON mapping is OTLP/JSON's
AnyValue encoding), never computed by Pipetrace's code.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from exporters.otlp_codec import to_otlp_json
from tests.conftest import LiveServer, start_server

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
NOW = 1_780_000_000_000_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(Path(tmp_path_factory.mktemp("fidelity")))
    yield live
    live.stop()


def _kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def _request(records: list[LogRecord], schema_url: str = "") -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.append(_kv("service.name", AnyValue(string_value="fidelity")))
    resource_logs.schema_url = schema_url
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "fidelity.scope"
    scope_logs.log_records.extend(records)
    return request


def _trace(n: int) -> bytes:
    return n.to_bytes(16, "big")


def _logs(server: LiveServer, trace: int) -> list[dict[str, Any]]:
    answer = server.get(f"/api/logs/correlation/{trace:032x}")
    assert answer.status_code == 200, answer.text
    return list(answer.json()["logs"])


def _post(server: LiveServer, request: ExportLogsServiceRequest, as_json: bool = False) -> Any:
    if as_json:
        return server.post("/v1/logs", data=to_otlp_json(request), headers=JSON)
    return server.post("/v1/logs", data=request.SerializeToString(), headers=PROTOBUF)


def _expected(value: AnyValue) -> Any:
    """The API's form of a value: a string bare, anything else as protobuf's JSON mapping has it."""
    return (
        value.string_value
        if value.WhichOneof("value") == "string_value"
        else json_format.MessageToDict(value)
    )


def test_identical_records_in_one_request_are_all_stored(server: LiveServer) -> None:
    # As the JS SDK sends a line logged five times in one millisecond: both times set, all equal.
    line = LogRecord(time_unix_nano=NOW, observed_time_unix_nano=NOW, severity_number=9,
                     body=AnyValue(string_value="same line"), trace_id=_trace(0x1D1),
                     span_id=b"\x01" * 8)  # fmt: skip
    answer = _post(server, _request([line] * 5))
    assert answer.status_code == 200
    assert ExportLogsServiceResponse.FromString(answer.content).partial_success.rejected_log_records == 0
    logs = _logs(server, 0x1D1)
    assert [log["body"] for log in logs] == ["same line"] * 5
    assert len({log["id"] for log in logs}) == 5


@pytest.mark.parametrize("with_observed", [True, False])
@pytest.mark.parametrize("as_json", [False, True])
def test_a_request_sent_three_times_is_stored_once(
    server: LiveServer, with_observed: bool, as_json: bool
) -> None:
    trace = 0x2E7 + 2 * with_observed + as_json
    records = [
        LogRecord(time_unix_nano=NOW + i, observed_time_unix_nano=NOW + 10 + i if with_observed else 0,
                  body=AnyValue(string_value=f"retried {i}"), trace_id=_trace(trace))
        for i in range(3)
    ]  # fmt: skip
    for _ in range(3):
        assert _post(server, _request(records), as_json=as_json).status_code == 200
    assert [log["body"] for log in _logs(server, trace)] == ["retried 0", "retried 1", "retried 2"]


def test_absent_times_stay_absent(server: LiveServer) -> None:
    records = [
        LogRecord(observed_time_unix_nano=NOW + 5, body=AnyValue(string_value="observed only"),
                  trace_id=_trace(0x7E)),
        LogRecord(body=AnyValue(string_value="no time at all"), trace_id=_trace(0x7E)),
        LogRecord(time_unix_nano=NOW, body=AnyValue(string_value="own time"), trace_id=_trace(0x7E)),
    ]  # fmt: skip
    assert _post(server, _request(records)).status_code == 200
    logs = {log["body"]: log for log in _logs(server, 0x7E)}
    assert logs["observed only"]["timestamp"] is None
    assert logs["observed only"]["observed_timestamp"] == logs["observed only"]["sort_timestamp"]
    assert (
        logs["no time at all"]["timestamp"] is None and logs["no time at all"]["observed_timestamp"] is None
    )
    assert logs["no time at all"]["sort_timestamp"] is not None  # placed by when it was received
    assert logs["own time"]["timestamp"] == logs["own time"]["sort_timestamp"]
    assert logs["own time"]["observed_timestamp"] is None


def _values() -> dict[str, AnyValue]:
    nested = KeyValueList(
        values=[_kv("zeta", AnyValue(int_value=1)), _kv("alpha", AnyValue(string_value="a"))]
    )
    return {
        "string": AnyValue(string_value='{"looks": "like a map"}'),
        "int": AnyValue(int_value=-(2**63)),
        "double": AnyValue(double_value=2.0),
        "nan": AnyValue(double_value=math.nan),
        "inf": AnyValue(double_value=math.inf),
        "-inf": AnyValue(double_value=-math.inf),
        "bool": AnyValue(bool_value=False),
        "bytes": AnyValue(bytes_value=b"\x00\xffbin"),
        "bytes-like-text": AnyValue(string_value="AP9iaW4="),
        "array": AnyValue(
            array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue(string_value="x"), AnyValue()])
        ),
        "map": AnyValue(kvlist_value=nested),
        "empty": AnyValue(),
    }  # fmt: skip


@pytest.mark.parametrize("as_json", [False, True])
def test_bodies_and_attributes_keep_their_types(server: LiveServer, as_json: bool) -> None:
    trace = 0x7E9 + as_json
    values = _values()
    records = [
        LogRecord(time_unix_nano=NOW, body=value, trace_id=_trace(trace), event_name=name,
                  attributes=[_kv(key, other) for key, other in values.items()])
        for name, value in values.items()
    ]  # fmt: skip
    assert _post(server, _request(records), as_json=as_json).status_code == 200
    logs = {log["event_name"]: log for log in _logs(server, trace)}
    assert set(logs) == set(values)
    for name, value in values.items():
        expected_body = None if name == "empty" else _expected(value)
        assert logs[name]["body"] == expected_body, name
        assert logs[name]["attributes"] == {key: _expected(other) for key, other in values.items()}, name
        assert list(logs[name]["attributes"]) == list(values)  # in the order sent
    # A map body and a string body holding the same JSON stay apart; so do bytes and their base64.
    assert logs["map"]["body"]["kvlistValue"]["values"][0]["key"] == "zeta"
    assert (
        logs["bytes"]["body"] == {"bytesValue": "AP9iaW4="} and logs["bytes-like-text"]["body"] == "AP9iaW4="
    )


def test_every_field_is_stored_and_returned(server: LiveServer) -> None:
    request = _request(
        [
            LogRecord(time_unix_nano=NOW, observed_time_unix_nano=NOW + 1, severity_number=30,
                      severity_text="LOUD", body=AnyValue(string_value="all fields"), trace_id=_trace(0xF1E),
                      span_id=b"\x02" * 8,
                      flags=0x101, dropped_attributes_count=4, event_name="thing.happened",
                      attributes=[_kv("k", AnyValue(string_value="v"))])
        ],
        schema_url="https://opentelemetry.io/schemas/1.24.0",
    )  # fmt: skip
    request.resource_logs[0].resource.dropped_attributes_count = 2
    scope_logs = request.resource_logs[0].scope_logs[0]
    scope_logs.schema_url = "https://opentelemetry.io/schemas/1.21.0"
    scope_logs.scope.version = "9.9"
    scope_logs.scope.dropped_attributes_count = 1
    scope_logs.scope.attributes.append(_kv("scope.flag", AnyValue(bool_value=True)))
    assert _post(server, request).status_code == 200
    (log,) = _logs(server, 0xF1E)
    assert (log["severity_number"], log["severity_text"]) == (30, "LOUD")  # outside 1..24: kept
    assert log["flags"] == 0x101 and log["span_id"] == "02" * 8
    assert log["dropped_attributes_count"] == 4 and log["event_name"] == "thing.happened"
    assert log["resource_schema_url"] == "https://opentelemetry.io/schemas/1.24.0"
    assert log["resource_dropped_attributes_count"] == 2
    assert log["scope"] == {
        "name": "fidelity.scope",
        "version": "9.9",
        "schema_url": "https://opentelemetry.io/schemas/1.21.0",
        "attributes": {"scope.flag": {"boolValue": True}},
        "dropped_attributes_count": 1,
    }


def test_nothing_is_cut_and_a_count_limit_is_counted(server: LiveServer) -> None:
    long_body = "x" * 100_000
    big_array = AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=i) for i in range(500)]))
    many = [_kv(f"a{i}", AnyValue(int_value=i)) for i in range(130)]  # the limit is 128 attributes
    records = [
        LogRecord(time_unix_nano=NOW, body=AnyValue(string_value=long_body), trace_id=_trace(0xC07),
                  attributes=[_kv("list", big_array), _kv("long", AnyValue(string_value=long_body))]),
        LogRecord(time_unix_nano=NOW + 1, body=AnyValue(string_value="many"), trace_id=_trace(0xC07),
                  attributes=many, dropped_attributes_count=3),
    ]  # fmt: skip
    assert _post(server, _request(records)).status_code == 200
    whole, counted = _logs(server, 0xC07)
    assert whole["body"] == long_body and whole["attributes"]["long"] == long_body
    assert len(whole["attributes"]["list"]["arrayValue"]["values"]) == 500
    assert len(counted["attributes"]) == 128
    assert counted["dropped_attributes_count"] == 3 + 2  # the sender's and ours


def test_unknown_json_fields_are_ignored_whatever_they_hold(server: LiveServer) -> None:
    record = LogRecord(
        time_unix_nano=NOW, body=AnyValue(string_value="beside an unknown field"), trace_id=_trace(0x0F0)
    )
    document = orjson.loads(to_otlp_json(_request([record])))
    document["resourceLogs"][0]["futureField"] = {"spanId": "not hex at all", "nested": [{"traceId": "zz"}]}
    document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["someNewField"] = {"spanId": "??"}
    answer = server.post("/v1/logs", data=orjson.dumps(document), headers=JSON)
    assert answer.status_code == 200, answer.text
    assert [log["body"] for log in _logs(server, 0x0F0)] == ["beside an unknown field"]


def test_a_record_with_a_non_hex_id_is_refused_alone(server: LiveServer) -> None:
    good = LogRecord(time_unix_nano=NOW, body=AnyValue(string_value="good neighbour"), trace_id=_trace(0xB0B))
    bad = LogRecord(time_unix_nano=NOW, body=AnyValue(string_value="bad id"), trace_id=_trace(0xB0B))
    document = orjson.loads(to_otlp_json(_request([good, bad, good])))
    document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][1]["traceId"] = (
        "not-hex-not-hex-not-hex-not-hex!"
    )
    answer = server.post("/v1/logs", data=orjson.dumps(document), headers=JSON)
    assert answer.status_code == 200, answer.text
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1" and "trace_id is not hex" in partial["errorMessage"]
    assert [log["body"] for log in _logs(server, 0xB0B)] == ["good neighbour"] * 2


@pytest.mark.parametrize("needle", ["ΟΔΟΣ", "οδοσ", "ΣΑΣ", "İstanbul", "istanbul"])
def test_search_folds_case_as_the_stored_text_is_folded(server: LiveServer, needle: str) -> None:
    records = [
        LogRecord(time_unix_nano=NOW, body=AnyValue(string_value=text), trace_id=_trace(0x5EA))
        for text in ("ΟΔΟΣ ΣΑΣ", "İstanbul ferry")
    ]
    assert _post(server, _request(records)).status_code == 200
    found = server.get("/api/logs/search", params={"q": needle, "limit": 10})
    assert found.status_code == 200, found.text
    bodies = {log["body"] for log in found.json()["logs"]}
    assert bodies & {"ΟΔΟΣ ΣΑΣ", "İstanbul ferry"}, (needle, bodies)
