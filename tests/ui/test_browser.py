"""The log explorer in a real browser: Playwright driving Chromium (Debian's, or Playwright's own when
apt is not usable; see ``browser_setup``) against a running ``pipetrace serve`` with real telemetry
(official OTLP exporters) and real pipeline runs.

Each view's screenshot is saved to ``docs/screenshots/`` (the README shows them).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ALLOW_USER_CODE, LiveServer, start_server
from tests.helpers import RESOURCE, make_record, make_records
from tests.ui.screenshots import shot

TRACE = 0x7A11_0000_0000_0000_0000_0000_0000_0001
BILLING_TRACE = 0xB111_0000_0000_0000_0000_0000_0000_0002
BILLING = Resource.create({"service.name": "billing-api", "deployment.environment": "test"})
STACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/load.py", line 42, in load_table\n'
    "    cursor.copy_from(rows)\n"
    "ConnectionResetError: connection reset by peer"
)
NS = 1_000_000_000
USER_CODE = textwrap.dedent(
    """
    import logging
    import dlt

    @dlt.resource(name="orders", primary_key="id")
    def orders():
        logging.getLogger("orders").warning("slow page from the API, retrying")
        logging.getLogger("orders").error("one order came without a customer")
        yield [{"id": i, "amount": i * 10} for i in range(40)]

    def data_source():
        return orders
    """
)


def _span(
    name: str,
    span_id: int,
    parent: int | None,
    start: int,
    end: int,
    error: bool = False,
    trace_id: int = TRACE,
    resource: Resource = RESOURCE,
    **extra: Any,
) -> ReadableSpan:
    context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(1))
    return ReadableSpan(
        name=name,
        context=context,
        parent=SpanContext(trace_id, parent, is_remote=False) if parent else None,
        resource=resource,
        attributes=extra.pop("attributes", {"pipeline.id": "orders"}),
        kind=SpanKind.INTERNAL,
        status=Status(StatusCode.ERROR, "connection reset by peer") if error else Status(StatusCode.OK),
        start_time=start,
        end_time=end,
        **extra,
    )  # fmt: skip


def _seed(server: LiveServer) -> None:
    now = 1_795_000_000 * NS
    spans = [
        _span("pipeline orders", 0x1, None, now, now + 4 * NS),
        _span("extract", 0x2, 0x1, now + NS // 10, now + NS),
        _span("normalize", 0x3, 0x1, now + NS, now + 2 * NS),
        _span("load", 0x4, 0x1, now + 2 * NS, now + 4 * NS, error=True,
              attributes={"pipeline.id": "orders", "db.rows": 120, "retry": True, "ratio": 0.5},
              events=[Event("exception", {"exception.type": "ConnectionResetError",
                                          "exception.message": "connection reset by peer",
                                          "exception.stacktrace": STACK}, now + 3 * NS)],
              links=[Link(SpanContext(BILLING_TRACE, 0x11, is_remote=False), {"link.reason": "charged by"})]),
        # Another service: one slow trace of 7.5 s, and a quick one.
        _span("POST /charge", 0x11, None, now + 5 * NS, now + 12 * NS + NS // 2, trace_id=BILLING_TRACE,
              resource=BILLING, attributes={"http.route": "/charge"}),
        _span("GET /health", 0x21, None, now + 6 * NS, now + 6 * NS + NS // 100, trace_id=0xB111_0003,
              resource=BILLING, attributes={}),
    ]  # fmt: skip
    assert OTLPSpanExporter(endpoint=f"{server.url}/v1/traces").export(spans) is SpanExportResult.SUCCESS
    lines = [
        ("extract", 0x2, SeverityNumber.INFO, "Extracted 120 rows from resource orders"),
        ("extract", 0x2, SeverityNumber.DEBUG, "Fetched page 2 of orders"),
        ("normalize", 0x3, SeverityNumber.INFO, "Normalized 120 rows of table orders"),
        ("load", 0x4, SeverityNumber.WARN, "Retrying load after a connection reset"),
        ("load", 0x4, SeverityNumber.ERROR, "Failed to load table orders: connection reset by peer"),
    ]
    records = [
        make_record(body, timestamp=now + (i + 1) * NS // 2, trace_id=TRACE, span_id=span, severity=severity,
                    attributes={"pipeline.id": "orders", "pipeline.run_id": "run-1", "pipeline.stage": stage,
                                "dlt.resource": "orders"})
        for i, (stage, span, severity, body) in enumerate(lines)
    ]  # fmt: skip
    records += [
        make_record(f"customers page {i} fetched", timestamp=now + i * NS, severity=SeverityNumber.INFO,
                    attributes={"pipeline.id": "customers", "pipeline.stage": "extract"})
        for i in range(30)
    ]  # fmt: skip
    records += [
        make_record("charge failed", timestamp=now + 6 * NS, severity=SeverityNumber.ERROR, resource=BILLING,
                    trace_id=BILLING_TRACE, span_id=0x11,
                    attributes={"exception.type": "ConnectionResetError", "exception.stacktrace": STACK}),
        make_record("charge accepted", timestamp=now + 7 * NS, resource=BILLING),
    ]  # fmt: skip
    assert OTLPLogExporter(endpoint=f"{server.url}/v1/logs").export(records).name == "SUCCESS"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("ui") / "data", env=ALLOW_USER_CODE)
    _seed(live)
    yield live
    live.stop()


# The page fixture (tests/ui/conftest.py) opens pages this size.
VIEWPORT = {"width": 1280, "height": 860}


def test_filter_search_and_highlight(server: LiveServer, page: Page) -> None:
    page.goto(f"{server.url}/#/logs?pipeline_id=orders")
    rows = page.locator("tr.log")
    expect(rows).to_have_count(5)
    page.select_option("select[name=level]", "WARN")
    page.click("form.filters button[type=submit]")
    expect(rows).to_have_count(2)
    expect(page.locator("tr.log .badge")).to_have_text(["ERROR", "WARN"])
    page.fill("input[name=q]", "Connection Reset")
    page.press("input[name=q]", "Enter")
    expect(rows).to_have_count(2)
    marks = page.locator("tr.log mark")
    expect(marks).to_have_count(2)
    for text in marks.all_inner_texts():
        assert text.lower() == "connection reset"
    assert "q=Connection+Reset" in page.url and "level=WARN" in page.url  # the filters live in the URL
    shot(page, "logs")


def test_open_a_trace_from_a_log_line_and_back(server: LiveServer, page: Page) -> None:
    page.goto(f"{server.url}/#/logs?pipeline_id=orders&level=ERROR")
    page.locator("tr.log a.trace-link").first.click()
    expect(page).to_have_url(re.compile(rf"#/trace/{TRACE:032x}\?span=0000000000000004"))
    spans = page.locator("li.span")
    expect(spans).to_have_count(4)
    expect(page.locator("li.span .span-name")).to_have_text(
        ["pipeline orders", "extract", "normalize", "load"]
    )
    selected = page.locator("li.span.selected")
    expect(selected).to_have_attribute("data-span-id", "0000000000000004")
    expect(selected.locator(".span-logs li")).to_have_count(2)  # the span's own logs, inline
    expect(page.locator("li.span .bar.status-ERROR")).to_have_count(1)
    expect(page.locator("aside.span-detail h2")).to_have_text("load")  # the span named in the URL, open
    shot(page, "trace")
    # From a span's log back to the log view.
    selected.locator("a.log-link").first.click()
    expect(page).to_have_url(re.compile(r"#/logs\?q="))
    expect(page.locator("tr.log")).not_to_have_count(0)


def test_find_a_trace_by_service_and_duration_and_inspect_its_spans(server: LiveServer, page: Page) -> None:
    page.goto(f"{server.url}/#/traces")
    rows = page.locator("tr.trace")
    expect(rows).not_to_have_count(0)
    choices = page.locator("select[name=service_name] option").all_inner_texts()
    assert {"billing-api", "test-client"} <= set(choices)
    page.select_option("select[name=service_name]", "billing-api")
    page.fill("input[name=min_duration_ms]", "1000")
    page.click("form[aria-label='Find traces'] button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("POST /charge")
    expect(rows.first).to_contain_text("7500.0 ms")
    assert "service_name=billing-api" in page.url and "min_duration_ms=1000" in page.url
    shot(page, "traces")
    rows.first.locator("a.trace-name").click()
    expect(page).to_have_url(re.compile(rf"#/trace/{BILLING_TRACE:032x}$"))
    page.locator("li.span .span-row").first.click()
    panel = page.locator("aside.span-detail")
    expect(panel.locator(".span-service")).to_have_text("billing-api")
    expect(panel.locator("table[aria-label='resource attributes']")).to_contain_text("deployment.environment")
    # Straight to a trace by its id; the span named in the URL opens with its panel.
    page.goto(f"{server.url}/#/traces")
    page.fill("#trace-id", f"{TRACE:032X}")
    page.press("#trace-id", "Enter")
    expect(page.locator("li.span")).to_have_count(4)
    page.locator("li.span", has_text="load").locator(".span-row").click()
    expect(page).to_have_url(re.compile(r"\?span=0000000000000004$"))
    expect(panel.locator(".span-status")).to_have_text("ERROR connection reset by peer")
    attributes = panel.locator("table[aria-label='span attributes'] tr")
    expect(attributes.filter(has_text="db.rows")).to_contain_text("120int")
    expect(attributes.filter(has_text="retry")).to_contain_text("truebool")
    expect(attributes.filter(has_text="ratio")).to_contain_text("0.5double")
    expect(panel.locator("li.event")).to_have_count(1)
    stack = panel.locator("li.event pre.stacktrace")
    assert stack.inner_text().splitlines() == STACK.splitlines()  # several lines, not one escaped string
    panel.locator("li.link a").click()  # a link leads to the linked trace
    expect(page).to_have_url(re.compile(rf"#/trace/{BILLING_TRACE:032x}\?span=0000000000000011"))
    expect(panel.locator("h2")).to_have_text("POST /charge")


def test_logs_by_service_with_a_readable_stack_trace(server: LiveServer, page: Page) -> None:
    page.goto(f"{server.url}/#/logs")
    page.select_option("select[name=service_name]", "billing-api")
    page.click("form.filters button[type=submit]")
    rows = page.locator("tr.log")
    expect(rows).to_have_count(2)
    assert "service_name=billing-api" in page.url
    expect(page.locator("tr.log td.service")).to_have_text(["billing-api", "billing-api"])
    failed = rows.filter(has_text="charge failed")
    failed.click()
    stack = page.locator("tr.details pre.stacktrace")
    assert stack.inner_text().splitlines() == STACK.splitlines()


def test_keyboard_navigation_and_readable_contrast(server: LiveServer, page: Page) -> None:
    page.goto(f"{server.url}/#/logs?pipeline_id=customers")
    first = page.locator("tr.log").first
    expect(first).to_be_visible()
    first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("[...document.querySelectorAll('tr.log')].indexOf(document.activeElement)")
    assert focused == 2
    page.keyboard.press("Enter")
    expect(page.locator("tr.log").nth(2)).to_have_attribute("aria-expanded", "true")
    attribute = page.locator("tr.details table.attrs tr", has_text="pipeline.id").first
    expect(attribute).to_contain_text("customers")
    page.keyboard.press("Enter")
    expect(page.locator("tr.details")).to_have_count(0)
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.name") == "q"
    ratios = page.evaluate(
        """() => {
        const lum = (rgb) => {
          const [r, g, b] = rgb.match(/\\d+/g).slice(0, 3).map((v) => {
            const c = v / 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; });
          return 0.2126 * r + 0.7152 * g + 0.0722 * b;
        };
        const out = {};
        for (const level of ['DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL']) {
          const badge = document.createElement('span');
          badge.className = `badge level-${level}`;
          badge.textContent = level;
          document.body.append(badge);
          const style = getComputedStyle(badge);
          const [a, b] = [lum(style.color), lum(style.backgroundColor)].sort((x, y) => y - x);
          out[level] = (a + 0.05) / (b + 0.05);
          badge.remove();
        }
        const cell = getComputedStyle(document.querySelector('td.body'));
        const page = getComputedStyle(document.documentElement).backgroundColor;
        const [a, b] = [lum(cell.color), lum(page)].sort((x, y) => y - x);
        out.body = (a + 0.05) / (b + 0.05);
        return out;
      }"""
    )
    assert all(ratio >= 4.5 for ratio in ratios.values()), ratios  # WCAG AA for normal text


def test_start_a_run_from_a_template_and_follow_it_live(server: LiveServer, page: Page) -> None:
    page.goto(f"{server.url}/#/pipelines")
    page.fill("#pipeline-name", "browser orders")
    page.select_option("#template", "dlt_code")
    page.fill("textarea[name=code]", USER_CODE)
    page.click("form.new-pipeline button[type=submit]")
    expect(page).to_have_url(re.compile(r"#/run/[0-9a-f]+"))
    status = page.locator("#run-status")
    expect(status).to_have_text(re.compile("queued|running|succeeded"))
    expect(status).to_have_text("succeeded", timeout=120_000)
    expect(page.locator(".run-head")).to_contain_text("rows loaded: orders 40")
    expect(page.locator("tr.log", has_text="slow page from the API")).to_have_count(1, timeout=20_000)
    # Names, not ids: the run's pipeline, and the pipeline column of its logs.
    expect(page.locator(".run-head .pipeline-name")).to_have_text("browser orders")
    expect(page.locator("tr.log td.pipeline").first).to_have_text("browser orders")
    shot(page, "run")
    expect(page.locator("#status")).to_have_text("run succeeded")
    page.click("nav a[data-view=stats]")
    expect(page.locator("h1")).to_have_text("Stats")
    page.wait_for_timeout(2_500)  # past the run view's last refresh, which comes after the run ends
    expect(page.locator("#status")).to_have_text("")  # the run's status is not carried over
    page.go_back()
    page.locator(".run-head a", has_text="trace").click()
    expect(page.locator("li.span .span-name", has_text="extract")).to_have_count(1, timeout=20_000)
    page.goto(f"{server.url}/#/pipelines")
    row = page.locator("table.pipelines tr", has_text="browser orders")
    expect(row.locator(".badge")).to_have_text(["succeeded"])
    shot(page, "pipelines")
    # The pipeline filter is a pick-list of names.
    page.goto(f"{server.url}/#/logs")
    page.select_option("select[name=pipeline_id]", label="browser orders")
    page.click("form.filters button[type=submit]")
    expect(page.locator("tr.log", has_text="slow page from the API")).to_have_count(1)
    expect(page.locator("tr.log td.pipeline")).not_to_have_count(0)
    for text in page.locator("tr.log td.pipeline").all_inner_texts():
        assert text == "browser orders"


def test_stats_view(server: LiveServer, page: Page) -> None:
    page.goto(f"{server.url}/#/stats?since=all")
    expect(page.locator("#total")).not_to_have_text("0")
    expect(page.locator("svg.volume rect")).not_to_have_count(0)
    ticks = page.locator("svg.volume .y-tick").all_text_contents()  # a y-axis from 0, in counts
    assert len(ticks) >= 2 and ticks[0] == "0" and int(ticks[-1].replace(",", "")) > 0
    assert float(page.locator("#error-rate").inner_text().rstrip("%")) > 0
    expect(page.locator("ol.failing")).to_contain_text("orders")
    expect(page.locator("ol.failing li", has_text="browser orders")).to_have_count(1)  # a name, not its id
    expect(page.locator("table.ingest tbody tr")).to_have_count(2)  # logs and spans
    expect(page.locator("table.ingest")).to_contain_text("closed")  # breaker state
    shot(page, "stats")


def test_pipelines_show_their_schedule_next_run_and_how_runs_ended(server: LiveServer, page: Page) -> None:
    schedule = {"cron": "0 2 * * *", "timezone": "Europe/Berlin"}
    body = {"name": "nightly empty", "template": "simple", "params": {"bucket_url": "/no/such/folder"},
            "schedule": schedule}  # fmt: skip
    pipeline = server.post("/api/pipelines", json=body).json()
    run_id = server.post(f"/api/pipelines/{pipeline['id']}/runs", json={}).json()["run_id"]
    page.goto(f"{server.url}/#/run/{run_id}")
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=120_000)
    expect(page.locator("#run-warnings")).to_have_text("warning: no rows loaded")
    page.goto(f"{server.url}/#/pipelines")
    row = page.locator("table.pipelines tr", has_text="nightly empty")
    expect(row.locator("td.schedule")).to_contain_text("0 2 * * * Europe/Berlin")
    next_run = pipeline["next_run_at"].replace("T", " ").replace("Z", " UTC")
    expect(row.locator("td.schedule")).to_contain_text(f"next run {next_run}")
    expect(row.locator(".run-warning")).to_have_text(" no rows loaded")
    shot(page, "pipelines-schedules")
    page.goto(f"{server.url}/#/stats?since=all")
    expect(page.locator("#run-outcomes")).to_contain_text(
        re.compile(r"[1-9]\d* succeeded but loaded nothing")
    )
    # Defined from the form, with a schedule.
    page.goto(f"{server.url}/#/pipelines")
    page.fill("#pipeline-name", "weekly from the form")
    page.select_option("#template", "simple")
    page.fill("input[name=bucket_url]", "/no/such/folder")
    page.fill("#schedule-cron", "30 3 * * 1")
    page.fill("#schedule-timezone", "UTC")
    page.click("form.new-pipeline button[type=submit]")
    expect(page).to_have_url(re.compile(r"#/run/[0-9a-f]+"))
    defined = {p["name"]: p for p in server.get("/api/pipelines").json()["pipelines"]}
    assert defined["weekly from the form"]["schedule"] == {"cron": "30 3 * * 1", "timezone": "UTC"}


def test_a_cancelled_run_is_shown_as_cancelled_not_as_an_error(server: LiveServer, page: Page) -> None:
    code = textwrap.dedent(
        """
        import time
        import dlt

        @dlt.resource(name="slow")
        def slow():
            for i in range(600):
                yield {"i": i}
                time.sleep(0.1)

        def data_source():
            return slow
        """
    )
    pipeline = server.post("/api/pipelines", json={"name": "to cancel", "template": "dlt_code",
                                                   "params": {"code": code}}).json()  # fmt: skip
    run_id = server.post(f"/api/pipelines/{pipeline['id']}/runs", json={}).json()["run_id"]
    page.goto(f"{server.url}/#/run/{run_id}")
    expect(page.locator("#run-status")).to_have_text("running", timeout=60_000)
    assert server.post(f"/api/runs/{run_id}/cancel", json={}).status_code == 202
    expect(page.locator("#run-status")).to_have_text("cancelled", timeout=60_000)
    expect(page.locator(".run-head")).to_contain_text("The run was cancelled.")
    expect(page.locator(".run-head .form-error")).to_have_count(0)
    page.goto(f"{server.url}/#/pipelines")
    row = page.locator("table.pipelines tr", has_text="to cancel")
    expect(row.locator(".badge")).to_have_text(["cancelled"])
    expect(row.locator(".errors")).to_have_count(0)


def test_the_api_token_is_asked_once_per_session(tmp_path: Path, browser: Browser) -> None:
    guarded = start_server(tmp_path / "guarded", env={"PIPETRACE_API_TOKEN": "ui-token-31"})
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{guarded.url}/#/stats?since=all")
        dialog = page.locator("#token-dialog")
        expect(dialog).to_be_visible()
        page.fill("#token-input", "wrong")
        page.press("#token-input", "Enter")
        expect(dialog).to_be_visible()  # asked again
        page.fill("#token-input", "ui-token-31")
        page.press("#token-input", "Enter")
        expect(page.locator("#total")).to_be_visible()
        page.goto(f"{guarded.url}/#/logs")
        page.reload()
        expect(page.locator("table.logs")).to_be_visible()
        expect(dialog).to_be_hidden()  # kept for the session
    finally:
        context.close()
        guarded.stop()


def test_the_page_stays_responsive_with_100k_records(tmp_path: Path, page: Page) -> None:
    big = start_server(tmp_path / "big")
    try:
        exporter = OTLPLogExporter(endpoint=f"{big.url}/v1/logs", timeout=60)
        for chunk in range(25):
            records = make_records(4_000, start_ns=1_795_000_000 * NS + chunk * 4_000 * 10**6,
                                   attributes={"pipeline.id": "bulk"})  # fmt: skip
            assert exporter.export(records).name == "SUCCESS"
        assert big.get("/api/logs/stats?pipeline_id=bulk").json()["total"] == 100_000
        page.goto(f"{big.url}/#/logs?pipeline_id=bulk")
        rows = page.locator("tr.log")
        expect(rows).to_have_count(100)  # one page in the DOM, not 100,000 rows
        page.locator(".sentinel").scroll_into_view_if_needed()
        expect(rows).to_have_count(200)  # the next page, on the cursor, as the end comes into view
        page.keyboard.press("End")
        page.locator(".sentinel").scroll_into_view_if_needed()
        expect(rows).to_have_count(300)
        # Still answering input at once: a filter change replaces the table.
        page.select_option("select[name=level]", "ERROR")
        page.click("form.filters button[type=submit]")
        expect(page.locator("p.empty")).to_be_visible()
    finally:
        big.stop()


def test_no_request_of_the_ui_failed_on_the_server(server: LiveServer) -> None:
    """Whatever the views asked for while the tests above ran, the service answered without a 5xx."""
    assert not re.findall(r".* 5\d\d in .*", server.log_path.read_text())
