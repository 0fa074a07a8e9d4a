// Turning API values into text for the page.

export const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

export function levelOf(record) {
  const n = record.severity_number || 0;
  return n ? LEVELS[Math.min(Math.floor((n - 1) / 4), LEVELS.length - 1)] : "UNSET";
}

// Log values keep OTLP's types in the API: a string, or an OTLP/JSON AnyValue object. Shown plain here.
const ANY_VALUE_KEYS = ["stringValue", "boolValue", "intValue", "doubleValue", "bytesValue", "arrayValue", "kvlistValue"];

export function plainValue(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const kind = ANY_VALUE_KEYS.find((key) => key in value);
  if (kind === undefined) return Object.keys(value).length === 0 ? null : value;
  const inner = value[kind];
  if (kind === "intValue") return Number.isSafeInteger(Number(inner)) ? Number(inner) : String(inner);
  if (kind === "bytesValue") return `bytes(base64) ${inner}`;
  if (kind === "arrayValue") return (inner.values || []).map(plainValue);
  if (kind === "kvlistValue") return Object.fromEntries((inner.values || []).map((kv) => [kv.key, plainValue(kv.value)]));
  return inner;
}

// A value in the API's typed form with the name of its OTLP type: a string is a JSON string, anything
// else an AnyValue object.
export function typedValue(value) {
  if (typeof value === "string") return { text: value, type: "string" };
  const kind = value && typeof value === "object" ? ANY_VALUE_KEYS.find((key) => key in value) : undefined;
  if (kind === undefined) return { text: value === null || value === undefined ? "(empty)" : JSON.stringify(value), type: "empty" };
  const plain = plainValue(value);
  const type = { stringValue: "string", boolValue: "bool", intValue: "int", doubleValue: "double", bytesValue: "bytes", arrayValue: "array", kvlistValue: "map" }[kind];
  return { text: typeof plain === "object" && plain !== null ? JSON.stringify(plain, null, 2) : String(plain), type };
}

export function plainMap(map) {
  return Object.fromEntries(Object.entries(map || {}).map(([key, value]) => [key, plainValue(value)]));
}

export function bodyText(record) {
  const body = plainValue(record.body);
  return typeof body === "string" ? body : body === null || body === undefined ? "" : JSON.stringify(body);
}

// A record without a time of its own is placed by its observed (or received) time.
export function recordTime(record) {
  return record.timestamp || record.sort_timestamp;
}

// Times are shown in UTC, as the API gives them, and say so.
export function shortTime(iso) {
  return iso ? `${iso.replace("T", " ").replace(/\.(\d{3})\d*Z$/, ".$1").replace(/Z$/, "")} UTC` : "";
}

// A table cell's time: the date and the clock apart, so a narrow table can put them on two lines.
export function timeParts(iso) {
  const [date, clock] = shortTime(iso).split(" ");
  return clock ? [`${date} UTC`, ` ${clock}`] : ["", ""];
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

// RFC 3339 with nanoseconds to milliseconds since 1970, keeping sub-millisecond digits as a fraction.
export function ns(iso) {
  const match = /^(.*)\.(\d+)Z$/.exec(iso || "");
  if (!match) return Date.parse(iso);
  return Date.parse(`${match[1]}Z`) + Number(`0.${match[2]}`) * 1000;
}
