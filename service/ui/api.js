// The JSON API, with the token kept for the browser session.

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

export async function api(path, options = {}) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const method = options.method || "GET";
    // Every write is JSON: the service refuses a write that a plain form could send.
    const json = options.json !== undefined ? options.json : method === "GET" ? undefined : {};
    const headers = { ...(options.headers || {}) };
    if (token) headers.Authorization = `Bearer ${token}`;
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
      throw error;
    }
    return body;
  }
  throw new Error("the API token was not accepted");
}
