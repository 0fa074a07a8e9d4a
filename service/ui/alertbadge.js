// The header's count of firing alert rules, on every view, linking to the Alerts view. Read every
// REFRESH_MS as the UI's other reads are (quiet: not recorded by the service), and at once by the
// Alerts view whenever it reads the rules itself.

import { authHeaders, quietTraceparent } from "./api.js";

const REFRESH_MS = 10_000;

function badge() {
  return document.getElementById("firing-alerts");
}

// Show the rules' firing count; with an error, say the count is unknown rather than keep a stale one.
export function showFiring(rules, error) {
  const node = badge();
  if (error) {
    node.hidden = false;
    node.className = "alerts-unknown";
    node.textContent = "alerts ?";
    node.title = `The alert rules could not be read: ${error}`;
    return;
  }
  const firing = rules.filter((rule) => rule.state === "firing");
  node.hidden = firing.length === 0;
  node.className = "alerts-firing";
  node.textContent = `${firing.length} firing`;
  node.title = firing.map((rule) => rule.name).join(", ");
  node.setAttribute("aria-label", `${firing.length} alert ${firing.length === 1 ? "rule" : "rules"} firing`);
}

async function refresh() {
  // Not api(): a poll in the background never asks for the token; the view the user opened does.
  try {
    const response = await fetch("/api/alerts/rules", { headers: { ...authHeaders(), traceparent: quietTraceparent() } });
    if (response.status === 401) {
      badge().hidden = true;
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) showFiring([], body.error ? body.error.message : `${response.status} ${response.statusText}`);
    else showFiring(body.rules);
  } catch (error) {
    showFiring([], error.message);
  }
}

export function startFiringBadge() {
  refresh();
  setInterval(refresh, REFRESH_MS);
}
