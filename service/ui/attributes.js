// Attribute maps as key, value and OTLP type; an exception's stack trace as the lines it was.

import { el } from "./dom.js";
import { plainValue, typedValue } from "./format.js";

export function attributeTable(map, label) {
  const entries = Object.entries(map || {});
  if (!entries.length) return el("p", { class: "muted" }, "none");
  return el("table", { class: "attrs", "aria-label": label },
    el("tbody", {}, entries.map(([key, value]) => {
      const { text, type } = typedValue(value);
      return el("tr", {}, el("th", { scope: "row" }, key), el("td", { class: "value" }, text), el("td", { class: "type" }, type));
    })));
}

// OTel's semantic conventions put an exception in exception.type, .message and .stacktrace (on a log
// record's attributes, or on a span event named "exception").
export function exceptionBlock(attributes) {
  const get = (key) => (attributes && key in attributes ? plainValue(attributes[key]) : undefined);
  const stack = get("exception.stacktrace");
  const type = get("exception.type");
  const message = get("exception.message");
  if (stack === undefined && type === undefined && message === undefined) return "";
  return el("div", { class: "exception" },
    el("p", { class: "exception-title" }, [type, message].filter((part) => part !== undefined).join(": ")),
    stack !== undefined ? el("pre", { class: "stacktrace" }, String(stack)) : "");
}
