// The log table, shared by the logs, run and trace views.

import { attributeTable, exceptionBlock } from "./attributes.js";
import { el } from "./dom.js";
import { bodyText, levelOf, recordTime, timeParts } from "./format.js";
import { pipelineLabel } from "./names.js";

const COLUMNS = ["Time", "Level", "Service", "Pipeline", "Run", "Stage", "Message", "Trace"];

function highlight(text, needle) {
  if (!needle) return [text];
  const parts = [];
  const lower = text.toLowerCase();
  const wanted = needle.toLowerCase();
  let from = 0;
  for (let at = lower.indexOf(wanted); at !== -1; at = lower.indexOf(wanted, from)) {
    parts.push(text.slice(from, at), el("mark", {}, text.slice(at, at + needle.length)));
    from = at + needle.length;
  }
  parts.push(text.slice(from));
  return parts;
}

function details(record) {
  const block = (title, map) => el("div", { class: "detail" }, el("h4", {}, title), attributeTable(map, `${title} of record ${record.id}`));
  return el(
    "td",
    { colspan: String(COLUMNS.length) },
    el("dl", { class: "ids" },
      el("dt", {}, "id"), el("dd", {}, record.id),
      el("dt", {}, "span"), el("dd", {}, record.span_id || "-"),
      el("dt", {}, "service"), el("dd", {}, record.service_name || "-"),
      el("dt", {}, "scope"), el("dd", {}, record.scope ? record.scope.name : "-")),
    exceptionBlock(record.attributes),
    block("attributes", record.attributes),
    block("resource", record.resource),
  );
}

export function timeCell(iso) {
  const [date, clock] = timeParts(iso);
  return el("td", { class: "time" }, el("time", { datetime: iso || undefined }, el("span", { class: "date" }, date), el("span", { class: "clock" }, clock)));
}

export function logRow(record, needle, names) {
  const level = levelOf(record);
  const traceCell = record.trace_id
    ? el("a", { href: `#/trace/${record.trace_id}?span=${record.span_id || ""}`, class: "trace-link", title: "Open the trace" }, record.trace_id.slice(0, 8))
    : "";
  const row = el(
    "tr",
    { class: `log level-${level}`, tabindex: "0", "data-id": record.id, "data-sort": record.sort_timestamp, "aria-expanded": "false" },
    timeCell(recordTime(record)),
    el("td", {}, el("span", { class: `badge level-${level}` }, level)),
    el("td", { class: "service" }, record.service_name || ""),
    el("td", { class: "pipeline" }, pipelineLabel(record.pipeline_id, names)),
    el("td", { class: "run", title: record.run_id || undefined }, record.run_id && record.run_id.length > 10 ? `${record.run_id.slice(0, 6)}…` : record.run_id || ""),
    el("td", {}, record.stage || ""),
    el("td", { class: "body" }, highlight(bodyText(record), needle), exceptionBlock(record.attributes) ? el("span", { class: "has-exception", title: "has a stack trace: open the row" }, " ⚠ stack trace") : ""),
    el("td", {}, traceCell),
  );
  const toggle = () => {
    const open = row.getAttribute("aria-expanded") === "true";
    if (open) row.nextSibling.remove();
    else row.after(el("tr", { class: "details" }, details(record)));
    row.setAttribute("aria-expanded", String(!open));
  };
  row.addEventListener("click", (event) => {
    if (!event.target.closest("a")) toggle();
  });
  row.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      toggle();
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const rows = [...row.closest("tbody").querySelectorAll("tr.log")];
      const next = rows[rows.indexOf(row) + (event.key === "ArrowDown" ? 1 : -1)];
      if (next) next.focus();
    }
  });
  return row;
}

export function logTable() {
  const body = el("tbody");
  const table = el(
    "table",
    { class: "logs", "aria-label": "Log records, newest first" },
    el("thead", {}, el("tr", {}, COLUMNS.map((h) => el("th", { scope: "col" }, h)))),
    body,
  );
  return { table, body };
}
