// The panel of one span: everything the API stores of it, attributes with their types.

import { attributeTable, exceptionBlock } from "./attributes.js";
import { el } from "./dom.js";
import { shortTime } from "./format.js";

function section(title, ...content) {
  return el("section", {}, el("h3", {}, title), ...content);
}

function eventItem(event) {
  return el("li", { class: "event" },
    el("p", {}, el("strong", {}, event.name), " ", el("span", { class: "time" }, shortTime(event.timestamp))),
    exceptionBlock(event.attributes),
    attributeTable(event.attributes, `attributes of event ${event.name}`));
}

function linkItem(link) {
  return el("li", { class: "link" },
    el("a", { href: `#/trace/${link.trace_id}?span=${link.span_id}` }, `${link.trace_id} / ${link.span_id}`),
    attributeTable(link.attributes, "attributes of the link"));
}

export function spanDetail(span, onClose) {
  const code = (span.status && span.status.code) || "UNSET";
  const dropped = [["attributes", span.dropped_attributes_count], ["events", span.dropped_events_count], ["links", span.dropped_links_count]]
    .filter(([, count]) => count).map(([what, count]) => `${count} ${what}`);
  return el("aside", { class: "span-detail", "aria-label": `Span ${span.name}`, "data-span-id": span.span_id },
    el("header", {}, el("h2", {}, span.name), el("button", { type: "button", class: "close", "aria-label": "Close the span panel", onclick: onClose }, "×")),
    el("dl", { class: "ids" },
      el("dt", {}, "service"), el("dd", { class: "span-service" }, span.service_name || "-"),
      el("dt", {}, "status"), el("dd", { class: "span-status" }, el("span", { class: `badge status-${code}` }, code), span.status && span.status.message ? ` ${span.status.message}` : ""),
      el("dt", {}, "kind"), el("dd", {}, span.kind || "-"),
      el("dt", {}, "start"), el("dd", {}, shortTime(span.start)),
      el("dt", {}, "duration"), el("dd", {}, span.duration_ms === null ? "-" : `${span.duration_ms.toFixed(3)} ms`),
      el("dt", {}, "span id"), el("dd", {}, span.span_id),
      el("dt", {}, "parent"), el("dd", {}, span.parent_span_id || "-"),
      dropped.length ? [el("dt", {}, "dropped"), el("dd", {}, dropped.join(", "))] : ""),
    section("Attributes", attributeTable(span.attributes, "span attributes")),
    section(`Events (${span.events.length})`, span.events.length ? el("ol", { class: "events" }, span.events.map(eventItem)) : el("p", { class: "muted" }, "none")),
    section(`Links (${span.links.length})`, span.links.length ? el("ul", { class: "links" }, span.links.map(linkItem)) : el("p", { class: "muted" }, "none")),
    section("Resource", attributeTable(span.resource, "resource attributes")),
    section("Scope", span.scope
      ? [el("p", {}, `${span.scope.name || "(no name)"}${span.scope.version ? ` ${span.scope.version}` : ""}`), attributeTable(span.scope.attributes, "scope attributes")]
      : el("p", { class: "muted" }, "none")),
  );
}
