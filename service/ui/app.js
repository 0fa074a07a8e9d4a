// Pipetrace's log explorer: plain ES modules over the JSON API, no build step, no framework.
// Every text from the API goes into the page as text nodes (never innerHTML), so a log line cannot
// inject markup.

const TOKEN_KEY = "pipetrace.token";
const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
const PAGE = 100;
const view = document.getElementById("view");
let cleanup = () => {};

// ---- small helpers --------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child));
  return node;
}

function status(text) {
  document.getElementById("status").textContent = text;
}

function levelOf(record) {
  const n = record.severity_number || 0;
  return n ? LEVELS[Math.min(Math.floor((n - 1) / 4), LEVELS.length - 1)] : "UNSET";
}

// Log values keep OTLP's types in the API: a string, or an OTLP/JSON AnyValue object. Shown plain here.
const ANY_VALUE_KEYS = ["stringValue", "boolValue", "intValue", "doubleValue", "bytesValue", "arrayValue", "kvlistValue"];

function plainValue(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const kind = ANY_VALUE_KEYS.find((key) => key in value);
  if (kind === undefined) return Object.keys(value).length === 0 ? null : value;
  const inner = value[kind];
  if (kind === "intValue") return Number.isSafeInteger(Number(inner)) ? Number(inner) : String(inner);
  if (kind === "bytesValue") return `bytes(base64) ${inner}`;
  if (kind === "arrayValue") return (inner.values || []).map(plainValue);
  if (kind === "kvlistValue") return Object.fromEntries((inner.values || []).map((kv) => [kv.key, plainValue(kv.value)]));
  return inner;
}

function plainMap(map) {
  return Object.fromEntries(Object.entries(map || {}).map(([key, value]) => [key, plainValue(value)]));
}

function bodyText(record) {
  const body = plainValue(record.body);
  return typeof body === "string" ? body : body === null || body === undefined ? "" : JSON.stringify(body);
}

// A record without a time of its own is placed by its observed (or received) time.
function recordTime(record) {
  return record.timestamp || record.sort_timestamp;
}

function shortTime(iso) {
  return iso ? iso.replace("T", " ").replace(/\.(\d{3})\d*Z$/, ".$1") : "";
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

function params(hash) {
  const query = hash.includes("?") ? hash.slice(hash.indexOf("?") + 1) : "";
  return new URLSearchParams(query);
}

// ---- the API, with the token kept for the session -------------------------------------------

function askToken() {
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(input.value), { once: true });
    input.value = "";
    dialog.showModal();
    input.focus();
  });
}

async function api(path, options = {}) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const method = options.method || "GET";
    // Every write is JSON: the service refuses a write that a plain form could send.
    const json = options.json !== undefined ? options.json : method === "GET" ? undefined : {};
    const headers = { ...(options.headers || {}) };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (json !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: json !== undefined ? JSON.stringify(json) : undefined,
    });
    if (response.status === 401) {
      sessionStorage.setItem(TOKEN_KEY, await askToken());
      continue;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(body.error ? body.error.message : `${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return body;
  }
  throw new Error("the API token was not accepted");
}

// ---- the log table, shared by the logs, run and trace views ---------------------------------

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
  const block = (title, value) => el("div", { class: "detail" }, el("h4", {}, title), el("pre", {}, JSON.stringify(value, null, 2)));
  return el(
    "td",
    { colspan: "7" },
    el("dl", { class: "ids" },
      el("dt", {}, "id"), el("dd", {}, record.id),
      el("dt", {}, "span"), el("dd", {}, record.span_id || "-"),
      el("dt", {}, "service"), el("dd", {}, record.service_name || "-"),
      el("dt", {}, "scope"), el("dd", {}, record.scope ? record.scope.name : "-")),
    block("attributes", plainMap(record.attributes)),
    block("resource", plainMap(record.resource)),
  );
}

function logRow(record, needle) {
  const level = levelOf(record);
  const traceCell = record.trace_id
    ? el("a", { href: `#/trace/${record.trace_id}?span=${record.span_id || ""}`, class: "trace-link", title: "Open the trace" }, record.trace_id.slice(0, 8))
    : "";
  const row = el(
    "tr",
    { class: `log level-${level}`, tabindex: "0", "data-id": record.id, "aria-expanded": "false" },
    el("td", { class: "time" }, shortTime(recordTime(record))),
    el("td", {}, el("span", { class: `badge level-${level}` }, level)),
    el("td", {}, record.pipeline_id || ""),
    el("td", { class: "run" }, record.run_id || ""),
    el("td", {}, record.stage || ""),
    el("td", { class: "body" }, highlight(bodyText(record), needle)),
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

function logTable() {
  const body = el("tbody");
  const table = el(
    "table",
    { class: "logs", "aria-label": "Log records, newest first" },
    el("thead", {}, el("tr", {}, ["Time", "Level", "Pipeline", "Run", "Stage", "Message", "Trace"].map((h) => el("th", { scope: "col" }, h)))),
    body,
  );
  return { table, body };
}

// ---- views -----------------------------------------------------------------------------------

function logsQuery(filters, cursor) {
  const query = new URLSearchParams();
  for (const key of ["run_id", "stage", "level", "since"]) if (filters.get(key)) query.set(key, filters.get(key));
  if (filters.get("q") && filters.get("pipeline_id")) query.set("pipeline_id", filters.get("pipeline_id"));
  if (filters.get("q")) query.set("q", filters.get("q"));
  query.set("limit", String(PAGE));
  if (cursor) query.set("cursor", cursor);
  if (filters.get("q")) return `/api/logs/search?${query}`;
  if (filters.get("pipeline_id")) return `/api/logs/pipeline/${encodeURIComponent(filters.get("pipeline_id"))}?${query}`;
  return `/api/logs?${query}`;
}

async function logsView(filters) {
  const needle = filters.get("q") || "";
  const form = el(
    "form",
    { class: "filters", role: "search" },
    el("label", {}, "Pipeline ", el("input", { name: "pipeline_id", value: filters.get("pipeline_id") || "", size: "14" })),
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
        body.append(logRow(record, needle));
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
  let timer = null;
  if (filters.get("live") === "1") {
    // Live tail: the newest page with the same filters, every two seconds; new records go on top.
    timer = setInterval(async () => {
      try {
        const page = await api(logsQuery(filters, null));
        const fresh = page.logs.filter((record) => !shown.has(record.id));
        for (const record of fresh.reverse()) {
          shown.add(record.id);
          body.prepend(logRow(record, needle));
        }
        empty.hidden = shown.size > 0;
        if (fresh.length) status(`${shown.size} records shown (live)`);
      } catch (error) {
        status(error.message);
      }
    }, 2000);
  }
  return () => {
    observer.disconnect();
    if (timer) clearInterval(timer);
  };
}

function spanDepths(spans) {
  const byId = new Map(spans.map((span) => [span.span_id, span]));
  const depth = (span, seen = 0) => (span.parent_span_id && byId.has(span.parent_span_id) && seen < 50 ? 1 + depth(byId.get(span.parent_span_id), seen + 1) : 0);
  return new Map(spans.map((span) => [span.span_id, depth(span)]));
}

function ns(iso) {
  // RFC 3339 with nanoseconds to milliseconds since 1970, keeping sub-millisecond digits as a fraction.
  const match = /^(.*)\.(\d+)Z$/.exec(iso || "");
  if (!match) return Date.parse(iso);
  return Date.parse(`${match[1]}Z`) + Number(`0.${match[2]}`) * 1000;
}

async function traceView(traceId, filters) {
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
      el("div", { class: "span-row" }, label, el("span", { class: "track" }, bar), el("span", { class: "span-ms" }, `${(span.duration_ms ?? 0).toFixed(1)} ms`)),
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
  for (const record of orphans) body.append(logRow(record));
  view.append(
    el("p", {}, `${spans.length} spans, ${trace.logs.length} logs, ${total.toFixed(1)} ms`, trace.truncated ? " (logs cut at 10,000)" : ""),
    list,
    orphans.length ? el("h2", {}, "Logs outside any stored span") : "",
    orphans.length ? table : "",
  );
  const wanted = filters.get("span");
  if (wanted && spanIds.has(wanted)) {
    const target = document.getElementById(`span-${wanted}`);
    target.classList.add("selected");
    target.scrollIntoView({ block: "center" });
  }
  return () => {};
}

function schemaField(name, schema, required) {
  const id = `param-${name}`;
  const label = el("label", { for: id }, name, required ? " *" : "");
  const help = schema.description ? el("small", {}, schema.description) : "";
  let input;
  if (schema.enum) input = el("select", { id, name }, schema.enum.map((v) => el("option", { value: v, selected: v === schema.default }, v)));
  else if (schema.type === "boolean") input = el("input", { id, name, type: "checkbox", checked: schema.default === true });
  else if (schema.type === "integer" || schema.type === "number") input = el("input", { id, name, type: "number", value: schema.default ?? "" });
  else if (name === "code") input = el("textarea", { id, name, rows: "8", cols: "70", required }, schema.default ?? "");
  else input = el("input", { id, name, type: schema["x-secret"] ? "password" : "text", value: schema.default ?? "", required, size: "40" });
  input.dataset.type = schema.type || "string";
  return el("div", { class: "field" }, label, input, help);
}

function scheduleCell(pipeline) {
  if (!pipeline.schedule) return "on demand";
  return [el("code", {}, pipeline.schedule.cron), ` ${pipeline.schedule.timezone}`, el("br"),
    el("small", {}, pipeline.next_run_at ? `next run ${pipeline.next_run_at.replace("T", " ").replace("Z", " UTC")}` : "")];
}

async function pipelinesView() {
  const [{ pipelines }, { templates }] = await Promise.all([api("/api/pipelines"), api("/api/templates")]);
  const rows = await Promise.all(pipelines.map((p) => api(`/api/pipelines/${encodeURIComponent(p.id)}`)));
  const table = el(
    "table",
    { class: "pipelines", "aria-label": "Pipelines and their recent runs" },
    el("thead", {}, el("tr", {}, ["Pipeline", "Template", "Schedule", "Recent runs", ""].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((pipeline) => el("tr", {},
      el("td", {}, el("a", { href: `#/logs?pipeline_id=${encodeURIComponent(pipeline.id)}` }, pipeline.name), el("br"), el("small", {}, pipeline.id)),
      el("td", {}, pipeline.template),
      el("td", { class: "schedule" }, scheduleCell(pipeline)),
      el("td", {}, el("ul", { class: "runs" }, pipeline.runs.map((run) => el("li", {},
        el("a", { href: `#/run/${run.run_id}` }, el("span", { class: `badge run-${run.status}` }, run.status)),
        run.warnings && run.warnings.length ? el("span", { class: "run-warning" }, ` ${run.warnings.join(", ")}`) : "",
        ` ${duration(run.duration_seconds)}`,
        run.error_count ? el("span", { class: "errors" }, ` ${run.error_count} errors`) : "",
        ` ${shortTime(run.queued_at)}`)))),
      el("td", {}, el("button", { type: "button", onclick: async () => {
        const started = await api(`/api/pipelines/${encodeURIComponent(pipeline.id)}/runs`, { method: "POST" });
        location.hash = `#/run/${started.run_id}`;
      } }, "Run now"))))),
  );
  const templateSelect = el("select", { id: "template", name: "template" }, templates.map((t) => el("option", { value: t.name }, `${t.name}: ${t.description}`)));
  const fields = el("div", { class: "fields" });
  const showFields = () => {
    const template = templates.find((t) => t.name === templateSelect.value);
    const schema = template.parameters;
    const required = new Set(schema.required || []);
    fields.replaceChildren(...Object.entries(schema.properties || {}).map(([name, property]) => schemaField(name, property, required.has(name))));
  };
  templateSelect.addEventListener("change", showFields);
  const nameInput = el("input", { id: "pipeline-name", name: "name", required: true, size: "30" });
  const cronInput = el("input", { id: "schedule-cron", name: "cron", size: "16", placeholder: "0 2 * * *" });
  const zoneInput = el("input", { id: "schedule-timezone", name: "timezone", size: "20", value: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC" });
  const message = el("p", { class: "form-error", role: "alert" });
  const form = el("form", { class: "new-pipeline", "aria-label": "Start a run from a template" },
    el("h2", {}, "Start a run from a template"),
    el("div", { class: "field" }, el("label", { for: "pipeline-name" }, "Name *"), nameInput),
    el("div", { class: "field" }, el("label", { for: "template" }, "Template"), templateSelect),
    fields,
    el("div", { class: "field" }, el("label", { for: "schedule-cron" }, "Schedule (cron, optional)"), cronInput,
      el("label", { for: "schedule-timezone" }, " in time zone "), zoneInput,
      el("small", {}, "Five fields: minute hour day-of-month month day-of-week. Empty: runs only when started.")),
    message, el("button", { type: "submit" }, "Create and run"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = {};
    for (const input of fields.querySelectorAll("input, select, textarea")) {
      if (input.type === "checkbox") values[input.name] = input.checked;
      else if (input.value !== "") values[input.name] = input.dataset.type === "integer" ? Number.parseInt(input.value, 10) : input.dataset.type === "number" ? Number(input.value) : input.value;
    }
    try {
      const definition = { name: nameInput.value, template: templateSelect.value, params: values };
      if (cronInput.value.trim()) definition.schedule = { cron: cronInput.value.trim(), timezone: zoneInput.value.trim() };
      const pipeline = await api("/api/pipelines", { method: "POST", json: definition });
      const started = await api(`/api/pipelines/${encodeURIComponent(pipeline.id)}/runs`, { method: "POST" });
      location.hash = `#/run/${started.run_id}`;
    } catch (error) {
      message.textContent = error.message;
    }
  });
  view.replaceChildren(el("h1", {}, "Pipelines"), pipelines.length ? table : el("p", { class: "empty" }, "No pipelines yet."), form);
  showFields();
  return () => {};
}

async function runView(runId) {
  const head = el("div", { class: "run-head" });
  const { table, body } = logTable();
  view.replaceChildren(el("h1", {}, "Run ", el("code", {}, runId)), head, table);
  const shown = new Set();
  let timer = null;
  const refresh = async () => {
    let run;
    try {
      run = await api(`/api/runs/${encodeURIComponent(runId)}`);
    } catch (error) {
      head.replaceChildren(el("p", {}, error.message));
      return;
    }
    head.replaceChildren(
      el("p", {},
        el("span", { class: `badge run-${run.status}`, id: "run-status" }, run.status),
        ` pipeline ${run.pipeline_id} · ${duration(run.duration_seconds)}`,
        run.trace_id ? el("span", {}, " · ", el("a", { href: `#/trace/${run.trace_id}` }, "trace")) : "",
        " · ", el("a", { href: `#/logs?pipeline_id=${encodeURIComponent(run.pipeline_id)}&run_id=${runId}` }, "all its logs")),
      Object.keys(run.rows_loaded || {}).length ? el("p", {}, `rows loaded: ${Object.entries(run.rows_loaded).map(([t, n]) => `${t} ${n}`).join(", ")}`) : "",
      (run.warnings || []).length ? el("p", { class: "run-warning", id: "run-warnings" }, `warning: ${run.warnings.join(", ")}`) : "",
      // A cancel is what someone asked for: said plainly, not shown as an error.
      run.error && run.status !== "cancelled" ? el("p", { class: "form-error" }, `${run.error.type || "error"}: ${run.error.message || ""}`) : "",
      run.status === "cancelled" ? el("p", {}, "The run was cancelled.") : "",
    );
    try {
      const page = await api(`/api/logs/pipeline/${encodeURIComponent(run.pipeline_id)}?run_id=${encodeURIComponent(runId)}&limit=1000`);
      for (const record of page.logs.reverse()) {
        if (shown.has(record.id)) continue;
        shown.add(record.id);
        body.prepend(logRow(record));
      }
    } catch (error) {
      status(error.message);
    }
    const finished = ["succeeded", "failed", "cancelled"].includes(run.status);
    status(finished ? `run ${run.status}` : "following the run…");
    if (finished && timer) {
      clearInterval(timer);
      timer = null;
      setTimeout(refresh, 1500); // the last records arrive just after the run ends
    }
  };
  await refresh();
  timer = setInterval(refresh, 1000);
  return () => timer && clearInterval(timer);
}

// How runs ended, as /api/logs/stats counts them; cancels apart from failures.
const RUN_OUTCOMES = [["succeeded", "succeeded"], ["succeeded_with_warnings", "succeeded but loaded nothing"], ["failed", "failed"], ["cancelled", "cancelled"]];

const LEVEL_COLOURS = { TRACE: "#6b7280", DEBUG: "#6b7280", INFO: "#2563eb", WARN: "#b45309", ERROR: "#b91c1c", FATAL: "#7f1d1d", UNSPECIFIED: "#9ca3af" };

function volumeChart(timeline) {
  const buckets = timeline.buckets;
  const width = 900;
  const height = 220;
  const max = Math.max(1, ...buckets.map((b) => b.total));
  // Bars sit at their time: empty buckets are left out by the API, and stay gaps here.
  const first = ns(buckets[0].start);
  const slot = timeline.bucket_seconds * 1000;
  const slots = Math.round((ns(buckets.at(-1).start) - first) / slot) + 1;
  const step = width / slots;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height + 20}`, class: "volume", role: "img", "aria-label": `Records per ${timeline.bucket_seconds} s, stacked by level` });
  buckets.forEach((bucket) => {
    const i = Math.round((ns(bucket.start) - first) / slot);
    let y = height;
    for (const level of [...LEVELS, "UNSPECIFIED"]) {
      const count = bucket.by_level[level] || 0;
      if (!count) continue;
      const h = (height * count) / max;
      y -= h;
      chart.append(svg("rect", { x: String(i * step + 1), y: String(y), width: String(Math.max(step - 2, 1)), height: String(h), fill: LEVEL_COLOURS[level] }, svg("title", {}, `${shortTime(bucket.start)} ${level}: ${count}`)));
    }
  });
  chart.append(svg("text", { x: "0", y: String(height + 16), class: "axis" }, shortTime(buckets[0] && buckets[0].start)));
  chart.append(svg("text", { x: String(width), y: String(height + 16), "text-anchor": "end", class: "axis" }, shortTime(buckets.at(-1) && buckets.at(-1).start)));
  return chart;
}

async function statsView(filters) {
  const since = filters.get("since") || "24h";
  const query = since === "all" ? "" : `?since=${since}`;
  const stats = await api(`/api/logs/stats${query}`);
  const picker = el("p", { class: "range" }, "Range: ", [["1h", "1 hour"], ["24h", "24 hours"], ["7d", "7 days"], ["all", "all time"]].map(([value, text]) =>
    el("a", { href: `#/stats?since=${value}`, "aria-current": value === since ? "page" : undefined }, text)));
  const failing = [...stats.by_pipeline].filter((p) => p.errors > 0).sort((a, b) => b.errors - a.errors).slice(0, 10);
  const ingestRows = Object.entries(stats.ingest).filter(([name]) => name !== "forward").map(([signal, counters]) => el("tr", {},
    el("th", { scope: "row" }, signal),
    el("td", {}, counters.exported), el("td", {}, counters.failed), el("td", {}, counters.spooled), el("td", {}, counters.dropped),
    el("td", { class: `breaker-${counters.breaker}` }, counters.breaker),
    el("td", {}, `${counters.spool.files} files, ${counters.spool.records} records`)));
  view.replaceChildren(
    el("h1", {}, "Stats"),
    picker,
    el("div", { class: "cards" },
      el("div", { class: "card" }, el("span", { class: "value", id: "total" }, stats.total.toLocaleString()), " records"),
      el("div", { class: "card" }, el("span", { class: "value", id: "error-rate" }, `${(100 * stats.error_rate).toFixed(2)}%`), " errors"),
      el("div", { class: "legend" }, [...LEVELS].map((level) => el("span", { class: `badge level-${level}` }, level)))),
    stats.timeline.buckets.length ? volumeChart(stats.timeline) : el("p", { class: "empty" }, "No records in this range."),
    el("h2", {}, "Runs"),
    el("p", { class: "run-outcomes", id: "run-outcomes" }, RUN_OUTCOMES.map(([key, text]) => `${(stats.runs || {})[key] || 0} ${text}`).join(" · ")),
    el("h2", {}, "Pipelines that fail most"),
    failing.length
      ? el("ol", { class: "failing" }, failing.map((p) => el("li", {}, el("a", { href: `#/logs?pipeline_id=${encodeURIComponent(p.pipeline_id || "")}&level=ERROR` }, p.pipeline_id || "(no pipeline)"), ` ${p.errors} errors of ${p.count}`)))
      : el("p", {}, "No errors in this range."),
    el("h2", {}, "Ingest health"),
    el("table", { class: "ingest" },
      el("thead", {}, el("tr", {}, ["", "exported", "failed", "spooled", "dropped", "breaker", "spool"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ingestRows)),
  );
  return () => {};
}

// ---- routing ---------------------------------------------------------------------------------

async function route() {
  cleanup();
  cleanup = () => {};
  const hash = location.hash || "#/logs";
  const path = hash.slice(1).split("?")[0];
  const filters = params(hash);
  const [, name, id] = path.split("/");
  for (const link of document.querySelectorAll("nav a")) {
    link.toggleAttribute("aria-current", link.dataset.view === name);
  }
  status("");
  try {
    if (name === "trace" && id) cleanup = await traceView(decodeURIComponent(id), filters);
    else if (name === "run" && id) cleanup = await runView(decodeURIComponent(id));
    else if (name === "pipelines") cleanup = await pipelinesView();
    else if (name === "stats") cleanup = await statsView(filters);
    else cleanup = await logsView(filters);
  } catch (error) {
    view.replaceChildren(el("h1", {}, "Something went wrong"), el("p", {}, error.message));
  }
}

document.getElementById("token-form").addEventListener("submit", () => {});
window.addEventListener("hashchange", route);
document.addEventListener("keydown", (event) => {
  if (event.key === "/" && !["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName)) {
    const search = document.querySelector("input[name=q]");
    if (search) {
      event.preventDefault();
      search.focus();
    }
  }
});
route();
