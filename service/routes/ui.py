"""``GET /``: the log explorer, static files over the same JSON API (no build step, no framework)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

UI_FOLDER = Path(__file__).resolve().parent.parent / "ui"

blueprint = Blueprint("ui", __name__, static_folder=str(UI_FOLDER), static_url_path="/ui")


@blueprint.get("/")
def index() -> Response:
    response = send_from_directory(UI_FOLDER, "index.html")
    # The page itself is tiny and changes with the service; its scripts are revalidated too.
    response.headers["Cache-Control"] = "no-cache"
    return response
