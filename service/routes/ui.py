"""``GET /``: the log explorer, static files over the same JSON API (no build step, no framework)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

UI_FOLDER = Path(__file__).resolve().parent.parent / "ui"

blueprint = Blueprint("ui", __name__, static_folder=str(UI_FOLDER), static_url_path="/ui")


@blueprint.get("/")
def index() -> Response:
    # Read whole (it is tiny) rather than streamed: nothing is left open if a client goes away early.
    response = Response((UI_FOLDER / "index.html").read_bytes(), mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"  # it changes with the service
    return response


@blueprint.get("/favicon.ico")
def favicon() -> Response:
    # Browsers ask for it on every page load; answered, it is no 404 at WARN in the user's logs.
    response = Response((UI_FOLDER / "favicon.svg").read_bytes(), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "max-age=86400"
    return response
