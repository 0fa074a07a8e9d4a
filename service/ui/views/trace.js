// One trace: its spans as a waterfall, each with its own logs inline; a click on a span opens its panel.

import { api } from "../api.js";
import { el, view } from "../dom.js";
import { bodyText, levelOf, ns, recordTime, shortTime } from "../format.js";
import { logRow, logTable } from "../logtable.js";
import { pipelineNames } from "../names.js";
import { spanDetail } from "../spandetail.js";

function spanDepths(spans) {
  const byId = new Map(spans.map((span) => [span.span_id, span]));
  const depth = (span, seen = 0) => (span.parent_span_id && byId.has(span.parent_span_id) && seen < 50 ? 1 + depth(byId.get(span.parent_span_id), seen + 1) : 0);
  return new Map(spans.map((span) => [span.span_id, depth(span)]));
}

export async function traceView(traceId, filters) {
  view.replaceChildren(el("h1", {}, "Trace ", el("code", {}, traceId)));
  let trace;
  try {
    trace = await api(`/api/logs/correlation/${encodeURIComponent(traceId)}`);
  } catch (error) {
    view.append(el("p", { class: "empty" }, error.message));
    return () => {};
  }
  const spans = [...trace.spans].sort((a, b) => ns(a.start) - ns(b.start));
  const times = [...spans.flatMap((s) => [ns(s.start), ns(s.end || s.start)]), ...trace.logs.map((l) => ns(recordTime(l)))];
  const t0 = Math.min(...times);
  const total = Math.max(Math.max(...times) - t0, 0.001);
  const depths = spanDepths(spans);
  const spanIds = new Set(spans.map((s) => s.span_id));
  const logsOf = new Map();
  for (const record of trace.logs) {
    const key = spanIds.has(record.span_id) ? record.span_id : "";
    if (!logsOf.has(key)) logsOf.set(key, []);
    logsOf.get(key).push(record);
  }
  const list = el("ol", { class: "waterfall", "aria-label": "Spans of the trace, by start time" });
  for (const span of spans) {
    const start = ns(span.start) - t0;
    const length = Math.max(ns(span.end || span.start) - ns(span.start), 0);
    const bar = el("span", { class: `bar status-${(span.status && span.status.code) || "UNSET"}` });
    bar.style.left = `${(100 * start) / total}%`;
    bar.style.width = `${Math.max((100 * length) / total, 0.3)}%`;
    const label = el("span", { class: "span-name" }, span.name);
    label.style.paddingLeft = `${depths.get(span.span_id) * 1.2}em`;
    const ownLogs = logsOf.get(span.span_id) || [];
    const item = el(
      "li",
      { id: `span-${span.span_id}`, class: "span", "data-span-id": span.span_id },
      el("div", { class: "span-row", tabindex: "0", role: "button", "aria-expanded": "false", title: "Show the span's details" }, label, el("span", { class: "track" }, bar), el("span", { class: "span-ms" }, `${(span.duration_ms ?? 0).toFixed(1)} ms`)),
      ownLogs.length
        ? el("ul", { class: "span-logs", "aria-label": `Logs of span ${span.name}` }, ownLogs.map((record) => el("li", { class: `level-${levelOf(record)}` },
            el("span", { class: `badge level-${levelOf(record)}` }, levelOf(record)), " ", shortTime(recordTime(record)), " ", bodyText(record),
            " ", el("a", { href: `#/logs?q=${encodeURIComponent(bodyText(record).slice(0, 60))}`, class: "log-link" }, "in logs"))))
        : "",
    );
    list.append(item);
  }
  const orphans = logsOf.get("") || [];
  const { table, body } = logTable();
  const names = await pipelineNames();
  for (const record of orphans) body.append(logRow(record, "", names));
  const panel = el("div", { class: "panel-slot" });
  const select = (spanId, scroll) => {
    for (const item of list.querySelectorAll("li.span.selected")) {
      item.classList.remove("selected");
      item.querySelector(".span-row").setAttribute("aria-expanded", "false");
    }
    const span = spans.find((s) => s.span_id === spanId);
    if (!span) {
      panel.replaceChildren();
      history.replaceState(null, "", `#/trace/${traceId}`);
      return;
    }
    const item = document.getElementById(`span-${spanId}`);
    item.classList.add("selected");
    item.querySelector(".span-row").setAttribute("aria-expanded", "true");
    panel.replaceChildren(spanDetail(span, () => select(null)));
    // The URL names the open span (a link to share), without a new history entry or a re-render.
    history.replaceState(null, "", `#/trace/${traceId}?span=${spanId}`);
    if (scroll) item.scrollIntoView({ block: "center" });
  };
  list.addEventListener("click", (event) => {
    const row = event.target.closest(".span-row");
    if (row && !event.target.closest("a")) select(row.parentElement.dataset.spanId);
  });
  list.addEventListener("keydown", (event) => {
    const row = event.target.closest(".span-row");
    if (row && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      select(row.parentElement.dataset.spanId);
    }
  });
  view.append(
    el("p", {}, `${spans.length} spans, ${trace.logs.length} logs, ${total.toFixed(1)} ms`, trace.truncated ? " (logs cut at 10,000)" : ""),
    el("div", { class: "trace-layout" }, list, panel),
    orphans.length ? el("h2", {}, "Logs outside any stored span") : "",
    orphans.length ? table : "",
  );
  const wanted = filters.get("span");
  if (wanted && spanIds.has(wanted)) select(wanted, true);
  return () => {};
}
