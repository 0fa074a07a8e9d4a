"""``POST /api/backup``: a consistent copy of the store, taken by the service that holds it."""

from __future__ import annotations

import datetime

from flask import Blueprint, Response, jsonify, request

from exporters.store.backup import BackupError, backup
from service.errors import ApiError, bad_parameter
from service.state import state

blueprint = Blueprint("backup", __name__, url_prefix="/api")

BACKUP_FOLDER = "backups"


@blueprint.post("/backup")
def create_backup() -> tuple[Response, int]:
    body = request.get_json(silent=True)
    if body is None and request.get_data():
        raise ApiError(400, "invalid_body", "expected a JSON object", "body")
    if body is not None and not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "expected a JSON object", "body")
    if body:
        raise bad_parameter(sorted(body)[0], "unknown field; this route takes none")
    service = state()
    # The service writes only into its own data folder; `pipetrace backup DEST` moves the file.
    folder = service.settings.data_dir.resolve() / BACKUP_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    path = folder / f"telemetry-{now:%Y%m%dT%H%M%S%fZ}.duckdb"
    try:
        size = backup(service.store, path)
    except BackupError as exc:
        raise ApiError(409, "conflict", str(exc), "body") from exc
    created = now.isoformat().replace("+00:00", "Z")
    return jsonify({"path": str(path), "bytes": size, "created_at": created}), 201
