"""Issue 18, item 1: every template can be created from its form in a real browser, and the service
receives its parameters typed as the template's schema says (lists as lists, objects as objects,
numbers as numbers). "Create only" is used: the form test needs no database or API to run against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ALLOW_USER_CODE, LiveServer, start_server
from tests.ui.screenshots import shot

Fill = Callable[[Page], None]


def _fill(values: dict[str, str]) -> Fill:
    def fill(page: Page) -> None:
        for selector, value in values.items():
            if page.locator(selector).evaluate("node => node.tagName") == "SELECT":
                page.select_option(selector, value)
            else:
                page.fill(selector, value)

    return fill


CODE = "import dlt\n\ndef data_source():\n    return dlt.resource([{'id': 1}], name='one')\n"
TRANSFORMS = (
    '[{"op": "rename", "field": "amount", "to": "total"}, {"op": "cast", "field": "id", "type": "integer"}]'
)
DERIVE = '{"items": [{"op": "derive", "field": "code", "from": ["a", "b"], "separator": "-"}]}'
FILES = {"#param-bucket_url": "/srv/files"}

# Per template: what the test types into its form, and what the service must have received (the parts
# the form turned into something other than a string; secrets are never echoed, so not compared).
FORMS: dict[str, tuple[Fill, dict[str, Any]]] = {
    "api": (
        _fill({"#param-base_url": "https://api.example.com/v1",
               "#param-resources": '[{"name": "orders", "path": "/orders", "params": {"limit": 50}}]',
               "#param-paginator-type": "page_number", "#param-paginator-page_param": "page",
               "#param-paginator-base_page": "1", "#param-paginator-maximum_page": "20",
               "#param-auth-type": "bearer", "#param-token": "tok-123"}),
        {"resources": [{"name": "orders", "path": "/orders", "params": {"limit": 50}}],
         "paginator": {"type": "page_number", "page_param": "page", "base_page": 1, "maximum_page": 20},
         "auth": {"type": "bearer"}},
    ),
    "simple": (_fill({"#param-bucket_url": "/srv/files", "#param-primary_key": "id"}),
               {"bucket_url": "/srv/files", "primary_key": "id", "file_format": "csv"}),
    "dlt_code": (_fill({"textarea[name=code]": CODE}), {"code": CODE}),
    "simple_s3_anon_login": (_fill({"#param-bucket": "open-data", "#param-chunk_size": "500"}),
                             {"bucket": "open-data", "chunk_size": 500}),
    "simple_transform_field": (_fill({**FILES, "#param-transformations": TRANSFORMS}),
                               {"transformations": [{"op": "rename", "field": "amount", "to": "total"},
                                                    {"op": "cast", "field": "id", "type": "integer"}]}),
    "sql_db": (_fill({"#param-connection_url": "postgresql://u:p@db.example/shop",
                      "#param-tables": "orders\ncustomers", "#param-primary_keys": '{"orders": ["id"]}'}),
               {"tables": ["orders", "customers"], "primary_keys": {"orders": ["id"]}, "chunk_size": 50000}),
    "sql_db_old": (_fill({"#param-host": "db.example", "#param-port": "5432", "#param-database": "shop",
                          "#param-tables": "orders"}),
                   {"host": "db.example", "port": 5432, "tables": ["orders"]}),
    "sql_db_transform": (_fill({"#param-connection_url": "postgresql://u:p@db.example/shop",
                                "#param-transformations": '{"orders": [{"op": "drop", "field": "note"}]}'}),
                         {"transformations": {"orders": [{"op": "drop", "field": "note"}]}}),
    "sql_server": (_fill({"#param-host": "mssql.example", "#param-port": "1433", "#param-database": "erp"}),
                   {"host": "mssql.example", "port": 1433, "database": "erp"}),
    "sql_server_transform": (_fill({"#param-host": "mssql.example", "#param-database": "erp",
                                    "#param-transformations": DERIVE}),
                             {"transformations": {"items": [{"op": "derive", "field": "code",
                                                             "from": ["a", "b"], "separator": "-"}]}}),
}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("forms") / "data", env=ALLOW_USER_CODE)
    yield live
    live.stop()


def test_every_template_is_created_from_its_form_with_typed_params(server: LiveServer, page: Page) -> None:
    served = {template["name"] for template in server.get("/api/templates").json()["templates"]}
    assert served == set(FORMS), "each template needs its form test"
    page.goto(f"{server.url}/#/pipelines")
    for template, (fill, expected) in FORMS.items():
        page.select_option("#template", template)
        page.fill("#pipeline-name", f"form {template}")
        fill(page)
        if template == "api":
            shot(page, "form")  # for the README: sub-forms and a JSON editor
        with page.expect_response(
            lambda r: r.url.endswith("/api/pipelines") and r.request.method == "POST"
        ) as sent:
            page.click("form.new-pipeline button[value=create]")
        answer = sent.value
        assert answer.status == 201, (template, answer.json())
        params = answer.json()["params"]
        assert {key: params.get(key) for key in expected} == expected, template
        expect(page.locator(".form-note")).to_have_text(f"Pipeline form {template} created.")
    names = page.locator("table.pipelines td a").all_inner_texts()
    assert {f"form {template}" for template in FORMS} <= set(names)


def test_a_json_field_that_is_not_json_is_refused_in_the_form(server: LiveServer, page: Page) -> None:
    page.goto(f"{server.url}/#/pipelines")
    page.select_option("#template", "api")
    page.fill("#pipeline-name", "broken api")
    page.fill("#param-base_url", "https://api.example.com")
    page.fill("#param-resources", '[{"name": "orders", "path": "/orders"}')  # unclosed
    expect(page.locator("#param-resources-error")).to_contain_text("not valid JSON")
    page.click("form.new-pipeline button[value=create]")
    expect(page.locator("form.new-pipeline > p.form-error")).to_contain_text("resources: not valid JSON")
    page.fill("#param-resources", '{"name": "orders"}')
    expect(page.locator("#param-resources-error")).to_have_text("resources: must be a JSON array ([...])")
    names = server.get("/api/pipelines").json()["pipelines"]
    assert "broken api" not in {pipeline["name"] for pipeline in names}  # nothing was sent
