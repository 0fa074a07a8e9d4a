// Pipetrace's web UI: plain ES modules over the JSON API, no build step, no framework. This module is
// the router: one view module per page under views/, shared helpers beside it.

import { startFiringBadge } from "./alertbadge.js";
import { el, nextPage, view } from "./dom.js";
import { alertsView } from "./views/alerts.js";
import { logsView } from "./views/logs.js";
import { pipelinesView } from "./views/pipelines.js";
import { runView } from "./views/run.js";
import { statsView } from "./views/stats.js";
import { traceView } from "./views/trace.js";
import { tracesView } from "./views/traces.js";

let cleanup = () => {};

function params(hash) {
  const query = hash.includes("?") ? hash.slice(hash.indexOf("?") + 1) : "";
  return new URLSearchParams(query);
}

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
  nextPage();
  try {
    if (name === "trace" && id) cleanup = await traceView(decodeURIComponent(id), filters);
    else if (name === "traces") cleanup = await tracesView(filters);
    else if (name === "run" && id) cleanup = await runView(decodeURIComponent(id));
    else if (name === "pipelines") cleanup = await pipelinesView();
    else if (name === "stats") cleanup = await statsView(filters);
    else if (name === "alerts") cleanup = await alertsView();
    else cleanup = await logsView(filters);
  } catch (error) {
    view.replaceChildren(el("h1", {}, "Something went wrong"), el("p", {}, error.message));
  }
}

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
startFiringBadge();
