"""Bearer tokens: ``PIPETRACE_API_TOKEN`` guards ``/api/*``, ``PIPETRACE_INGEST_TOKEN`` guards ``/v1/*``
and the OTLP/gRPC services (as ``authorization`` metadata, checked in ``service.otlp_grpc``).

The API token also guards ``/openapi.json`` and ``/readyz``'s details (``/readyz``'s bare status stays
open for probes). A token that is not set leaves its routes open, which keeps local use as simple as
before; `pipetrace serve` refuses to listen beyond loopback without both (see ``service.cli``). Tokens
are compared in constant time, and a refusal never says which part of the token was wrong.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote

from flask import Flask, Response, request

from service.errors import error_response

API_PREFIX = "/api/"
INGEST_PREFIX = "/v1/"
# Outside /api/ but guarded alike: the description of every route is a map for whoever has no token.
API_DOCUMENT = "/openapi.json"


def bearer_header(token: str) -> str:
    return f"Bearer {token}"


def otlp_headers_env(token: str) -> str:
    """``OTEL_EXPORTER_OTLP_HEADERS`` carrying the ingest token (values are URL-encoded by the spec)."""
    return f"authorization={quote(bearer_header(token))}"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value (HTTP header or gRPC metadata)."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def token_problem(authorization: str | None, expected: str | None) -> str | None:
    """Why a request may not pass (the token is missing or not valid), or None when it may."""
    if expected is None:
        return None
    presented = bearer_token(authorization)
    if token_matches(presented, expected):
        return None
    return "missing" if presented is None else "not valid"


def token_matches(presented: str | None, expected: str) -> bool:
    # compare_digest on equal-type bytes: its time does not depend on where the first difference is.
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


def presents_token(expected: str | None) -> bool:
    """True when the request may see what ``expected`` guards: no token is set, or it carries it."""
    return expected is None or token_matches(bearer_token(request.headers.get("Authorization")), expected)


def install_auth(app: Flask, api_token: str | None, ingest_token: str | None) -> None:
    """Refuse requests to guarded routes that lack the right token, with 401 and ``WWW-Authenticate``."""

    @app.before_request
    def _require_token() -> Response | None:
        path = request.path
        if path.startswith(API_PREFIX) or path == API_DOCUMENT:
            expected, which = api_token, "API"
        elif path.startswith(INGEST_PREFIX):
            expected, which = ingest_token, "ingest"
        else:
            return None
        # CORS preflights carry no credentials by design; the request that follows them does.
        if expected is None or request.method == "OPTIONS":
            return None
        problem = token_problem(request.headers.get("Authorization"), expected)
        if problem is None:
            return None
        response = error_response(
            401, "unauthorized", f"this route needs the {which} token as 'Authorization: Bearer <token>'; "
            f"the token is {problem}", "Authorization",
        )  # fmt: skip
        response.headers["WWW-Authenticate"] = 'Bearer realm="pipetrace"'
        return response
