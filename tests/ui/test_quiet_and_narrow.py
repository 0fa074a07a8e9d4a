"""Issue 18, items 5 and 7, in a real browser against a running ``pipetrace serve``: the UI's own
traffic (static files, the icon, its reads and the live tail) leaves no request log line and no span in
the store, the live tail is streamed, and at 800 px every column of the log table stays in view.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk.resources import Resource
from playwright.sync_api import Page, Response, expect

from tests.conftest import LiveServer, start_server
from tests.helpers import make_record, wait_until

MINUTE_S = 60
RUN_ID = "9f1c2e4b7a3d4e5f8a9b0c1d2e3f4a5b"  # as long as the runner's own ids
QUIET = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}
PROBE_TRACE = "5e1ec7ed5e1ec7ed5e1ec7ed5e1ec7ed"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("quiet") / "data")
    yield live
    live.stop()


def _send(server: LiveServer, body: str, **kwargs: object) -> None:
    exporter = OTLPLogExporter(endpoint=f"{server.url}/v1/logs")
    assert exporter.export([make_record(body, **kwargs)]).name == "SUCCESS"  # type: ignore[arg-type]


def test_a_minute_of_the_ui_with_live_tail_leaves_no_line_or_span_of_its_own(
    server: LiveServer, page: Page
) -> None:
    answers: list[Response] = []
    page.on("response", lambda answer: answers.append(answer))
    _send(server, "before the page opened")
    page.goto(f"{server.url}/#/logs?live=1")
    expect(page.locator("tr.log", has_text="before the page opened")).to_have_count(1)
    started = time.monotonic()
    round_ = 0
    while time.monotonic() - started < MINUTE_S:  # a bounded minute: the tail open, the views visited
        round_ += 1
        _send(server, f"streamed record {round_}")
        # Streamed into the open page: no reload, no navigation.
        expect(page.locator("tr.log", has_text=f"streamed record {round_}")).to_have_count(1)
        for view in ("traces", "stats", "pipelines"):
            page.click(f"nav a[data-view={view}]")
            expect(page.locator("h1")).to_have_text(view.capitalize())
        page.goto(f"{server.url}/#/logs?live=1")
        expect(page.locator("tr.log", has_text=f"streamed record {round_}")).to_have_count(1)
        page.wait_for_timeout(3_000)
    assert round_ >= 3
    # Headless Chromium asks for no icon by itself: the page asks, as a browser with a window does.
    assert page.evaluate("fetch('/favicon.ico').then((answer) => answer.status)") == 200
    tails = [answer for answer in answers if "/api/logs/tail" in answer.url]
    assert tails and tails[0].headers["content-type"].startswith("text/event-stream")
    # A request that asks to be recorded: once its line is in the store, so is any line before it.
    probe = server.get("/api/logs/stats", headers={"traceparent": f"00-{PROBE_TRACE}-b7ad6b7169203331-01"})
    assert probe.status_code == 200
    probe_logs = lambda: server.get(f"/api/logs/correlation/{PROBE_TRACE}", headers=QUIET).json().get("logs")  # noqa: E731
    assert wait_until(probe_logs)
    (probe_line,) = probe_logs()
    own = server.get("/api/logs", params={"service_name": "pipetrace", "limit": 1000}, headers=QUIET).json()
    # The test's own polls for the probe are failures (404 until it is stored), which are always logged.
    requests_logged = [
        log["body"]
        for log in own["logs"]
        if "url.path" in log["attributes"] and PROBE_TRACE not in log["body"]
    ]
    assert requests_logged == [probe_line["body"]]  # the probe's line, and none of the page's

    def own_traces() -> list[str]:
        found = server.get("/api/traces", params={"service_name": "pipetrace", "limit": 1000}, headers=QUIET)
        return [trace["trace_id"] for trace in found.json()["traces"]]

    assert wait_until(lambda: PROBE_TRACE in own_traces())  # spans are exported on their own schedule
    assert own_traces() == [PROBE_TRACE]


def test_at_800_px_every_column_is_in_view_with_a_readable_message(server: LiveServer, page: Page) -> None:
    long_service = Resource.create({"service.name": "nightly-orders-ingest-worker"})
    attributes = {"pipeline.id": "a3f5c9e1b2d4f6a8", "pipeline.run_id": RUN_ID, "pipeline.stage": "normalize"}
    message = "Loaded 120 rows into table orders after two retries of the connection"
    _send(server, message, resource=long_service, trace_id=0x1234, span_id=0x5678, attributes=attributes)
    page.set_viewport_size({"width": 800, "height": 900})
    page.goto(f"{server.url}/#/logs?service_name=nightly-orders-ingest-worker")
    row = page.locator("tr.log")
    expect(row).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 800  # nothing runs off the page
    for cell in row.locator("td").all():
        box = cell.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 800, cell.inner_text()
    body = row.locator("td.body").bounding_box()
    assert body is not None and body["width"] >= 180  # about 25 characters a line, not 8
    expect(row.locator("a.trace-link")).to_be_in_viewport()
    expect(row.locator("td.time")).to_contain_text("UTC")
    expect(row.locator("td.run")).to_have_attribute("title", RUN_ID)
