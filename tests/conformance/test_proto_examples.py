"""opentelemetry-proto's own examples, posted as OTLP/JSON, come back as the examples say.

The two payloads are data transcribed from opentelemetry-proto's ``examples/logs.json`` and
``examples/trace.json`` (https://github.com/open-telemetry/opentelemetry-proto, Apache-2.0), kept as
written there: upper-case hex ids and an ``intValue`` given as a JSON number.
"""

from __future__ import annotations

from typing import Any

import orjson
import requests
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conformance.capture import CapturingProxy
from tests.conformance.expect import assert_same, decode, expected_log, expected_span, log_records, spans
from tests.conftest import LiveServer

TRACE_ID = "5B8EFFF798038103D269B633813FC60C"

_RESOURCE = {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]}
_SCOPE = {
    "name": "my.library",
    "version": "1.0.0",
    "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}],
}

EXAMPLE_LOGS: dict[str, Any] = {
    "resourceLogs": [{
        "resource": _RESOURCE,
        "scopeLogs": [{
            "scope": _SCOPE,
            "logRecords": [{
                "timeUnixNano": 1544712660300000000,
                "observedTimeUnixNano": 1544712660300000000,
                "severityText": "Information",
                "traceId": TRACE_ID,
                "spanId": "EEE19B7EC3C1B174",
                "body": {"stringValue": "Example log record"},
                "attributes": [
                    {"key": "string.attribute", "value": {"stringValue": "some string"}},
                    {"key": "boolean.attribute", "value": {"boolValue": True}},
                    {"key": "int.attribute", "value": {"intValue": 10}},
                    {"key": "double.attribute", "value": {"doubleValue": 637.704}},
                    {"key": "array.attribute", "value": {"arrayValue": {"values": [
                        {"stringValue": "many"}, {"stringValue": "values"}]}}},
                    {"key": "map.attribute", "value": {"kvlistValue": {"values": [
                        {"key": "some.map.key", "value": {"stringValue": "some value"}}]}}},
                ],
            }],
        }],
    }]
}  # fmt: skip

EXAMPLE_TRACE: dict[str, Any] = {
    "resourceSpans": [{
        "resource": _RESOURCE,
        "scopeSpans": [{
            "scope": _SCOPE,
            "spans": [{
                "traceId": TRACE_ID,
                "spanId": "EEE19B7EC3C1B174",
                "parentSpanId": "EEE19B7EC3C1B173",
                "name": "I'm a server span",
                "startTimeUnixNano": 1544712660000000000,
                "endTimeUnixNano": 1544712661000000000,
                "kind": 2,
                "attributes": [{"key": "my.span.attr", "value": {"stringValue": "some value"}}],
            }],
        }],
    }]
}  # fmt: skip

JSON = {"Content-Type": "application/json"}


def _post(proxy: CapturingProxy, path: str, document: dict[str, Any]) -> None:
    answer = requests.post(proxy.url + path, data=orjson.dumps(document), headers=JSON, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {}, answer.text  # no partial success: everything was accepted


def test_the_examples_come_back_as_written(proxy: CapturingProxy, server: LiveServer) -> None:
    _post(proxy, "/v1/logs", EXAMPLE_LOGS)
    _post(proxy, "/v1/traces", EXAMPLE_TRACE)
    sent_logs = [
        expected_log(record)
        for record in log_records([decode(c, ExportLogsServiceRequest) for c in proxy.take("/v1/logs")])
    ]
    sent_spans = [
        expected_span(span)
        for span in spans([decode(c, ExportTraceServiceRequest) for c in proxy.take("/v1/traces")])
    ]
    assert len(sent_logs) == 1 and len(sent_spans) == 1
    # The decoder read the example, not a default: a typed int, the ids in lower-case hex.
    assert sent_logs[0]["attributes"]["int.attribute"] == {"intValue": "10"}
    assert sent_spans[0]["parent_span_id"] == "eee19b7ec3c1b173"
    answer = server.get(f"/api/logs/correlation/{TRACE_ID.lower()}")
    assert answer.status_code == 200, answer.text
    assert_same(sent_logs, answer.json()["logs"], "log")
    assert_same(sent_spans, answer.json()["spans"], "span")
