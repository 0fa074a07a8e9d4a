// Names where the API gives ids: pipelines by name, services for the pick-lists.

import { api } from "./api.js";
import { el } from "./dom.js";

let pipelinesAt = 0;
let pipelines = Promise.resolve([]);

// The pipelines are read again at most every ten seconds: one request per view, not one per row.
export function knownPipelines() {
  if (Date.now() - pipelinesAt > 10_000) {
    pipelinesAt = Date.now();
    pipelines = api("/api/pipelines").then((body) => body.pipelines, () => []);
  }
  return pipelines;
}

export async function pipelineNames() {
  return new Map((await knownPipelines()).map((p) => [p.id, p.name]));
}

// A pipeline's name, its id kept as the tooltip; an id no pipeline has (telemetry sent from outside)
// stays as it is.
export function pipelineLabel(id, names) {
  if (!id) return "";
  const name = names && names.get(id);
  return name ? el("span", { title: id, class: "pipeline-name" }, name) : id;
}

export async function serviceNames() {
  return (await api("/api/services")).services;
}

// A pick-list whose choices come from the API; the current value stays selectable even when the
// list no longer has it (a link from elsewhere, or data since deleted).
export function pickList(name, label, current, choices, anyText = "any") {
  const values = [...choices];
  if (current && !values.some(([value]) => value === current)) values.push([current, current]);
  return el("label", {}, `${label} `, el("select", { name },
    el("option", { value: "" }, anyText),
    values.map(([value, text]) => el("option", { value, selected: value === current }, text))));
}
