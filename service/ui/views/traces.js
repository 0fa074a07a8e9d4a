// Find traces (Jaeger's "Find traces"): by service, root name, duration, status, pipeline and time, or
// straight to one by its id. Each opens the waterfall.

import { api } from "../api.js";
import { el, statusLine, view } from "../dom.js";
import { timeCell } from "../logtable.js";
import { knownPipelines, pickList, pipelineNames, serviceNames } from "../names.js";

const PAGE = 50;
const FILTERS = ["service_name", "name", "min_duration_ms", "max_duration_ms", "status", "pipeline_id", "since"];
const TRACE_ID = /^[0-9a-fA-F]{32}$/;

function tracesQuery(filters, cursor) {
  const query = new URLSearchParams();
  for (const key of FILTERS) if (filters.get(key)) query.set(key, filters.get(key));
  query.set("limit", String(PAGE));
  if (cursor) query.set("cursor", cursor);
  return `/api/traces?${query}`;
}

function goToTrace() {
  const input = el("input", { name: "trace_id", id: "trace-id", size: "34", placeholder: "32 hex characters", pattern: "[0-9a-fA-F]{32}", required: true, autocomplete: "off" });
  const form = el("form", { class: "filters go-to", "aria-label": "Go to a trace" },
    el("label", { for: "trace-id" }, "Trace id "), input, el("button", { type: "submit" }, "Open"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = input.value.trim();
    if (TRACE_ID.test(id)) location.hash = `#/trace/${id.toLowerCase()}`;
  });
  return form;
}

function traceRow(trace, names) {
  const pipelines = trace.pipeline_ids.map((id) => names.get(id) || id).join(", ");
  return el("tr", { class: "trace", "data-trace-id": trace.trace_id },
    el("td", {}, el("a", { href: `#/trace/${trace.trace_id}`, class: "trace-name" }, trace.root_name ?? "(no name)"),
      trace.root_missing ? el("small", { class: "muted", title: "the root span was not received" }, " (no root)") : ""),
    el("td", { class: "service" }, trace.root_service_name || "", trace.services.length > 1 ? el("small", { class: "muted" }, ` +${trace.services.length - 1}`) : ""),
    el("td", {}, pipelines),
    timeCell(trace.start),
    el("td", { class: "num" }, `${trace.duration_ms.toFixed(1)} ms`),
    el("td", { class: "num" }, trace.span_count),
    el("td", {}, trace.error ? el("span", { class: "badge level-ERROR" }, `${trace.error_count} error${trace.error_count > 1 ? "s" : ""}`) : ""),
  );
}

export async function tracesView(filters) {
  const status = statusLine();
  const [services, pipelines, names] = await Promise.all([serviceNames().catch(() => []), knownPipelines(), pipelineNames()]);
  const text = (name, label, attrs = {}) => el("label", {}, `${label} `, el("input", { name, value: filters.get(name) || "", ...attrs }));
  const form = el(
    "form",
    { class: "filters", role: "search", "aria-label": "Find traces" },
    pickList("service_name", "Service", filters.get("service_name"), services.map((s) => [s, s])),
    text("name", "Root name", { size: "18" }),
    text("min_duration_ms", "Min ms", { type: "number", min: "0", step: "any", class: "short" }),
    text("max_duration_ms", "Max ms", { type: "number", min: "0", step: "any", class: "short" }),
    el("label", {}, "Status ", el("select", { name: "status" }, [["", "any"], ["error", "with errors"], ["ok", "without errors"]].map(([v, t]) => el("option", { value: v, selected: v === (filters.get("status") || "") }, t)))),
    pickList("pipeline_id", "Pipeline", filters.get("pipeline_id"), pipelines.map((p) => [p.id, p.name])),
    el("label", {}, "Since ", el("select", { name: "since" }, [["", "all time"], ["15m", "15 minutes"], ["1h", "1 hour"], ["24h", "24 hours"], ["7d", "7 days"]].map(([v, t]) => el("option", { value: v, selected: v === (filters.get("since") || "") }, t)))),
    el("button", { type: "submit" }, "Find"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) next.set(key, value);
    location.hash = `#/traces?${next}`;
  });
  const body = el("tbody");
  const table = el("table", { class: "traces", "aria-label": "Traces, newest first" },
    el("thead", {}, el("tr", {}, ["Root span", "Service", "Pipeline", "Start", "Duration", "Spans", "Errors"].map((h) => el("th", { scope: "col" }, h)))),
    body);
  const more = el("button", { type: "button", class: "more", hidden: true }, "More traces");
  const empty = el("p", { class: "empty", hidden: true }, "No traces match these filters.");
  view.replaceChildren(el("h1", {}, "Traces"), goToTrace(), form, el("div", { class: "scroll" }, table), empty, more);
  let cursor = null;
  let shown = 0;
  const load = async () => {
    try {
      const page = await api(tracesQuery(filters, cursor));
      body.append(...page.traces.map((trace) => traceRow(trace, names)));
      shown += page.traces.length;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      empty.hidden = shown > 0;
      status(`${shown} traces shown`);
    } catch (error) {
      status(error.message);
    }
  };
  more.addEventListener("click", load);
  await load();
  return () => {};
}
