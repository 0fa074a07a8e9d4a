"""Rendering: validated parameters, Python literals only, scripts that always parse."""

from __future__ import annotations

import ast
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from templates.catalog import TEMPLATES
from templates.render import TemplateError, check_user_code, python_literal, render

MINIMAL: dict[str, dict[str, Any]] = {
    "api": {"base_url": "http://127.0.0.1:1/api", "resources": [{"name": "users", "path": "users"}]},
    "simple": {"bucket_url": "/data"},
    "dlt_code": {"code": "def data_source():\n    return []\n"},
    "simple_s3_anon_login": {"bucket": "public-data"},
    "simple_transform_field": {"bucket_url": "/data"},
    "sql_db": {"connection_url": "sqlite:///x.db"},
    "sql_db_old": {"host": "db", "database": "shop"},
    "sql_db_transform": {"connection_url": "sqlite:///x.db"},
    "sql_server": {"host": "db", "database": "shop"},
    "sql_server_transform": {"host": "db", "database": "shop"},
}
PAYLOADS = [
    '"""; __import__("os").system("touch /tmp/pwned"); """',
    "'\n__import__('os').system('id')\n'",
    "\\'); import os; os.system('id') #",
    "{{ 7 * 7 }} {% raw %}",
    "\x00\u2028\ud7ff line",
]


def names_and_calls(script: str) -> set[str]:
    """Every name and attribute the script's code refers to: what it can do, whatever its strings say."""
    found = set()
    for node in ast.walk(ast.parse(script)):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
    return found


def string_parameters(name: str) -> list[str]:
    properties = TEMPLATES[name].schema()["properties"]
    return [
        key
        for key, prop in properties.items()
        if prop.get("type") in ("string", ["string", "null"])
        and "pattern" not in prop
        and not prop.get("x-secret")
    ]


def test_every_template_renders_and_parses() -> None:
    assert set(MINIMAL) == set(TEMPLATES)
    for name, params in MINIMAL.items():
        rendered = render(name, params, f"p_{name}")
        ast.parse(rendered.script)
        assert rendered.public_params["dataset_name"] == "pipetrace"


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_parameter_cannot_inject_code(name: str, payload: str) -> None:
    baseline = names_and_calls(render(name, MINIMAL[name], "p_test").script)
    for key in string_parameters(name):
        rendered = render(name, {**MINIMAL[name], key: payload}, "p_test")
        tree = ast.parse(rendered.script)
        constants = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
        assert payload in constants, f"{key} is not a plain string literal"
        assert names_and_calls(rendered.script) == baseline, f"{key} changed what the script does"


def test_secrets_never_reach_the_script() -> None:
    rendered = render("sql_db_old", {**MINIMAL["sql_db_old"], "password": "hunter2-secret"}, "p_test")
    assert "hunter2-secret" not in rendered.script
    assert "password" not in rendered.public_params
    assert rendered.secret_env == {"SOURCES__SQL_DATABASE__PASSWORD": "hunter2-secret"}
    api = render("api", {**MINIMAL["api"], "auth": {"type": "bearer"}, "token": "tok-secret"}, "p_api")
    assert "tok-secret" not in api.script and api.secret_env == {"SOURCES__API__TOKEN": "tok-secret"}


@pytest.mark.parametrize(
    ("name", "params", "parameter"),
    [
        ("simple", {"bucket_url": "/x", "table_name": "drop table; --"}, "params.table_name"),
        ("simple", {"bucket_url": "/x", "extra": 1}, "params.extra"),
        ("simple", {}, "params"),
        ("simple", {"bucket_url": "/x", "file_format": "xml"}, "params.file_format"),
        (
            "api",
            {"base_url": "file:///etc/passwd", "resources": [{"name": "a", "path": "b"}]},
            "params.base_url",
        ),
        (
            "simple_transform_field",
            {"bucket_url": "/x", "transformations": [{"op": "eval", "field": "a"}]},
            "params.transformations.0.op",
        ),
        (
            "simple_transform_field",
            {"bucket_url": "/x", "transformations": [{"op": "rename", "field": "a"}]},
            "params.transformations.0",
        ),
        ("sql_db_old", {"host": "h", "database": "d", "engine": "x; import os"}, "params.engine"),
        ("sql_db_old", {"host": "h", "database": "d", "port": 70000}, "params.port"),
        ("nope", {}, "template"),
    ],
)
def test_invalid_parameters_are_refused_by_name(name: str, params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(TemplateError) as error:
        render(name, params, "p_test")
    assert error.value.parameter == parameter


def test_the_pipeline_name_must_be_an_identifier() -> None:
    with pytest.raises(TemplateError):
        render("simple", MINIMAL["simple"], 'x"""\nimport os')


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_python_literal_round_trips_any_json_value(value: Any) -> None:
    assert ast.literal_eval(python_literal(value)) == value


def test_python_literal_refuses_what_is_not_json() -> None:
    for value in (float("nan"), object(), {1: "a"}, b"bytes"):
        with pytest.raises(TemplateError):
            python_literal(value)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("import dlt\n\ndef data_source(:\n    pass\n", "line 3"),
        ("x = 1\n  y = 2\n", "line 2"),
        ("def source():\n    pass\n", "defines no data_source"),
        ("if True:\n    def data_source():\n        pass\n", "defines no data_source"),  # not top level
    ],
)
def test_user_code_must_compile_and_define_data_source(code: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        check_user_code(code)
    assert caught.value.parameter == "params.code" and message in str(caught.value)


@pytest.mark.parametrize(
    "code",
    [
        "def data_source():\n    return []\n",
        "async def data_source():\n    return []\n",
        "from my_sources import data_source\n",
        "import dlt\ndata_source = dlt.resource([{'a': 1}], name='t')\n",
    ],
)
def test_user_code_defining_data_source_passes(code: str) -> None:
    check_user_code(code)


def test_credentials_in_ordinary_parameters_are_kept_out_of_the_stored_parameters_and_the_script() -> None:
    params = {
        "base_url": "https://apiuser:base-pw-4e@api.example.test/v1",
        "resources": [{"name": "users", "path": "users", "params": {"api_key": "res-key-5f", "page": 2}}],
        "paginator": {"type": "none"},
    }
    rendered = render("api", params, "p_api")
    assert rendered.public_params["base_url"] == "https://apiuser:***@api.example.test/v1"
    assert rendered.public_params["resources"][0]["params"] == {"api_key": "***", "page": 2}
    assert sorted(rendered.secret_env.values()) == [
        "https://apiuser:base-pw-4e@api.example.test/v1",
        "res-key-5f",
    ]
    assert all(name.startswith("PIPETRACE_PARAM_") for name in rendered.secret_env)
    for secret in ("base-pw-4e", "res-key-5f"):
        assert secret not in rendered.script and secret not in repr(rendered.public_params)
    assert rendered.script.count("sources.secret(") == 2
    # At run time the stored (redacted) parameters render the same script, given the stored names.
    again = render("api", rendered.public_params, "p_api", known_secrets=rendered.secret_env)
    assert again.script == rendered.script and again.secret_env == {}
    # Without the names, the redacted text would be used as it is (and no secret is invented).
    assert "sources.secret(" not in render("api", rendered.public_params, "p_api").script


def test_ordinary_parameters_are_not_taken_for_secrets() -> None:
    params = {
        "base_url": "https://api.example.test/v1?token_type=bearer",
        "resources": [{"name": "tokens", "path": "tokens/usage", "params": {"secret_level": 2, "page": 1}}],
    }
    rendered = render("api", params, "p_api")
    assert rendered.secret_env == {} and "sources.secret(" not in rendered.script
    assert rendered.public_params["resources"] == params["resources"]
