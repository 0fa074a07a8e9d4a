"""``GET /api/traces`` finds the traces the official Python SDK sent, by service, root name, duration,
status, pipeline and time, and pages through them newest first.

The expected answers are computed from the spans the SDK handed to its exporter (kept beside the OTLP
exporter by an in-memory one), not from Pipetrace's code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

from tests.conftest import LiveServer, start_server
from tests.helpers import wait_until

BASE_NS = 1_790_000_000 * 10**9  # 2026-09-21T14:13:20Z
MS = 1_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("traces") / "data")
    yield live
    live.stop()


class Services:
    """One SDK tracer provider per service, each exporting over OTLP/HTTP and keeping what it sent."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent = InMemorySpanExporter()
        self.providers: dict[str, TracerProvider] = {}

    def tracer(self, service: str) -> trace.Tracer:
        if service not in self.providers:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{self.url}/v1/traces")))
            provider.add_span_processor(SimpleSpanProcessor(self.sent))
            self.providers[service] = provider
        return self.providers[service].get_tracer("tests.trace_search")

    def shutdown(self) -> None:
        for provider in self.providers.values():
            provider.shutdown()


def _span(
    tracer: trace.Tracer,
    name: str,
    start_ms: int,
    end_ms: int,
    parent: Any = None,
    error: bool = False,
    attributes: dict[str, str] | None = None,
) -> Any:
    context = trace.set_span_in_context(parent) if parent is not None else None
    span = tracer.start_span(name, context=context, start_time=BASE_NS + start_ms * MS, attributes=attributes)
    if error:
        span.set_status(Status(StatusCode.ERROR, "card declined"))
    span.end(end_time=BASE_NS + end_ms * MS)
    return span


@pytest.fixture(scope="module")
def sent(server: LiveServer) -> list[ReadableSpan]:
    services = Services(server.url)
    orders, billing, gateway = (services.tracer(name) for name in ("orders", "billing", "gateway"))
    # 1: one service, a root and a child, 250 ms.
    root = orders.start_span("GET /orders", start_time=BASE_NS)
    _span(orders, "db.query", 10, 200, parent=root)
    root.end(end_time=BASE_NS + 250 * MS)
    # 2: a failing child, 40 ms, a second later.
    root = billing.start_span("charge", start_time=BASE_NS + 1000 * MS)
    _span(billing, "card.authorize", 1005, 1030, parent=root, error=True)
    root.end(end_time=BASE_NS + 1040 * MS)
    # 3: across two services, with a pipeline's span inside, 900 ms; the child outlives its root.
    root = gateway.start_span("GET /checkout", start_time=BASE_NS + 2000 * MS)
    _span(orders, "load orders", 2100, 2900, parent=root, attributes={"pipeline.id": "nightly_orders"})
    root.end(end_time=BASE_NS + 2500 * MS)
    # 4: the root was never sent here: a child of a remote parent.
    remote = NonRecordingSpan(
        SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    )
    _span(orders, "consume message", 3000, 3005, parent=remote)
    services.shutdown()
    spans = list(services.sent.get_finished_spans())
    trace_ids = {span.context.trace_id for span in spans}
    assert wait_until(lambda: _count(server, trace_ids) == len(trace_ids))
    return spans


def _count(server: LiveServer, trace_ids: set[int]) -> int:
    found = server.get("/api/traces", params={"limit": 1000}).json()["traces"]
    return len({t["trace_id"] for t in found} & {format(i, "032x") for i in trace_ids})


def _expected(spans: list[ReadableSpan]) -> list[dict[str, Any]]:
    """What the API should say of each trace the SDK sent, newest first."""
    by_trace: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        by_trace[span.context.trace_id].append(span)
    out = []
    for trace_id, members in by_trace.items():
        roots = [span for span in members if span.parent is None]
        root = roots[0] if roots else min(members, key=lambda span: span.start_time or 0)
        attributes = [span.attributes or {} for span in members]
        start = min(span.start_time or 0 for span in members)
        end = max(span.end_time or 0 for span in members)
        out.append(
            {
                "trace_id": format(trace_id, "032x"),
                "root_span_id": format(root.context.span_id, "016x"),
                "root_name": root.name,
                "root_service_name": root.resource.attributes["service.name"],
                "root_missing": not roots,
                "duration_ms": (end - start) / MS,
                "span_count": len(members),
                "error": any(span.status.status_code is StatusCode.ERROR for span in members),
                "services": sorted({str(span.resource.attributes["service.name"]) for span in members}),
                "pipeline_ids": sorted({str(a["pipeline.id"]) for a in attributes if "pipeline.id" in a}),
                "start_ns": start,
            }
        )
    return sorted(out, key=lambda t: (t["start_ns"], t["trace_id"]), reverse=True)


def _find(server: LiveServer, **params: Any) -> list[dict[str, Any]]:
    response = server.get("/api/traces", params=params)
    assert response.status_code == 200, response.text
    return response.json()["traces"]


def _summary(found: dict[str, Any]) -> dict[str, Any]:
    keys = ("trace_id", "root_span_id", "root_name", "root_service_name", "root_missing", "duration_ms",
            "span_count", "error", "services", "pipeline_ids")  # fmt: skip
    return {key: found[key] for key in keys}


def test_every_trace_sent_is_listed_newest_first_with_its_root_duration_and_counts(
    server: LiveServer, sent: list[ReadableSpan]
) -> None:
    expected = _expected(sent)
    found = _find(server)
    assert [_summary(t) for t in found] == [
        {key: value for key, value in t.items() if key != "start_ns"} for t in expected
    ]
    assert [t["root_missing"] for t in expected] == [True, False, False, False]  # the cases are all here
    assert found[0]["error_count"] == 0 and found[2]["error_count"] == 1


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"service_name": "orders"}, ["consume message", "GET /checkout", "GET /orders"]),
        ({"service_name": "billing"}, ["charge"]),
        ({"min_duration_ms": "300"}, ["GET /checkout"]),
        ({"min_duration_ms": "40", "max_duration_ms": "250"}, ["charge", "GET /orders"]),
        ({"max_duration_ms": "5"}, ["consume message"]),
        ({"status": "error"}, ["charge"]),
        ({"status": "ok", "service_name": "orders"}, ["consume message", "GET /checkout", "GET /orders"]),
        ({"name": "GET /orders"}, ["GET /orders"]),
        ({"name": "db.query"}, []),  # a child's name is not a trace's name
        ({"pipeline_id": "nightly_orders"}, ["GET /checkout"]),
        ({"since": "2026-09-21T14:13:21Z"}, ["consume message", "GET /checkout", "charge"]),
        ({"since": "2026-09-21T14:13:21Z", "until": "2026-09-21T14:13:22.5Z"}, ["GET /checkout", "charge"]),
        ({"service_name": "nobody"}, []),
    ],
)
def test_filters_select_the_traces_that_match(
    server: LiveServer, sent: list[ReadableSpan], params: dict[str, str], names: list[str]
) -> None:
    assert [t["root_name"] for t in _find(server, **params)] == names


def test_pages_of_one_walk_through_the_same_traces_in_the_same_order(
    server: LiveServer, sent: list[ReadableSpan]
) -> None:
    everything = [t["trace_id"] for t in _find(server)]
    walked, cursor = [], None
    for _ in range(10):
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = server.get("/api/traces", params=params).json()
        walked += [t["trace_id"] for t in page["traces"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == everything and len(walked) == 4


def test_a_listed_trace_opens_with_its_spans(server: LiveServer, sent: list[ReadableSpan]) -> None:
    checkout = _find(server, name="GET /checkout")[0]
    answer = server.get(f"/api/logs/correlation/{checkout['trace_id']}").json()
    assert sorted(span["name"] for span in answer["spans"]) == ["GET /checkout", "load orders"]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"status": "failed"}, "status"),
        ({"min_duration_ms": "abc"}, "min_duration_ms"),
        ({"min_duration_ms": "-1"}, "min_duration_ms"),
        ({"min_duration_ms": "nan"}, "min_duration_ms"),
        ({"max_duration_ms": "²"}, "max_duration_ms"),
        ({"min_duration_ms": "10", "max_duration_ms": "5"}, "max_duration_ms"),
        ({"cursor": "WzEsMl0"}, "cursor"),
        ({"since": "2026-09-22T00:00:00Z", "until": "2026-09-21T00:00:00Z"}, "until"),
        ({"service": "orders"}, "service"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_filters_are_refused_naming_the_parameter(
    server: LiveServer, params: dict[str, str], parameter: str
) -> None:
    response = server.get("/api/traces", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["parameter"] == parameter


def test_the_service_names_are_those_of_the_stored_spans_and_logs_once_each(
    server: LiveServer, sent: list[ReadableSpan]
) -> None:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    from tests.helpers import make_record

    only_logs = Resource.create({"service.name": "log-only worker"})
    records = [make_record("from a worker", resource=only_logs), make_record("and again", resource=only_logs)]
    assert OTLPLogExporter(endpoint=f"{server.url}/v1/logs").export(records).name == "SUCCESS"
    span_services = {str(span.resource.attributes["service.name"]) for span in sent}
    sent_names = span_services | {"log-only worker"}
    assert wait_until(lambda: sent_names <= set(server.get("/api/services").json()["services"]))
    names = server.get("/api/services").json()["services"]
    assert names == sorted(set(names))
    # The others are the service's own (its request log lines): each has records of its own.
    for other in set(names) - sent_names:
        assert server.get("/api/logs", params={"service_name": other, "limit": 1}).json()["logs"]
    refused = server.get("/api/services", params={"service": "orders"})
    assert refused.status_code == 400 and refused.json()["error"]["parameter"] == "service"
