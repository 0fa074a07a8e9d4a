// The pipelines, their recent runs, and a form to start a run from a template.

import { api } from "../api.js";
import { el, view } from "../dom.js";
import { duration, shortTime } from "../format.js";

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

export async function pipelinesView() {
  const [{ pipelines }, { templates }] = await Promise.all([api("/api/pipelines"), api("/api/templates")]);
  const rows = await Promise.all(pipelines.map((p) => api(`/api/pipelines/${encodeURIComponent(p.id)}`)));
  const table = el(
    "table",
    { class: "pipelines", "aria-label": "Pipelines and their recent runs" },
    el("thead", {}, el("tr", {}, ["Pipeline", "Template", "Recent runs", ""].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((pipeline) => el("tr", {},
      el("td", {}, el("a", { href: `#/logs?pipeline_id=${encodeURIComponent(pipeline.id)}` }, pipeline.name), el("br"), el("small", {}, pipeline.id)),
      el("td", {}, pipeline.template),
      el("td", {}, el("ul", { class: "runs" }, pipeline.runs.map((run) => el("li", {},
        el("a", { href: `#/run/${run.run_id}` }, el("span", { class: `badge run-${run.status}` }, run.status)),
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
  const message = el("p", { class: "form-error", role: "alert" });
  const form = el("form", { class: "new-pipeline", "aria-label": "Start a run from a template" },
    el("h2", {}, "Start a run from a template"),
    el("div", { class: "field" }, el("label", { for: "pipeline-name" }, "Name *"), nameInput),
    el("div", { class: "field" }, el("label", { for: "template" }, "Template"), templateSelect),
    fields, message, el("button", { type: "submit" }, "Create and run"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = {};
    for (const input of fields.querySelectorAll("input, select, textarea")) {
      if (input.type === "checkbox") values[input.name] = input.checked;
      else if (input.value !== "") values[input.name] = input.dataset.type === "integer" ? Number.parseInt(input.value, 10) : input.dataset.type === "number" ? Number(input.value) : input.value;
    }
    try {
      const pipeline = await api("/api/pipelines", { method: "POST", json: { name: nameInput.value, template: templateSelect.value, params: values } });
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
