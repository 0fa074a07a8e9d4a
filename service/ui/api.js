// The JSON API, with the token kept for the browser session.
//
// The UI's reads ask the service not to record them: each GET carries a W3C traceparent whose sampled
// flag is off, so the service's parent-based sampler records no span and its access log (which logs
// sampled requests) no line. The user's view is not filled with the UI's own polling. Writes (creating
// or starting a pipeline) stay traced: the run links back to the request's trace.

const TOKEN_KEY = "pipetrace.token";

function askToken() {
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(input.value), { once: true });
    input.value = "";
    dialog.showModal();
    input.focus();
  });
}

function hex(bytes) {
  return [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export function quietTraceparent() {
  return `00-${hex(16)}-${hex(8)}-00`;
}

export function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export async function renewToken() {
  sessionStorage.setItem(TOKEN_KEY, await askToken());
}

export async function api(path, options = {}) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const method = options.method || "GET";
    // Every write is JSON: the service refuses a write that a plain form could send.
    const json = options.json !== undefined ? options.json : method === "GET" ? undefined : {};
    const headers = { ...(options.headers || {}) };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (method === "GET") headers.traceparent = quietTraceparent();
    if (json !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: json !== undefined ? JSON.stringify(json) : undefined,
    });
    if (response.status === 401) {
      sessionStorage.setItem(TOKEN_KEY, await askToken());
      continue;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(body.error ? body.error.message : `${response.status} ${response.statusText}`);
      error.status = response.status;
      error.parameter = body.error ? body.error.parameter : undefined; // the field a 400 names
      throw error;
    }
    return body;
  }
  throw new Error("the API token was not accepted");
}

// A Server-Sent Events stream read with fetch (EventSource cannot send the token or the traceparent).
// Calls onEvent(name, data) per event; resolves when the stream ends; rejects on an HTTP error, with
// the error's status and Retry-After.
export async function readEvents(path, onEvent, signal) {
  const headers = { ...authHeaders(), traceparent: quietTraceparent(), Accept: "text/event-stream" };
  const response = await fetch(path, { headers, signal });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    const error = new Error(body.error ? body.error.message : `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.retryAfter = Number(response.headers.get("Retry-After")) || 5;
    throw error;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}
