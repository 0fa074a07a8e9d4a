"""Any query string on any log route answers 200 or a JSON 4xx naming the problem, never a 5xx."""

from __future__ import annotations

from urllib.parse import quote

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
    "x",
]
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["15m", "0s", "999999999w", "2026-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "-1", "1001",
                     "WARN", "fatal", "0", "24", "%", "'; DROP TABLE logs; --", "\x00", "WzEsMl0", "e30"]),
)  # fmt: skip
ROUTES = ["/api/logs/pipeline/p1", "/api/logs/search", "/api/logs/stats", "/api/logs/correlation/" + "a" * 32]


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


@given(st.integers(min_value=0, max_value=2**62))
def test_times_round_trip_with_nanoseconds(ns: int) -> None:
    text = format_time(ns)
    assert text is not None
    assert parse_time("since", text) == ns
