// The log explorer: filters in the URL, endless scrolling on the cursor, a live tail.

import { api, readEvents } from "../api.js";
import { el, statusLine, view } from "../dom.js";
import { LEVELS, bodyText } from "../format.js";
import { logRow, logTable } from "../logtable.js";
import { knownPipelines, pickList, pipelineNames, serviceNames } from "../names.js";

const PAGE = 100;

function logsQuery(filters, cursor) {
  const query = new URLSearchParams();
  for (const key of ["service_name", "run_id", "stage", "level", "since"]) if (filters.get(key)) query.set(key, filters.get(key));
  if (filters.get("q") && filters.get("pipeline_id")) query.set("pipeline_id", filters.get("pipeline_id"));
  if (filters.get("q")) query.set("q", filters.get("q"));
  query.set("limit", String(PAGE));
  if (cursor) query.set("cursor", cursor);
  if (filters.get("q")) return `/api/logs/search?${query}`;
  if (filters.get("pipeline_id")) return `/api/logs/pipeline/${encodeURIComponent(filters.get("pipeline_id"))}?${query}`;
  return `/api/logs?${query}`;
}

export async function logsView(filters) {
  const status = statusLine();
  const needle = filters.get("q") || "";
  const [pipelines, services, names] = await Promise.all([knownPipelines(), serviceNames().catch(() => []), pipelineNames()]);
  const form = el(
    "form",
    { class: "filters", role: "search" },
    pickList("service_name", "Service", filters.get("service_name"), services.map((s) => [s, s])),
    pickList("pipeline_id", "Pipeline", filters.get("pipeline_id"), pipelines.map((p) => [p.id, p.name])),
    el("label", {}, "Run ", el("input", { name: "run_id", value: filters.get("run_id") || "", size: "14" })),
    el("label", {}, "Stage ", el("select", { name: "stage" }, ["", "extract", "normalize", "load", "stdout", "stderr"].map((s) => el("option", { value: s, selected: s === (filters.get("stage") || "") }, s || "any")))),
    el("label", {}, "Level ", el("select", { name: "level" }, ["", ...LEVELS].map((l) => el("option", { value: l, selected: l === (filters.get("level") || "") }, l ? `${l} and above` : "any")))),
    el("label", {}, "Since ", el("select", { name: "since" }, [["", "all time"], ["15m", "15 minutes"], ["1h", "1 hour"], ["24h", "24 hours"], ["7d", "7 days"]].map(([v, t]) => el("option", { value: v, selected: v === (filters.get("since") || "") }, t)))),
    el("label", {}, "Search ", el("input", { name: "q", type: "search", value: needle, placeholder: "text in message or attributes", size: "24" })),
    el("button", { type: "submit" }, "Apply"),
    el("label", { class: "tail" }, el("input", { type: "checkbox", name: "live", checked: filters.get("live") === "1" }), " Live tail"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) next.set(key, key === "live" ? "1" : value);
    location.hash = `#/logs?${next}`;
  });
  form.querySelector("[name=live]").addEventListener("change", () => form.requestSubmit());
  const { table, body } = logTable();
  const sentinel = el("div", { class: "sentinel" }, "");
  const empty = el("p", { class: "empty", hidden: true }, "No records match these filters.");
  view.replaceChildren(el("h1", {}, "Logs"), form, table, empty, sentinel);

  const shown = new Set();
  let cursor = null;
  let loading = false;
  let done = false;
  const loadMore = async () => {
    if (loading || done) return;
    loading = true;
    try {
      const page = await api(logsQuery(filters, cursor));
      for (const record of page.logs) {
        if (shown.has(record.id)) continue;
        shown.add(record.id);
        body.append(logRow(record, needle, names));
      }
      cursor = page.next_cursor;
      done = !cursor;
      empty.hidden = shown.size > 0;
      sentinel.textContent = done ? (shown.size ? "End of the records." : "") : "Loading more…";
      status(`${shown.size} records shown`);
    } catch (error) {
      status(error.message);
      done = true;
    } finally {
      loading = false;
    }
  };
  await loadMore();
  // Endless scrolling: the next page loads when the end of the table comes into view.
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) loadMore();
  });
  observer.observe(sentinel);
  const live = new AbortController();
  if (filters.get("live") === "1") followLive(filters, shown, body, empty, names, live.signal, status);
  return () => {
    observer.disconnect();
    live.abort();
  };
}

// The tail route takes the column filters; a search is matched here, on the message and attributes.
function matches(record, needle) {
  if (!needle) return true;
  const text = `${bodyText(record)} ${JSON.stringify(record.attributes)}`.toLowerCase();
  return text.includes(needle.toLowerCase());
}

// Live tail: new records streamed by the service (GET /api/logs/tail), each put on top. A stream ends
// after a while and is opened again from the newest record shown; the ids already shown are skipped.
async function followLive(filters, shown, body, empty, names, signal, status) {
  const needle = filters.get("q") || "";
  let since = null;
  for (const row of body.querySelectorAll("tr.log")) {
    const time = row.dataset.sort;
    if (time && (!since || time > since)) since = time;
  }
  while (!signal.aborted) {
    const query = new URLSearchParams();
    for (const key of ["service_name", "pipeline_id", "run_id", "stage", "level"]) if (filters.get(key)) query.set(key, filters.get(key));
    if (since) query.set("since", since);
    let wait = 0;
    try {
      status(`${shown.size} records shown (live)`);
      await readEvents(`/api/logs/tail?${query}`, (name, data) => {
        if (name === "records") {
          for (const record of data) {
            if (!since || record.sort_timestamp > since) since = record.sort_timestamp;
            if (shown.has(record.id) || !matches(record, needle)) continue;
            shown.add(record.id);
            body.prepend(logRow(record, needle, names));
          }
          empty.hidden = shown.size > 0;
          status(`${shown.size} records shown (live)`);
        } else if (name === "overflow") {
          status(data.message);
        }
      }, signal);
    } catch (error) {
      if (signal.aborted) return;
      status(`live tail: ${error.message}`);
      wait = (error.retryAfter || 5) * 1000;
    }
    if (wait) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
