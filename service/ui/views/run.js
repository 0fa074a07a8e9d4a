// One run followed to its end: its status, rows loaded and logs.

import { api } from "../api.js";
import { el, statusLine, view } from "../dom.js";
import { duration } from "../format.js";
import { logRow, logTable } from "../logtable.js";
import { pipelineNames } from "../names.js";

export async function runView(runId) {
  const status = statusLine();
  const head = el("div", { class: "run-head" });
  const { table, body } = logTable();
  view.replaceChildren(el("h1", {}, "Run ", el("code", {}, runId)), head, table);
  const shown = new Set();
  let names = await pipelineNames();
  let timer = null;
  const refresh = async () => {
    let run;
    try {
      run = await api(`/api/runs/${encodeURIComponent(runId)}`);
    } catch (error) {
      head.replaceChildren(el("p", {}, error.message));
      return;
    }
    if (!names.has(run.pipeline_id)) {
      // A pipeline created a moment ago is not in the list read before: ask for it by id.
      const pipeline = await api(`/api/pipelines/${encodeURIComponent(run.pipeline_id)}`).catch(() => null);
      if (pipeline) names = new Map([...names, [pipeline.id, pipeline.name]]);
    }
    head.replaceChildren(
      el("p", {},
        el("span", { class: `badge run-${run.status}`, id: "run-status" }, run.status),
        " pipeline ", el("a", { href: `#/logs?pipeline_id=${encodeURIComponent(run.pipeline_id)}`, class: "pipeline-name", title: run.pipeline_id }, names.get(run.pipeline_id) || run.pipeline_id),
        ` · ${duration(run.duration_seconds)}`,
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
        body.prepend(logRow(record, "", names));
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
