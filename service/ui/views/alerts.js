// Alert rules with their state, silences, test notifications, and the history of transitions and
// their deliveries. The tables are read again every REFRESH_MS; the forms are left as the user has them.

import { showFiring } from "../alertbadge.js";
import { ruleForm } from "../alertform.js";
import { api } from "../api.js";
import { el, statusLine, view } from "../dom.js";
import { shortTime, timeParts } from "../format.js";
import { knownPipelines, pipelineLabel } from "../names.js";

const REFRESH_MS = 3_000;
const HOUR_MS = 3_600_000;
const HISTORY_PAGE = 50;

function stateBadge(state) {
  return el("span", { class: `badge alert-${state}` }, state);
}

function subjectLabel(key, names) {
  return key ? pipelineLabel(key, names) : "the store";
}

// Silences still in force that mute this rule: its own (for all its subjects or one pipeline), and
// those of a pipeline it watches (for every rule). Ended ones are listed by the API until deleted.
function silencesOf(rule, silences, now) {
  return silences.filter((s) => {
    if (Date.parse(s.until) <= now || (s.rule_id && s.rule_id !== rule.id)) return false;
    if (s.rule_id) return true;
    // A pipeline's silence mutes the subjects that are that pipeline: not the service, not the store.
    if (rule.kind === "ingest_health" || (rule.kind === "log_condition" && !rule.pipeline_ids.length)) return false;
    return !rule.pipeline_ids.length || rule.pipeline_ids.includes(s.pipeline_id);
  });
}

function silenceText(silence, names) {
  const pipeline = silence.pipeline_id ? [" for ", pipelineLabel(silence.pipeline_id, names)] : [];
  return ["muted", ...pipeline, silence.rule_id ? "" : " (every rule)", ` until ${shortTime(silence.until)}`];
}

// Where a transition points: its run, trace and logs; a log rule's matching logs.
function links(entry, rule) {
  const { pipeline_id: pipeline, run_id: run, trace_id: trace } = entry.details || {};
  const found = [];
  if (run) found.push(el("a", { href: `#/run/${encodeURIComponent(run)}` }, "run"));
  if (trace) found.push(el("a", { href: `#/trace/${encodeURIComponent(trace)}` }, "trace"));
  if (rule && rule.kind === "log_condition") {
    const query = new URLSearchParams();
    const p = rule.params;
    if (p.text) query.set("q", p.text);
    if (p.level) query.set("level", p.level);
    if (p.service_name) query.set("service_name", p.service_name);
    if (pipeline) query.set("pipeline_id", pipeline);
    found.push(el("a", { href: `#/logs?${query}` }, "matching logs"));
  } else if (pipeline) {
    const query = new URLSearchParams({ pipeline_id: pipeline });
    if (run) query.set("run_id", run);
    found.push(el("a", { href: `#/logs?${query}` }, "logs"));
  }
  return found.flatMap((link, i) => (i ? [" · ", link] : [link]));
}

// A delivery names its target by place in the rule's list: shown as today's target only when the rule
// has not been edited since (an edit may have changed what stands at that place).
function deliveryItem(delivery, rule, at) {
  const current = rule && Date.parse(rule.updated_at) <= Date.parse(at);
  const target = current && rule.notify[delivery.target];
  const edited = rule && !current ? " of the rule before its last edit" : "";
  const where = target ? (target.type === "email" ? target.to.join(", ") : target.url) : `target ${delivery.target + 1}${edited}`;
  return el("li", { class: `delivery delivery-${delivery.status}` },
    `${delivery.channel} ${where} (${delivery.event}): `,
    el("strong", {}, delivery.status),
    `, ${delivery.attempts} ${delivery.attempts === 1 ? "attempt" : "attempts"}`,
    delivery.last_error ? el("span", { class: "form-error" }, ` · ${delivery.last_error}`) : "");
}

function historyTable(history, rules, names) {
  if (!history.length) return el("p", { class: "empty" }, "No transitions yet.");
  return el("div", { class: "scroll" }, el("table", { class: "alert-history", "aria-label": "Transitions and their notifications" },
    el("thead", {}, el("tr", {}, ["When", "Rule", "Subject", "Transition", "What", "Links", "Notifications"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, history.map((entry) => {
      const rule = rules.get(entry.rule_id);
      return el("tr", { "data-history-id": entry.id, "data-rule-id": entry.rule_id },
        el("td", { class: "time" }, el("time", { datetime: entry.at }, ...timeParts(entry.at).map((part, i) => el("span", { class: i ? "clock" : "date" }, part)))),
        el("td", {}, entry.rule_name),
        el("td", {}, subjectLabel(entry.key, names)),
        el("td", { class: "transition" }, stateBadge(entry.from), " → ", stateBadge(entry.to), entry.silenced ? el("small", { class: "muted" }, " silenced") : ""),
        el("td", {}, (entry.details || {}).summary || ""),
        el("td", {}, links(entry, rule)),
        el("td", {}, entry.deliveries.length ? el("ul", { class: "deliveries" }, entry.deliveries.map((d) => deliveryItem(d, rule, entry.at))) : el("span", { class: "muted" }, "none")));
    }))));
}

function silencesTable(active, rules, names, onEnd) {
  if (!active.length) return el("p", { class: "empty" }, "Nothing is muted.");
  const byId = new Map(rules.map((r) => [r.id, r.name]));
  return el("table", { class: "alert-silences", "aria-label": "Silences in force" },
    el("thead", {}, el("tr", {}, ["Rule", "Pipeline", "Until", "Comment", ""].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, active.map((s) => el("tr", { "data-silence-id": s.id },
      el("td", {}, s.rule_id ? byId.get(s.rule_id) || s.rule_id : "every rule"),
      el("td", {}, s.pipeline_id ? pipelineLabel(s.pipeline_id, names) : "every pipeline"),
      el("td", {}, shortTime(s.until)),
      el("td", {}, s.comment || ""),
      el("td", {}, el("button", { type: "button", class: "secondary", onclick: () => onEnd(s) }, "End"))))));
}

export async function alertsView() {
  const status = statusLine();
  const pipelines = await knownPipelines();
  const names = new Map(pipelines.map((p) => [p.id, p.name]));
  const note = el("p", { class: "form-note", role: "status", id: "alerts-note" });
  const rulesBox = el("div", { id: "alert-rules" });
  const historyBox = el("div", { id: "alert-history" });
  const editor = el("div", { id: "rule-editor" });
  const silencesBox = el("div", { id: "alert-silences" });
  let rules = [];
  let silences = [];
  let historyLimit = HISTORY_PAGE;

  const say = (text) => {
    note.textContent = text;
  };
  const act = async (doing, request, done) => {
    try {
      const answer = await request();
      if (done) say(done(answer));
      await refresh();
    } catch (error) {
      say(`${doing}: ${error.message}`);
    }
  };
  const mute = (rule, until, comment) => act(`Muting ${rule.name}`,
    () => api("/api/alerts/silences", { method: "POST", json: { rule_id: rule.id, until: until.toISOString(), ...(comment ? { comment } : {}) } }),
    (silence) => `${rule.name} muted until ${shortTime(silence.until)}.`);
  const endSilence = (silence) => api(`/api/alerts/silences/${encodeURIComponent(silence.id)}`, { method: "DELETE" });
  const unmute = (rule) => act(`Unmuting ${rule.name}`,
    () => Promise.all(silencesOf(rule, silences, Date.now()).filter((s) => s.rule_id === rule.id).map(endSilence)),
    () => `${rule.name} unmuted.`);
  const sendTest = (rule) => act(`Test notification of ${rule.name}`,
    () => api(`/api/alerts/rules/${encodeURIComponent(rule.id)}/test`, { method: "POST" }),
    ({ deliveries }) => `Test notification of ${rule.name}: ` + deliveries.map((d) => {
      const target = rule.notify[d.target];
      const where = target.type === "email" ? target.to.join(", ") : target.url;
      return `${d.channel} ${where} ${d.status} after ${d.attempts} ${d.attempts === 1 ? "attempt" : "attempts"}${d.last_error ? ` (${d.last_error})` : ""}`;
    }).join("; "));
  const remove = (rule) => {
    if (!confirm(`Delete the rule ${rule.name}? Its history stays.`)) return;
    act(`Deleting ${rule.name}`, () => api(`/api/alerts/rules/${encodeURIComponent(rule.id)}`, { method: "DELETE" }), () => `${rule.name} deleted.`);
  };

  const showNewForm = () => editor.replaceChildren(ruleForm({ rule: null, pipelines, onSaved: async (saved) => {
    say(`Rule ${saved.name} created.`);
    showNewForm();
    await refresh();
  } }));
  const edit = (rule) => {
    editor.replaceChildren(ruleForm({ rule, pipelines, onCancel: showNewForm, onSaved: async (saved) => {
      say(`Rule ${saved.name} saved.`);
      showNewForm();
      await refresh();
    } }));
    editor.scrollIntoView();
    document.getElementById("rule-name").focus();
  };

  // Muting until a chosen time: one form below the table, which the table's refreshes leave alone.
  const silenceRule = el("select", { id: "silence-rule" });
  const silencePipeline = el("input", { id: "silence-pipeline", list: "silence-pipelines", size: "30", placeholder: "every pipeline" });
  const silenceUntil = el("input", { id: "silence-until", type: "datetime-local" });
  const silenceComment = el("input", { id: "silence-comment", size: "30" });
  const silenceError = el("p", { class: "form-error", role: "alert", id: "silence-error" });
  const silenceForm = el("form", { class: "silence-form", id: "silence-form", "aria-label": "Mute until a time" },
    el("h2", {}, "Mute a rule or a pipeline until a time"),
    el("div", { class: "field" }, el("label", { for: "silence-rule" }, "Rule"), silenceRule),
    el("div", { class: "field" }, el("label", { for: "silence-pipeline" }, "Pipeline"), silencePipeline,
      el("datalist", { id: "silence-pipelines" }, pipelines.map((p) => el("option", { value: p.id }, p.name))),
      el("small", {}, "A pipeline id: mutes the rule (or every rule) for that pipeline only.")),
    el("div", { class: "field" }, el("label", { for: "silence-until" }, "Until (local time)"), silenceUntil),
    el("div", { class: "field" }, el("label", { for: "silence-comment" }, "Comment"), silenceComment),
    silenceError,
    el("button", { type: "submit" }, "Mute"));
  silenceForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    silenceError.textContent = "";
    const rule = rules.find((r) => r.id === silenceRule.value);
    const pipeline = silencePipeline.value.trim();
    const until = new Date(silenceUntil.value);
    if (Number.isNaN(until.getTime())) {
      silenceError.textContent = "until: choose a date and a time";
      return;
    }
    const body = { until: until.toISOString() };
    if (rule) body.rule_id = rule.id;
    if (pipeline) body.pipeline_id = pipeline;
    if (silenceComment.value) body.comment = silenceComment.value;
    try {
      const silence = await api("/api/alerts/silences", { method: "POST", json: body });
      say(`${rule ? rule.name : "Every rule"}${pipeline ? ` for ${pipeline}` : ""} muted until ${shortTime(silence.until)}.`);
      await refresh();
    } catch (error) {
      silenceError.textContent = error.message;
    }
  });
  const chooseUntil = (rule) => {
    silenceRule.value = rule.id;
    silenceForm.scrollIntoView();
    silenceUntil.focus();
  };

  const ruleRow = (rule, now) => {
    const muted = silencesOf(rule, silences, now);
    const own = muted.some((s) => s.rule_id === rule.id);
    const notOk = rule.subjects.filter((s) => s.state !== "ok");
    return el("tr", { "data-rule-id": rule.id, class: `rule state-${rule.state}` },
      el("td", {}, el("strong", { class: "rule-name" }, rule.name), rule.enabled ? "" : el("small", { class: "muted" }, " (disabled)")),
      el("td", {}, el("code", {}, rule.kind)),
      el("td", { class: "pipelines" }, rule.kind === "ingest_health" ? "the service" : rule.pipeline_ids.length ? rule.pipeline_ids.flatMap((id, i) => [i ? ", " : "", pipelineLabel(id, names)]) : "all"),
      el("td", { class: "state" }, stateBadge(rule.state),
        notOk.length ? el("ul", { class: "subjects" }, notOk.map((s) => el("li", {}, subjectLabel(s.key, names), `: ${s.state}`, s.details.summary ? ` · ${s.details.summary}` : ""))) : ""),
      el("td", { class: "evaluated" }, rule.evaluated_at ? shortTime(rule.evaluated_at) : el("span", { class: "muted" }, "not yet"),
        rule.evaluation_error ? el("div", { class: "form-error" }, rule.evaluation_error) : ""),
      el("td", { class: "silence" }, muted.length
        ? muted.map((s) => el("div", { class: "muted-until" }, silenceText(s, names)))
        : el("span", { class: "muted" }, "not muted")),
      el("td", {}, el("div", { class: "rule-actions" },
        el("button", { type: "button", class: "secondary", onclick: () => edit(rule) }, "Edit"),
        el("button", { type: "button", class: "secondary", disabled: !rule.notify.length, title: rule.notify.length ? "" : "The rule has no targets", onclick: () => sendTest(rule) }, "Send test"),
        own
          ? el("button", { type: "button", class: "secondary", onclick: () => unmute(rule) }, "Unmute")
          : [el("button", { type: "button", class: "secondary", onclick: () => mute(rule, new Date(Date.now() + HOUR_MS)) }, "Mute 1 h"),
            el("button", { type: "button", class: "secondary", onclick: () => mute(rule, new Date(Date.now() + 24 * HOUR_MS)) }, "Mute 1 d"),
            el("button", { type: "button", class: "secondary", onclick: () => chooseUntil(rule) }, "Mute until…")],
        el("button", { type: "button", class: "danger", onclick: () => remove(rule) }, "Delete"))));
  };

  let lastShown = "";
  const refresh = async () => {
    let answers;
    let history;
    let more;
    try {
      answers = await Promise.all([api("/api/alerts/rules"), api("/api/alerts/silences"), api(`/api/alerts/history?limit=${historyLimit}`)]);
      [{ rules }, { silences }, { history, next_before: more }] = answers;
    } catch (error) {
      status(`The alerts could not be read: ${error.message}`);
      return;
    }
    showFiring(rules);
    const now = Date.now();
    // Drawn again only when something changed (a silence ending is a change), so a refresh does not
    // take the focus from a button the user is on; when it did change, the focus goes to the same one.
    const shown = JSON.stringify([answers, silences.filter((si) => Date.parse(si.until) > now).map((si) => si.id)]);
    if (shown === lastShown) return;
    lastShown = shown;
    const focused = document.activeElement;
    const row = focused && focused.tagName === "BUTTON" ? focused.closest("[data-rule-id], [data-silence-id]") : null;
    rulesBox.replaceChildren(rules.length
      ? el("div", { class: "scroll" }, el("table", { class: "alert-rules", "aria-label": "Alert rules" },
        el("thead", {}, el("tr", {}, ["Rule", "Kind", "Pipelines", "State", "Last evaluation", "Silence", ""].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rules.map((rule) => ruleRow(rule, now)))))
      : el("p", { class: "empty" }, "No rules yet: create one below."));
    const chosen = silenceRule.value;
    silenceRule.replaceChildren(el("option", { value: "" }, "(every rule)"), ...rules.map((r) => el("option", { value: r.id, selected: r.id === chosen }, r.name)));
    silencesBox.replaceChildren(silencesTable(silences.filter((si) => Date.parse(si.until) > now), rules, names, (silence) =>
      act("Ending the silence", () => endSilence(silence), () => "Silence ended.")));
    historyBox.replaceChildren(historyTable(history, new Map(rules.map((r) => [r.id, r])), names),
      more !== null && historyLimit < 1000
        ? el("button", { type: "button", class: "more", onclick: () => { historyLimit += HISTORY_PAGE; refresh(); } }, `Show ${HISTORY_PAGE} older`)
        : "");
    if (row) {
      const [key, id] = row.dataset.ruleId ? ["rule-id", row.dataset.ruleId] : ["silence-id", row.dataset.silenceId];
      const again = [...view.querySelectorAll(`[data-${key}="${CSS.escape(id)}"] button`)].find((b) => b.textContent === focused.textContent);
      if (again) again.focus();
    }
    const firing = rules.filter((r) => r.state === "firing").length;
    status(`${rules.length} ${rules.length === 1 ? "rule" : "rules"}, ${firing} firing`);
  };

  view.replaceChildren(el("h1", {}, "Alerts"), note, rulesBox, el("h2", {}, "History"), historyBox, editor,
    el("h2", {}, "Silences"), silencesBox, silenceForm);
  showNewForm();
  await refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}
