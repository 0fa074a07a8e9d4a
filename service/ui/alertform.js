// The form that creates or edits an alert rule. The service validates every field and names the one it
// refuses (400, error.parameter); the form shows that message beside it and marks the field, so no
// rule of the service is repeated here beyond what a form needs to ask for each kind's parameters.
//
// Webhook and Slack URLs come back masked (scheme://host/***). A masked URL sent back unchanged keeps
// the URL it stands for (the service's PUT), so the form sends what it shows.

import { api } from "./api.js";
import { el } from "./dom.js";
import { LEVELS } from "./format.js";

export const KINDS = ["run_failed", "no_rows", "freshness", "slow_run", "log_condition", "ingest_health"];
const CHANNELS = ["webhook", "slack", "email"];
const SEVERITIES = ["critical", "warning", "info"];

// The inputs each kind asks for. empty: what an empty input sends (omit: the service's default;
// null: explicitly unset). The defaults shown for a new rule are the service's (README, "Alerts").
const PARAMS = {
  run_failed: [],
  no_rows: [
    { name: "table", type: "text", empty: null, help: "Empty: rows loaded into all tables together." },
    { name: "min_rows", type: "number", value: 1, help: "Fires when fewer rows than this were loaded." },
  ],
  freshness: [
    { name: "window_seconds", type: "number", value: "", help: "Fires when no run succeeded within this many seconds (26 h: 93600)." },
  ],
  slow_run: [
    { name: "factor", type: "number", value: 3, help: "Fires when a run takes over factor × the median." },
    { name: "last_n", type: "number", value: 10, help: "The median of this many successful runs before it." },
    { name: "min_runs", type: "number", value: 3, help: "Needs at least this many of them." },
  ],
  log_condition: [
    { name: "window_seconds", type: "number", value: "", help: "Counts records that arrived in this many seconds." },
    { name: "threshold", type: "number", empty: null, value: 0, help: "Fires when more records than this match (the count form; leave empty for the error-rate form)." },
    { name: "error_rate_percent", type: "number", empty: null, value: "", help: "The error-rate form: fires when more than this % of the matching records are at or above the level (ERROR when empty)." },
    { name: "min_records", type: "number", empty: null, value: "", help: "Error-rate form: no verdict on fewer matching records than this (10 when empty)." },
    { name: "level", type: "level", empty: null, help: "At or above this level; empty: any." },
    { name: "service_name", type: "text", empty: null, help: "Only this service; empty: any." },
    { name: "text", type: "text", empty: null, help: "Held in the message (case-insensitive); empty: any." },
  ],
  ingest_health: [
    { name: "breaker_open", type: "checkbox", value: true, help: "Fires while an exporter's breaker is open." },
    { name: "spool_records_above", type: "number", empty: null, value: "", help: "Fires when more records than this are spooled; empty: off." },
    { name: "dropped_above", type: "number", empty: null, value: 0, help: "Fires when more records than this were dropped since the last evaluation; empty: off." },
  ],
};

// A number input's value; what was typed when it is not a number goes to the service as text, which
// refuses it naming the field.
function numberOf(input, empty) {
  if (input.validity.badInput) return "not a number";
  return input.value === "" ? empty : Number(input.value);
}

function paramInput(spec, value) {
  const id = `param-${spec.name}`;
  const shown = value === undefined ? spec.value : value;
  let input;
  if (spec.type === "json") {
    input = el("input", { id, value: JSON.stringify(shown), size: "30", spellcheck: "false" });
  } else if (spec.type === "checkbox") {
    input = el("input", { id, type: "checkbox", checked: shown === true });
  } else if (spec.type === "level") {
    input = el("select", { id }, ["", ...LEVELS].map((level) => el("option", { value: level, selected: level === (shown || "") }, level || "any")));
  } else {
    input = el("input", { id, type: spec.type === "number" ? "number" : "text", step: spec.type === "number" ? "any" : undefined, value: shown ?? "", size: "30" });
  }
  input.dataset.field = `params.${spec.name}`;
  const read = () => {
    const empty = spec.empty === null ? null : undefined;
    if (spec.type === "checkbox") return input.checked;
    if (spec.type === "number") return numberOf(input, empty);
    if (spec.type === "json") {
      try {
        return JSON.parse(input.value);
      } catch {
        return input.value; // sent as typed: the service names the parameter it refuses
      }
    }
    return input.value.trim() === "" ? empty : input.value.trim();
  };
  return { node: el("div", { class: "field" }, el("label", { for: id }, spec.name), input, el("small", {}, spec.help)), read };
}

function targetRow(target, index, onRemove) {
  const typeSelect = el("select", { id: `notify-${index}-type`, "aria-label": `Target ${index + 1} type` },
    CHANNELS.map((channel) => el("option", { value: channel, selected: channel === target.type }, channel)));
  const value = el("input", { id: `notify-${index}-value`, size: "50", autocomplete: "off", "aria-label": `Target ${index + 1} address` });
  const hint = el("small", {});
  const describe = () => {
    const email = typeSelect.value === "email";
    value.dataset.field = `notify[${index}].${email ? "to" : "url"}`;
    value.placeholder = email ? "oncall@example.com, other@example.com" : "https://…";
    hint.textContent = email ? "Addresses, separated by commas." : value.value.endsWith("/***") ? "The URL is a secret, shown masked: left as it is, it is kept." : "The URL is kept as a secret and shown masked.";
  };
  value.value = target.type === "email" ? (target.to || []).join(", ") : target.url || "";
  typeSelect.addEventListener("change", describe);
  value.addEventListener("input", describe);
  describe();
  typeSelect.dataset.field = `notify[${index}].type`;
  const node = el("div", { class: "target", "data-field": `notify[${index}]` }, typeSelect, " ", value,
    el("button", { type: "button", class: "secondary", onclick: onRemove }, "Remove"), hint);
  const read = () => (typeSelect.value === "email"
    ? { type: "email", to: value.value.split(",").map((address) => address.trim()).filter(Boolean) }
    : { type: typeSelect.value, url: value.value.trim() });
  return { node, read };
}

// The rule form: rule is the rule to edit (null: a new one); pipelines the known ones; onSaved(rule)
// after the service accepted it; onCancel for the edit's Cancel button.
export function ruleForm({ rule, pipelines, onSaved, onCancel }) {
  const editing = Boolean(rule);
  const start = rule || { name: "", kind: "run_failed", pipeline_ids: [], for_seconds: 0, repeat_seconds: 14400, params: {}, notify: [], enabled: true };
  const name = el("input", { id: "rule-name", value: start.name, size: "40", "data-field": "name" });
  const kind = el("select", { id: "rule-kind", "data-field": "kind" }, KINDS.map((k) => el("option", { value: k, selected: k === start.kind }, k)));
  const severity = el("select", { id: "rule-severity", "data-field": "severity" },
    SEVERITIES.map((level) => el("option", { value: level, selected: level === (start.severity || "warning") }, level)));
  const known = new Set(pipelines.map((p) => p.id));
  const boxes = pipelines.map((p) => el("input", { type: "checkbox", value: p.id, checked: start.pipeline_ids.includes(p.id), "aria-label": p.name }));
  const others = el("input", { id: "rule-other-pipelines", size: "40", "data-field": "pipeline_ids",
    value: start.pipeline_ids.filter((id) => !known.has(id)).join(", "), placeholder: "pipeline ids, separated by commas" });
  const pipelineField = el("fieldset", { class: "sub-form" },
    el("legend", {}, "Pipelines (none chosen: every pipeline)"),
    boxes.map((box, i) => el("label", { class: "choice" }, box, ` ${pipelines[i].name}`)),
    el("div", { class: "field" }, el("label", { for: "rule-other-pipelines" }, "Other pipeline ids"), others,
      el("small", {}, "Pipelines that send telemetry from outside (their pipeline.id).")));
  const forSeconds = el("input", { id: "rule-for", type: "number", step: "any", value: start.for_seconds, "data-field": "for_seconds" });
  const repeat = el("input", { id: "rule-repeat", type: "number", step: "any", value: start.repeat_seconds ?? "", "data-field": "repeat_seconds" });
  const enabled = el("input", { id: "rule-enabled", type: "checkbox", checked: start.enabled, "data-field": "enabled" });
  const paramsBox = el("fieldset", { class: "sub-form", "data-field": "params" });
  let params = [];
  const showParams = () => {
    const values = kind.value === start.kind ? start.params : {};
    // A parameter this form does not know (one a newer service added) is shown as JSON and kept.
    const listed = PARAMS[kind.value].map((spec) => spec.name);
    const extra = Object.keys(values).filter((key) => !listed.includes(key)).map((key) => ({ name: key, type: "json", help: "JSON; kept as it is unless changed." }));
    params = [...PARAMS[kind.value], ...extra].map((spec) => [spec.name, paramInput(spec, values[spec.name])]);
    paramsBox.replaceChildren(el("legend", {}, `Parameters of ${kind.value}`),
      ...(params.length ? params.map(([, p]) => p.node) : [el("small", {}, "None.")]));
    pipelineField.hidden = kind.value === "ingest_health"; // it watches the service, not pipelines
    // The two forms of a log condition: a percentage typed over the count's untouched default clears it.
    const rate = paramsBox.querySelector("#param-error_rate_percent");
    const count = paramsBox.querySelector("#param-threshold");
    if (rate && count) rate.addEventListener("input", () => { if (rate.value !== "" && count.value === "0") count.value = ""; });
  };
  kind.addEventListener("change", showParams);

  const targetsBox = el("div", { class: "targets" });
  let targets = [];
  const showTargets = (list) => {
    targets = list.map((target, i) => targetRow(target, i, () => showTargets(readTargets().filter((_, j) => j !== i))));
    targetsBox.replaceChildren(...targets.map((t) => t.node));
  };
  const readTargets = () => targets.map((t) => t.read());
  const addTarget = el("button", { type: "button", class: "secondary", onclick: () => showTargets([...readTargets(), { type: "webhook", url: "" }]) }, "Add a target");

  const message = el("p", { class: "form-error", role: "alert", id: "rule-error" });
  const title = editing ? `Edit rule ${start.name}` : "New rule";
  const form = el("form", { class: "rule-form", id: "rule-form", "aria-label": title, novalidate: true },
    el("h2", {}, title),
    el("div", { class: "field" }, el("label", { for: "rule-name" }, "Name"), name),
    el("div", { class: "field" }, el("label", { for: "rule-kind" }, "Kind"), kind),
    el("div", { class: "field" }, el("label", { for: "rule-severity" }, "Severity"), severity,
      el("small", {}, "The alerts' severity label, for a receiver's routing.")),
    pipelineField,
    paramsBox,
    el("div", { class: "field" }, el("label", { for: "rule-for" }, "Pending for (s)"), forSeconds,
      el("small", {}, "How long the condition must hold before the rule fires.")),
    el("div", { class: "field" }, el("label", { for: "rule-repeat" }, "Repeat every (s)"), repeat,
      el("small", {}, "Notify again this often while firing; empty: never again.")),
    el("div", { class: "field" }, el("label", { for: "rule-enabled" }, "Enabled"), enabled),
    el("fieldset", { class: "sub-form", "data-field": "notify" }, el("legend", {}, "Notify"), targetsBox, addTarget),
    message,
    el("div", { class: "actions" },
      el("button", { type: "submit" }, editing ? "Save rule" : "Create rule"),
      editing ? el("button", { type: "button", class: "secondary", onclick: onCancel }, "Cancel") : ""));

  const definition = () => {
    const chosen = [...boxes.filter((b) => b.checked).map((b) => b.value), ...others.value.split(",").map((id) => id.trim()).filter(Boolean)];
    const values = {};
    for (const [key, p] of params) {
      const value = p.read();
      if (value !== undefined) values[key] = value;
    }
    return {
      name: name.value,
      kind: kind.value,
      severity: severity.value,
      pipeline_ids: kind.value === "ingest_health" ? [] : chosen,
      for_seconds: numberOf(forSeconds, 0),
      repeat_seconds: numberOf(repeat, null),
      params: values,
      notify: readTargets(),
      enabled: enabled.checked,
    };
  };

  // The field the service named, or the nearest enclosing one (notify[1].to[0] -> notify[1].to -> notify[1]).
  const fieldOf = (parameter) => {
    for (let path = parameter; ;) {
      const found = form.querySelector(`[data-field="${CSS.escape(path)}"]`);
      if (found) return found;
      const shorter = path.replace(/(\.[^.[\]]+|\[\d+\])$/, "");
      if (shorter === path || !shorter) return null;
      path = shorter;
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const marked of form.querySelectorAll("[aria-invalid]")) marked.removeAttribute("aria-invalid");
    message.textContent = "";
    try {
      const path = editing ? `/api/alerts/rules/${encodeURIComponent(rule.id)}` : "/api/alerts/rules";
      const saved = await api(path, { method: editing ? "PUT" : "POST", json: definition() });
      onSaved(saved);
    } catch (error) {
      message.textContent = error.message;
      const field = error.parameter ? fieldOf(error.parameter) : null;
      if (field) {
        field.setAttribute("aria-invalid", "true");
        field.setAttribute("aria-describedby", message.id);
        if (field.focus) field.focus();
      }
    }
  });
  showParams();
  showTargets(start.notify);
  return form;
}
