"""Security headers on every response: the API's JSON and, above all, the web UI's pages."""

from __future__ import annotations

from flask import Flask, Response

_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# Pages load only their own scripts, styles and API: no inline script, nothing from elsewhere.
_PAGES = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
}


def install_security_headers(app: Flask) -> None:
    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in _ALWAYS.items():
            response.headers.setdefault(name, value)
        if response.mimetype == "text/html":
            for name, value in _PAGES.items():
                response.headers.setdefault(name, value)
        return response
