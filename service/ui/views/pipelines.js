// The pipelines, their recent runs, and a form to start a run from a template.

import { api } from "../api.js";
import { el, view } from "../dom.js";
import { duration, shortTime } from "../format.js";
import { templateForm } from "../templateform.js";

function scheduleCell(pipeline) {
  if (!pipeline.schedule) return "on demand";
  return [el("code", {}, pipeline.schedule.cron), ` ${pipeline.schedule.timezone}`, el("br"),
    el("small", {}, pipeline.next_run_at ? `next run ${pipeline.next_run_at.replace("T", " ").replace("Z", " UTC")}` : "")];
}

export async function pipelinesView() {
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
  let params = null;
  const showFields = () => {
    const template = templates.find((t) => t.name === templateSelect.value);
    params = templateForm(template.parameters);
    fields.replaceChildren(...params.nodes);
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
    message,
    el("div", { class: "actions" },
      el("button", { type: "submit", value: "run" }, "Create and run"),
      el("button", { type: "submit", value: "create", class: "secondary" }, "Create only")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const problem = params.check();
    if (problem) {
      message.textContent = problem;
      return;
    }
    const run = !event.submitter || event.submitter.value !== "create";
    try {
      const definition = { name: nameInput.value, template: templateSelect.value, params: params.values() };
      if (cronInput.value.trim()) definition.schedule = { cron: cronInput.value.trim(), timezone: zoneInput.value.trim() };
      const pipeline = await api("/api/pipelines", { method: "POST", json: definition });
      if (!run) {
        message.textContent = "";
        await pipelinesView();
        view.querySelector(".form-note").textContent = `Pipeline ${pipeline.name} created.`;
        return;
      }
      const started = await api(`/api/pipelines/${encodeURIComponent(pipeline.id)}/runs`, { method: "POST" });
      location.hash = `#/run/${started.run_id}`;
    } catch (error) {
      message.textContent = error.message;
    }
  });
  view.replaceChildren(el("h1", {}, "Pipelines"), el("p", { class: "form-note", role: "status" }), pipelines.length ? table : el("p", { class: "empty" }, "No pipelines yet."), form);
  showFields();
  return () => {};
}
