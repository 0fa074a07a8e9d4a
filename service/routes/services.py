"""``/api/services``: the services that sent logs or spans, for the UI's service pick-lists."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from service.params import reject_unknown
from service.state import state

blueprint = Blueprint("services", __name__, url_prefix="/api/services")


@blueprint.get("")
def service_names() -> Response:
    reject_unknown(request.args, frozenset())
    return jsonify({"services": state().queries.service_names()})
