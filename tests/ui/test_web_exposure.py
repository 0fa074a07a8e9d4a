"""Issue 16, web exposure, in a real browser: with default settings a page of another origin (another
loopback address, or ``http://localhost:3000``) can neither read ``/api/*`` nor create or run a
pipeline, by fetch, by form POST, or by DNS rebinding (its own name resolved to the service, so the
service sees a forged ``Host``); with ``ALLOW_ORIGINS`` and the API token set, the same page can.

Chromium's own Private/Local Network Access checks are turned off: Firefox and Safari have none, and
the defences under test are the service's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import LiveServer, start_server

TOKEN = "page-token-7c2e"
DEV_SERVER = "http://localhost:3000"  # never bound: page.route answers for it
REBOUND = "rebind.test"  # the attacker's name, resolved to 127.0.0.1 after the page loaded
PAGE = b"<!doctype html><title>another origin</title><p>a page of another origin</p>"

# What a script on the page tries; each outcome is a status, "opaque" (no-cors: sent, answer unreadable)
# or "blocked" (the browser refused: a failed preflight or CORS check).
ATTEMPTS = """async ({ api, target, code, token }) => {
  const auth = token ? { Authorization: `Bearer ${token}` } : {};
  const outcome = async (request) => {
    try {
      const response = await request;
      if (response.type === "opaque") return "opaque";
      return { status: response.status, body: await response.json() };
    } catch (error) {
      return "blocked";
    }
  };
  const json = (body) => ({
    method: "POST", headers: { "Content-Type": "application/json", ...auth }, body: JSON.stringify(body),
  });
  const name = `from a page ${Math.random()}`;  // names are unique; each attempt defines one
  const created = await outcome(
    fetch(`${api}/api/pipelines`, json({ name, template: "dlt_code", params: { code } })));
  return {
    read: await outcome(fetch(`${api}/api/pipelines`, { headers: auth })),
    create: created,
    run: await outcome(fetch(`${api}/api/pipelines/${created.body ? created.body.id : target}/runs`,
      json({}))),
    create_simple: await outcome(fetch(`${api}/api/pipelines`, { method: "POST", mode: "no-cors",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify({ name: "simple", template: "dlt_code", params: { code } }) })),
    run_simple: await outcome(fetch(`${api}/api/pipelines/${target}/runs`,
      { method: "POST", mode: "no-cors" })),
  };
}"""

FORM_POST = """({ action }) => {
  const frame = Object.assign(document.createElement("iframe"), { name: "sink" });
  const form = Object.assign(document.createElement("form"), { method: "POST", action, target: "sink" });
  document.body.append(frame, form);
  form.submit();
}"""


def _code(marker: Path) -> str:
    """User code that leaves a file behind when it runs: the proof that it ran."""
    return (
        "import pathlib\nimport dlt\n\n"
        f"pathlib.Path({str(marker)!r}).write_text('ran')\n\n"
        "def data_source():\n    return dlt.resource([{'id': 1}], name='one')\n"
    )


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows no server chatter
        pass


@pytest.fixture(scope="module")
def other_origin() -> Iterator[str]:
    """A real page on another loopback address (127.0.0.2; Linux routes all of 127/8 to lo)."""
    server = ThreadingHTTPServer(("127.0.0.2", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(chromium: str | None) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1",
                  "--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessSendPreflights,"
                  "PrivateNetworkAccessRespectPreflightResults,BlockInsecurePrivateNetworkRequests"],
        )  # fmt: skip
        yield launched
        launched.close()


def _open(browser: Browser, url: str) -> Page:
    """A tab showing ``url``; a page for it is served by the test unless it names a real server."""
    page = browser.new_context().new_page()
    if url.startswith("http://127.0.0.2"):
        page.goto(url + "/")
        return page
    page.route(url + "/", lambda route: route.fulfill(status=200, content_type="text/html", body=PAGE))
    page.goto(url + "/")
    # While any route is set, Playwright answers CORS preflights itself, allowing everything: the
    # page's requests must meet the browser's real checks, so the route goes once the page is shown.
    page.unroute_all()
    return page


def _form_post_status(page: Page, action: str) -> int:
    with page.expect_response(action) as answer:
        page.evaluate(FORM_POST, {"action": action})
    return answer.value.status


def _target(server: LiveServer) -> str:
    """A pipeline the page would like to run (not user code: that is refused on its own)."""
    response = server.post(
        "/api/pipelines", json={"name": "target", "template": "simple", "params": {"bucket_url": "/nowhere"}}
    )
    assert response.status_code == 201, response.text
    target: str = response.json()["id"]
    return target


def _untouched(server: LiveServer, target: str, marker: Path) -> None:
    assert [p["id"] for p in server.get("/api/pipelines").json()["pipelines"]] == [target]
    assert server.get(f"/api/pipelines/{target}/runs").json()["runs"] == []
    assert not marker.exists()


@pytest.fixture
def default_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(tmp_path / "data")
    yield server
    server.stop()


@pytest.mark.parametrize("origin", ["other loopback address", DEV_SERVER])
def test_with_default_settings_a_page_of_another_origin_can_neither_read_nor_run(
    default_server: LiveServer, browser: Browser, other_origin: str, tmp_path: Path, origin: str
) -> None:
    target, marker = _target(default_server), tmp_path / "ran"
    page = _open(browser, other_origin if origin == "other loopback address" else DEV_SERVER)
    sent: list[tuple[str, str, int]] = []
    page.on(
        "response", lambda r: sent.append((r.request.method, r.url, r.status)) if "/api/" in r.url else None
    )
    try:
        args = {"api": default_server.url, "target": target, "code": _code(marker), "token": None}
        outcomes = page.evaluate(ATTEMPTS, args)
        assert outcomes == {
            "read": "blocked", "create": "blocked", "run": "blocked",
            "create_simple": "opaque", "run_simple": "opaque",
        }  # fmt: skip
        # What did reach the service (the requests that need no preflight) was refused.
        assert sorted(status for method, _, status in sent if method == "POST") == [415, 415], sent
        assert _form_post_status(page, f"{default_server.url}/api/pipelines/{target}/runs") == 415
    finally:
        page.context.close()
    _untouched(default_server, target, marker)


def test_a_page_rebinding_its_name_to_the_service_gets_421(
    default_server: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    target, marker = _target(default_server), tmp_path / "ran"
    port = default_server.url.rsplit(":", 1)[1]
    origin = f"http://{REBOUND}:{port}"  # the same port: the service is now the page's own origin
    page = _open(browser, origin)
    try:
        outcomes = page.evaluate(
            ATTEMPTS, {"api": origin, "target": target, "code": _code(marker), "token": None}
        )
        for name in ("read", "create", "run"):
            assert outcomes[name]["status"] == 421, (name, outcomes[name])
            assert outcomes[name]["body"]["error"]["code"] == "untrusted_host"
        assert _form_post_status(page, f"{origin}/api/pipelines/{target}/runs") == 421
    finally:
        page.context.close()
    _untouched(default_server, target, marker)


def test_with_an_origin_and_the_token_set_the_same_pages_work(
    browser: Browser, other_origin: str, tmp_path: Path
) -> None:
    server = start_server(
        tmp_path / "data",
        env={"ALLOW_ORIGINS": f"{DEV_SERVER},{other_origin}", "PIPETRACE_API_TOKEN": TOKEN},
    )
    server.headers["Authorization"] = f"Bearer {TOKEN}"
    try:
        target = _target(server)
        for n, origin in enumerate((other_origin, DEV_SERVER)):
            marker = tmp_path / f"ran-{n}"
            page = _open(browser, origin)
            try:
                args = {"api": server.url, "target": target, "code": _code(marker), "token": TOKEN}
                outcomes = page.evaluate(ATTEMPTS, args)
            finally:
                page.context.close()
            assert outcomes["read"]["status"] == 200 and outcomes["read"]["body"]["pipelines"]
            assert outcomes["create"]["status"] == 201, outcomes["create"]
            assert outcomes["run"]["status"] == 202, outcomes["run"]
            deadline = time.monotonic() + 120
            while not marker.exists():  # the code the page sent ran
                assert time.monotonic() < deadline, f"the run never ran the page's code: {outcomes}"
                time.sleep(0.2)
        assert requests.get(f"{server.url}/api/pipelines", timeout=10).status_code == 401  # still guarded
    finally:
        server.stop()
