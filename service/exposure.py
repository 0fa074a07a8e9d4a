"""What a web page can do to the service: as little as possible unless it is configured.

A page the browser shows may send requests here without asking anyone: one from another origin sends
"simple" requests (a form POST, a ``no-cors`` fetch) without a CORS preflight, and one whose site
rebinds its own name to 127.0.0.1 (DNS rebinding) reads the answers, as they are same-origin to it.
So every request must name a trusted host (rebinding sends the attacker's name), and a request that
changes state under ``/api/`` must be one a browser sends only after a preflight, which no origin
passes unless ``ALLOW_ORIGINS`` names it: a JSON body, or the API token (an ``Authorization`` header).
CORS itself is configured in ``service.app``; the token check in ``service.auth``.
"""

from __future__ import annotations

from flask import Flask, Response, request

from service.auth import API_PREFIX
from service.errors import error_response

# Safe methods change nothing; OPTIONS is the preflight itself.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def host_name(host: str) -> str:
    """The name of a Host header, without its port, lower case, IPv6 without brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() else host


def install_host_check(app: Flask, trusted: frozenset[str]) -> None:
    """Answer 421 to a request whose Host header names no trusted host (before any other check)."""

    @app.before_request
    def _trusted_host() -> Response | None:
        name = host_name(request.headers.get("Host", ""))
        if "*" in trusted or name in trusted:
            return None
        return error_response(
            421, "untrusted_host", f"this service does not answer for host {name or '(none)'!r}; add it to "
            "PIPETRACE_ALLOWED_HOSTS if clients reach the service by that name", "Host",
        )  # fmt: skip


def install_preflight_only_writes(app: Flask, api_token: str | None) -> None:
    """Refuse (415) a state-changing ``/api/`` request that a browser could send without a preflight.

    With the API token set, the token check already demands an ``Authorization`` header, which only a
    preflighted request carries; without it, a JSON content type is what no simple request can have.
    """

    @app.before_request
    def _json_or_token() -> Response | None:
        if request.method in _SAFE_METHODS or not request.path.startswith(API_PREFIX):
            return None
        if api_token is not None or request.mimetype == "application/json":
            return None
        sent = request.mimetype or "none"
        return error_response(
            415, "unsupported_media_type", f"{request.method} {request.path} needs 'Content-Type: "
            f"application/json' (sent: {sent}), so that no web page can send it without asking first",
            "Content-Type",
        )  # fmt: skip
