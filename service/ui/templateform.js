// The parameters of a template as a form, built from the template's JSON schema (GET /api/templates):
// plain inputs for strings, numbers, booleans and choices; a list box for lists of strings; a
// sub-form for objects of known fields (a paginator, an auth); a JSON editor, checked as it is typed,
// for the rest (lists of objects, maps). values() gives the params typed as the schema says.

import { el } from "./dom.js";

const types = (schema) => [].concat(schema.type || (schema.enum ? "enum" : "string"));
const isObjectForm = (schema) => types(schema).includes("object") && schema.properties && !schema.additionalProperties;
const isStringList = (schema) => types(schema).includes("array") && schema.items && types(schema.items).includes("string") && !schema.items.enum;

// A skeleton for a JSON editor: the default, or one item with the required fields.
function skeleton(schema) {
  if (schema.default !== undefined && !(Array.isArray(schema.default) && schema.default.length === 0 && schema.minItems)) return schema.default;
  if (types(schema).includes("array")) {
    const item = schema.items || {};
    return schema.minItems ? [Object.fromEntries((item.required || []).map((key) => [key, ""]))] : [];
  }
  return {};
}

function field(path, schema, required) {
  const id = `param-${path.join("-")}`;
  const name = path.join(".");
  const label = el("label", { for: id }, path.at(-1), required ? " *" : "");
  const help = schema.description ? el("small", {}, schema.description) : "";
  const kinds = types(schema);
  let input;
  let read;
  if (schema.enum) {
    const choices = required || schema.default !== undefined ? schema.enum : ["", ...schema.enum];
    input = el("select", { id, name }, choices.map((v) => el("option", { value: v, selected: v === schema.default }, v === "" ? "(not set)" : v)));
    read = () => (input.value === "" ? undefined : input.value);
  } else if (kinds.includes("boolean")) {
    input = el("input", { id, name, type: "checkbox", checked: schema.default === true });
    read = () => input.checked;
  } else if (kinds.includes("integer") || kinds.includes("number")) {
    const integer = kinds.includes("integer");
    input = el("input", { id, name, type: "number", step: integer ? "1" : "any", min: schema.minimum, max: schema.maximum, value: schema.default ?? "", required });
    read = () => (input.value === "" ? undefined : integer ? Number.parseInt(input.value, 10) : Number(input.value));
  } else if (isObjectForm(schema)) {
    return objectForm(path, schema, required);
  } else if (isStringList(schema)) {
    input = el("textarea", { id, name, rows: "3", cols: "40", placeholder: "one per line" }, (schema.default || []).join("\n"));
    read = () => {
      const lines = input.value.split("\n").map((line) => line.trim()).filter(Boolean);
      return lines.length || required ? lines : undefined;
    };
  } else if (kinds.includes("array") || kinds.includes("object")) {
    return jsonEditor(path, schema, required);
  } else if (path.at(-1) === "code") {
    input = el("textarea", { id, name, rows: "8", cols: "70", required }, schema.default ?? "");
    read = () => (input.value === "" ? undefined : input.value);
  } else {
    input = el("input", { id, name, type: schema["x-secret"] ? "password" : "text", value: schema.default ?? "", required, size: "40", autocomplete: "off" });
    read = () => (input.value === "" ? undefined : input.value);
  }
  const node = el("div", { class: "field" }, label, input, help);
  return { node, read, check: () => null };
}

// An object of known fields (a paginator, an auth): its fields in a group; only those given are sent.
function objectForm(path, schema, required) {
  const needed = new Set(schema.required || []);
  const children = Object.entries(schema.properties).map(([key, sub]) => [key, field([...path, key], { ...sub, default: (schema.default || {})[key] ?? sub.default }, needed.has(key))]);
  const node = el("fieldset", { class: "sub-form", "data-param": path.join(".") },
    el("legend", {}, path.at(-1), required ? " *" : ""),
    schema.description ? el("small", {}, schema.description) : "",
    children.map(([, child]) => child.node));
  const read = () => {
    const value = {};
    for (const [key, child] of children) {
      const got = child.read();
      if (got !== undefined) value[key] = got;
    }
    return Object.keys(value).length ? value : undefined;
  };
  const check = () => children.map(([, child]) => child.check()).find(Boolean) || null;
  return { node, read, check };
}

// Anything else as JSON, parsed as it is typed; the service checks it against the schema on submit.
function jsonEditor(path, schema, required) {
  const id = `param-${path.join("-")}`;
  const wantArray = types(schema).includes("array");
  const input = el("textarea", { id, name: path.join("."), rows: "6", cols: "70", class: "json", spellcheck: "false" }, JSON.stringify(skeleton(schema), null, 2));
  const problem = el("small", { class: "form-error", role: "alert", id: `${id}-error` });
  input.setAttribute("aria-describedby", problem.id);
  const parse = () => {
    if (!input.value.trim()) return { value: undefined, error: required ? "required" : null };
    try {
      const value = JSON.parse(input.value);
      if (wantArray !== Array.isArray(value) || value === null || typeof value !== "object") {
        return { value, error: `must be a JSON ${wantArray ? "array ([...])" : "object ({...})"}` };
      }
      return { value, error: null };
    } catch (error) {
      return { value: undefined, error: `not valid JSON: ${error.message}` };
    }
  };
  const check = () => {
    const { error } = parse();
    problem.textContent = error ? `${path.join(".")}: ${error}` : "";
    input.setAttribute("aria-invalid", String(Boolean(error)));
    return error ? problem.textContent : null;
  };
  input.addEventListener("input", check);
  const hint = `JSON ${wantArray ? "array" : "object"}${schema.description ? `: ${schema.description}` : ""}`;
  const node = el("div", { class: "field" }, el("label", { for: id }, path.at(-1), required ? " *" : ""), input, el("small", {}, hint), problem);
  return { node, read: () => parse().value, check };
}

export function templateForm(schema) {
  const required = new Set(schema.required || []);
  const fields = Object.entries(schema.properties || {}).map(([key, sub]) => [key, field([key], sub, required.has(key))]);
  return {
    nodes: fields.map(([, f]) => f.node),
    check: () => fields.map(([, f]) => f.check()).find(Boolean) || null,
    values: () => {
      const params = {};
      for (const [key, f] of fields) {
        const value = f.read();
        if (value !== undefined) params[key] = value;
      }
      return params;
    },
  };
}
