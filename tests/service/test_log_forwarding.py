"""Received log records are forwarded as they were sent, over OTLP/HTTP and OTLP/gRPC.

A real ``pipetrace serve`` forwards to a receiving endpoint on a free loopback port; what that endpoint
got is compared with what was sent, both decoded from their bytes by protobuf alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from tests.conftest import LiveServer, start_server
from tests.otlp_sinks import grpc_sink, http_sink

REPOSITORY = Path(__file__).resolve().parents[2]
TRACE = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")


def _sent() -> ExportLogsServiceRequest:
    """Every field a log record, its scope and its resource can carry, with values of every type."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.schema_url = "https://opentelemetry.io/schemas/1.24.0"
    resource_logs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="fwd")))
    resource_logs.resource.attributes.append(KeyValue(key="host.count", value=AnyValue(int_value=2)))
    resource_logs.resource.dropped_attributes_count = 3
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.schema_url = "https://opentelemetry.io/schemas/1.21.0"
    scope_logs.scope.name = "forwarded.scope"
    scope_logs.scope.version = "1.2"
    scope_logs.scope.attributes.append(KeyValue(key="scope.flag", value=AnyValue(bool_value=True)))
    scope_logs.scope.dropped_attributes_count = 4
    nested = KeyValueList(values=[KeyValue(key="z", value=AnyValue(double_value=math.inf))])
    scope_logs.log_records.extend(
        [
            LogRecord(
                time_unix_nano=1_790_000_000_000_000_001, observed_time_unix_nano=1_790_000_000_000_000_002,
                severity_number=30, severity_text="LOUD", trace_id=TRACE, span_id=b"\x01" * 8, flags=0x101,
                body=AnyValue(kvlist_value=nested), event_name="thing.happened", dropped_attributes_count=5,
                attributes=[
                    KeyValue(key="bytes", value=AnyValue(bytes_value=b"\x00\x01")),
                    KeyValue(key="list", value=AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1)]))),  # noqa: E501
                ],
            ),
            LogRecord(body=AnyValue(string_value="no times at all"), trace_id=TRACE),
        ]
    )  # fmt: skip
    return request


@pytest.fixture
def http_endpoint() -> Iterator[tuple[str, list[bytes]]]:
    with http_sink() as sink:
        yield sink.url, sink.bodies["/v1/logs"]


@pytest.fixture
def grpc_endpoint() -> Iterator[tuple[str, list[bytes]]]:
    with grpc_sink() as sink:
        yield sink.url, sink.bodies["/v1/logs"]


def _forwarded_records(bodies: list[bytes]) -> list[tuple[Any, Any, LogRecord]]:
    found = []
    for body in list(bodies):
        request = ExportLogsServiceRequest.FromString(body)
        for resource_logs in request.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                found += [
                    (resource_logs, scope_logs, r) for r in scope_logs.log_records if r.trace_id == TRACE
                ]
    return found


def _forward_and_compare(tmp_path: Path, endpoint: str, bodies: list[bytes], exporter: str) -> None:
    config = tmp_path / "forwarding.yaml"
    config.write_text((REPOSITORY / "otel-config.yaml").read_text().replace("otlp_http:", f"{exporter}:"))
    env = {"OTEL_CONFIG_FILE": str(config), "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    service: LiveServer = start_server(tmp_path / "service", env=env)
    try:
        sent = _sent()
        body = sent.SerializeToString()
        answer = service.post("/v1/logs", data=body, headers={"Content-Type": "application/x-protobuf"})
        assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 30
        while len(_forwarded_records(bodies)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        service.stop()
    forwarded = _forwarded_records(bodies)
    assert len(forwarded) == 2, forwarded
    sent_resource, sent_scope = sent.resource_logs[0], sent.resource_logs[0].scope_logs[0]
    for (resource_logs, scope_logs, record), expected in zip(forwarded, sent_scope.log_records, strict=True):
        assert (
            record == expected
        )  # every field: times (0 stays 0), flags, severity, typed body and attributes
        assert resource_logs.resource == sent_resource.resource  # with its dropped count
        assert resource_logs.schema_url == sent_resource.schema_url
        assert scope_logs.scope == sent_scope.scope and scope_logs.schema_url == sent_scope.schema_url


def test_received_logs_are_forwarded_over_http_as_they_were_sent(
    tmp_path: Path, http_endpoint: tuple[str, list[bytes]]
) -> None:
    _forward_and_compare(tmp_path, *http_endpoint, "otlp_http")


def test_received_logs_are_forwarded_over_grpc_as_they_were_sent(
    tmp_path: Path, grpc_endpoint: tuple[str, list[bytes]]
) -> None:
    _forward_and_compare(tmp_path, *grpc_endpoint, "otlp_grpc")
