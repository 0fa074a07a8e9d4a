"""Any query string on any log route answers 200 or a JSON 4xx naming the problem, never a 5xx."""

from __future__ import annotations

import base64
from urllib.parse import quote

import orjson
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.params import format_time, parse_time

# Times are listed twice: their edge cases (before 1970, past 2262) are where bugs were found.
NAMES = [
    "since",
    "until",
    "since",
    "until",
    "run_id",
    "stage",
    "level",
    "limit",
    "cursor",
    "q",
    "pipeline_id",
    "service_name",
    "name",
    "status",
    "min_duration_ms",
    "max_duration_ms",
    "rule_id",
    "before",
    "x",
]


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


# The edges of each class of value: Unicode digits (int() refuses "²"), the largest stored time, cursors
# holding bools or the largest ints.
EDGES = [
    "15m", "0s", "999999999w", "2026-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "-1", "1001", "WARN", "fatal",
    "0", "24", "%", "'; DROP TABLE logs; --", "\x00", "WzEsMl0", "e30", "²", "٣", "1²", "²4",
    "2262-04-11T23:47:16.854775807Z", "2262-04-11T23:47:16.854775806Z", "2262-04-11T23:47:16.854775808Z",
    "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999999Z",
    _cursor([True, False]), _cursor([2**63 - 1, 2**64 - 1]), _cursor([2**63 - 2, 2**64 - 1]),
    _cursor([-1, 0]), _cursor([1.5, 2]), _cursor([0, 0]), _cursor({"a": 1}), _cursor([0, "a" * 32]),
    _cursor([2**63, "0" * 32]), _cursor([1, "g" * 32]), "1e308", "inf", "nan", "0.5", "1_0",
]  # fmt: skip
VALUES = st.one_of(st.text(max_size=40), st.sampled_from(EDGES))
ROUTES = [
    "/api/logs",
    "/api/logs/pipeline/p1",
    "/api/logs/search",
    "/api/logs/stats",
    "/api/logs/correlation/" + "a" * 32,
    "/api/pipelines/p1/runs",
    "/api/traces",
    "/api/alerts/history",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), params=st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=4))
def test_no_query_string_causes_a_server_error(
    client: FlaskClient, route: str, params: list[tuple[str, str]]
) -> None:
    query = "&".join(f"{quote(name)}={quote(value, safe='')}" for name, value in params)
    response = client.get(f"{route}?{query}")
    assert response.status_code < 500, response.get_data(as_text=True)
    body = response.get_json()
    if response.status_code >= 400:
        assert body["error"]["code"] and body["error"]["message"]
        assert response.status_code == 404 or body["error"].get("parameter")


@pytest.mark.parametrize("name", ["since", "until", "level", "limit", "cursor", "min_duration_ms", "before"])
@pytest.mark.parametrize("value", EDGES)
def test_every_edge_value_of_every_parsed_parameter_is_a_200_or_a_4xx(
    client: FlaskClient, name: str, value: str
) -> None:
    """Each edge alone, on every route, beside the random search above, so none is left to chance."""
    for route in ROUTES:
        extra = "&q=a" if route.endswith("search") else ""
        response = client.get(f"{route}?{name}={quote(value, safe='')}{extra}")
        assert response.status_code < 500, (route, response.get_data(as_text=True))
        if response.status_code >= 400:
            assert response.get_json()["error"]["message"]


@given(st.integers(min_value=0, max_value=2**62))
def test_times_round_trip_with_nanoseconds(ns: int) -> None:
    text = format_time(ns)
    assert text is not None
    assert parse_time("since", text) == ns
