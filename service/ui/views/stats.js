// Volume by level, error rate, the pipelines that fail most, ingest health.

import { api } from "../api.js";
import { el, svg, view } from "../dom.js";
import { LEVELS, ns, shortTime } from "../format.js";
import { pipelineNames } from "../names.js";

const LEVEL_COLOURS = { TRACE: "#6b7280", DEBUG: "#6b7280", INFO: "#2563eb", WARN: "#b45309", ERROR: "#b91c1c", FATAL: "#7f1d1d", UNSPECIFIED: "#9ca3af" };

// A round step for an axis reaching max: 1, 2 or 5 times a power of ten, about four steps.
function niceStep(max) {
  const raw = max / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw) || power * 10;
}

function volumeChart(timeline) {
  const buckets = timeline.buckets;
  const left = 56; // room for the y-axis labels
  const width = 900;
  const plot = width - left;
  const height = 220;
  const top = 10;
  const step = niceStep(Math.max(1, ...buckets.map((b) => b.total)));
  const max = step * Math.ceil(Math.max(1, ...buckets.map((b) => b.total)) / step);
  // Bars sit at their time: empty buckets are left out by the API, and stay gaps here.
  const first = ns(buckets[0].start);
  const slot = timeline.bucket_seconds * 1000;
  const slots = Math.round((ns(buckets.at(-1).start) - first) / slot) + 1;
  const barStep = plot / slots;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${top + height + 20}`, class: "volume", role: "img", "aria-label": `Records per ${timeline.bucket_seconds} s, stacked by level` });
  const y = (count) => top + height - (height * count) / max;
  for (let tick = 0; tick <= max; tick += step) {
    chart.append(svg("line", { x1: String(left), x2: String(width), y1: String(y(tick)), y2: String(y(tick)), class: "grid" }));
    chart.append(svg("text", { x: String(left - 6), y: String(y(tick) + 4), "text-anchor": "end", class: "axis y-tick" }, tick.toLocaleString()));
  }
  chart.append(svg("text", { x: "0", y: String(top - 2), class: "axis" }, `per ${timeline.bucket_seconds} s`));
  buckets.forEach((bucket) => {
    const i = Math.round((ns(bucket.start) - first) / slot);
    let below = 0;
    for (const level of [...LEVELS, "UNSPECIFIED"]) {
      const count = bucket.by_level[level] || 0;
      if (!count) continue;
      below += count;
      chart.append(svg("rect", { x: String(left + i * barStep + 1), y: String(y(below)), width: String(Math.max(barStep - 2, 1)), height: String((height * count) / max), fill: LEVEL_COLOURS[level] }, svg("title", {}, `${shortTime(bucket.start)} ${level}: ${count}`)));
    }
  });
  chart.append(svg("text", { x: String(left), y: String(top + height + 16), class: "axis" }, shortTime(buckets[0].start)));
  chart.append(svg("text", { x: String(width), y: String(top + height + 16), "text-anchor": "end", class: "axis" }, shortTime(buckets.at(-1).start)));
  return chart;
}

// How runs ended, as /api/logs/stats counts them; cancels apart from failures.
const RUN_OUTCOMES = [["succeeded", "succeeded"], ["succeeded_with_warnings", "succeeded but loaded nothing"], ["failed", "failed"], ["cancelled", "cancelled"]];

export async function statsView(filters) {
  const since = filters.get("since") || "24h";
  const query = since === "all" ? "" : `?since=${since}`;
  const [stats, names] = await Promise.all([api(`/api/logs/stats${query}`), pipelineNames()]);
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
      ? el("ol", { class: "failing" }, failing.map((p) => el("li", {}, el("a", { href: `#/logs?pipeline_id=${encodeURIComponent(p.pipeline_id || "")}&level=ERROR` }, p.pipeline_id ? names.get(p.pipeline_id) || p.pipeline_id : "(no pipeline)"), ` ${p.errors} errors of ${p.count}`)))
      : el("p", {}, "No errors in this range."),
    el("h2", {}, "Ingest health"),
    el("table", { class: "ingest" },
      el("thead", {}, el("tr", {}, ["", "exported", "failed", "spooled", "dropped", "breaker", "spool"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ingestRows)),
  );
  return () => {};
}
