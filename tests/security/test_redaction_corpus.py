"""Acceptance (issue 16): no planted secret is found in any API answer, any file under the data folder
(run folders and dlt's working files included; the service's 0600 secret store is the one exception),
the spool, or what a forwarder sends; ordinary data comes back unchanged.

The corpus (``tests/security/corpus.py``) goes in through the official OTel SDK exporters over OTLP/HTTP
and OTLP/gRPC, std logging and recorded exceptions; pipelines are defined with credentials in ordinary
parameters and run against a local REST API, one failing with the key in its URL, and a ``dlt_code``
run fails with secrets in its error.
"""

from __future__ import annotations

import logging
import stat
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporters import otlp_codec
from exporters.log_exporter import DuckDBLogRecordExporter
from exporters.span_exporter import DuckDBSpanExporter
from instrumentation.telemetry import Export, Telemetry
from tests.conftest import ALLOW_USER_CODE, LiveServer, free_port, start_server
from tests.exporters.fakes import FailingStore
from tests.helpers import RESOURCE
from tests.otlp_sinks import Sink, http_sink
from tests.security import corpus
from tests.service.pipeline_helpers import create, start, wait_for_logs, wait_for_run

REPOSITORY = Path(__file__).resolve().parents[2]

FAILING_CODE = textwrap.dedent(
    """
    import dlt

    @dlt.resource(name="orders")
    def orders():
        yield {"id": 1}
        raise ConnectionError(
            "cannot reach postgresql://app:runpw-q3a@db/prod; password=runpw-q3b; AKIAQ3Q3Q3Q3Q3Q3Q3Q3"
        )

    def data_source():
        return orders
    """
)
RUN_FRAGMENTS = ("runpw-q3a", "runpw-q3b", "AKIAQ3Q3Q3Q3Q3Q3Q3Q3")
PARAM_FRAGMENTS = ("basepw-q4a", "reskey-q4b", "okkey-q4c")


@pytest.fixture
def rest_api() -> Iterator[str]:
    """A REST API on a free loopback port: ``/items`` answers rows, anything else 401."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path.startswith("/items")
            body = b'[{"id": 1, "name": "first"}, {"id": 2, "name": "second"}]' if ok else b"{}"
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def forwarder() -> Iterator[Sink]:
    with http_sink() as sink:
        yield sink


@pytest.fixture
def server(tmp_path: Path, forwarder: Sink) -> Iterator[tuple[LiveServer, int]]:
    """``pipetrace serve`` with its gRPC receiver on a free port and every record forwarded over OTLP."""
    config = tmp_path / "forwarding.yaml"
    config.write_text((REPOSITORY / "otel-config.yaml").read_text())
    grpc_port = free_port()
    env = {
        **ALLOW_USER_CODE,
        "OTEL_CONFIG_FILE": str(config),
        "OTEL_EXPORTER_OTLP_ENDPOINT": forwarder.url,
        "PIPETRACE_GRPC_PORT": str(grpc_port),
    }
    live = start_server(tmp_path / "data", env=env)
    yield live, grpc_port
    live.stop()


def _api_answers(live: LiveServer, trace_ids: list[int], pipelines: list[str], runs: list[str]) -> list[str]:
    """The text of every API answer that can show stored data."""
    paths = ["/api/pipelines", "/api/logs/stats", "/readyz", "/api/templates"]
    paths += [f"/api/pipelines/{p}" for p in pipelines] + [f"/api/pipelines/{p}/runs" for p in pipelines]
    paths += [f"/api/runs/{r}" for r in runs]
    paths += [f"/api/logs/correlation/{trace_id:032x}" for trace_id in trace_ids]
    paths += [f"/api/logs/search?q={q}&limit=1000" for q in ("password", "token", "postgresql", "AKIA")]
    answers = []
    for path in paths:
        response = live.get(path)
        assert response.status_code == 200, (path, response.text)
        answers.append(f"{path}\n{corpus.decoded_text(response.json())}")
    for path, key in (("/api/logs", "logs"), ("/api/traces", "traces")):
        answers += _every_page(live, path, key)
    return answers


def _every_page(live: LiveServer, path: str, key: str) -> list[str]:
    """Every stored log record or trace, page by page."""
    pages, cursor = [], None
    while True:
        response = live.get(path, params={"limit": 1000, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, (path, response.text)
        page = response.json()
        assert page[key], path
        pages.append(f"{path}\n{corpus.decoded_text(page)}")
        cursor = page["next_cursor"]
        if not cursor:
            return pages


def _planted_in(text: str) -> list[str]:
    return [*corpus.found_in(text), *(f for f in (*RUN_FRAGMENTS, *PARAM_FRAGMENTS) if f in text)]


def test_no_planted_secret_is_found_anywhere(
    server: tuple[LiveServer, int], forwarder: Sink, rest_api: str, tmp_path: Path
) -> None:
    live, grpc_port = server
    # Telemetry over OTLP/HTTP and OTLP/gRPC, from the official SDK exporters.
    trace_ids = corpus.emit(
        HttpLogExporter(endpoint=f"{live.url}/v1/logs"),
        HttpSpanExporter(endpoint=f"{live.url}/v1/traces"),
        "http",
    )
    grpc_target = f"127.0.0.1:{grpc_port}"
    grpc_logs = GrpcLogExporter(endpoint=grpc_target, insecure=True)
    trace_ids += corpus.emit(grpc_logs, GrpcSpanExporter(endpoint=grpc_target, insecure=True), "grpc")
    # Pipelines with credentials in ordinary parameters; one run fails with its key in the URL.
    api_params = {
        "base_url": f"http://apiuser:basepw-q4a@{rest_api}",
        "resources": [{"name": "refused", "path": "refused", "params": {"api_key": "reskey-q4b", "page": 1}}],
    }
    failing_api = create(live, "api", api_params, name="api refused")
    items = [{"name": "items", "path": "items", "params": {"api_key": "okkey-q4c"}}]
    working_api = create(live, "api", {**api_params, "resources": items}, name="api items")
    failing_code = create(live, "dlt_code", {"code": FAILING_CODE}, name="code fails")
    listed = {p["id"]: p for p in live.get("/api/pipelines").json()["pipelines"]}
    assert listed[failing_api["id"]]["params"]["base_url"] == f"http://apiuser:***@{rest_api}"
    assert listed[failing_api["id"]]["params"]["resources"][0]["params"] == {"api_key": "***", "page": 1}
    pipelines = [failing_api["id"], working_api["id"], failing_code["id"]]
    runs = {pipeline: start(live, pipeline)["run_id"] for pipeline in pipelines}
    finished = {pipeline: wait_for_run(live, run) for pipeline, run in runs.items()}
    assert finished[working_api["id"]]["status"] == "succeeded", str(finished[working_api["id"]])
    assert finished[working_api["id"]]["rows_loaded"] == {"items": 2}
    for pipeline in (failing_api["id"], failing_code["id"]):
        error = finished[pipeline]["error"]
        assert finished[pipeline]["status"] == "failed" and "***" in error["message"], error
    assert "api_key=***" in finished[failing_api["id"]]["error"]["message"]
    # The runs' own telemetry has arrived (their last records are the failure lines).
    for pipeline in (failing_api["id"], failing_code["id"]):
        wait_for_logs(live, f"/api/logs/pipeline/{pipeline}?level=ERROR", lambda body: len(body["logs"]) > 0)

    answers = _api_answers(live, trace_ids, pipelines, list(runs.values()))
    every_answer = "\n".join(answers)
    assert "span ALTER USER app WITH PASSWORD '***';" in every_answer  # the corpus is there, masked
    assert "span cache at redis://:***@cache:6379/0" in every_answer
    leaks = {answer.split("\n", 1)[0]: _planted_in(answer) for answer in answers}
    assert not {path: found for path, found in leaks.items() if found}

    assert live.stop() == 0  # a clean stop: the store is checkpointed and closed
    data_dir = live.data_dir
    secret_store = data_dir / "secrets"
    assert stat.S_IMODE(secret_store.stat().st_mode) == 0o700
    kept = [path for path in secret_store.iterdir()]
    assert kept and all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in kept)
    files = [path for path in data_dir.rglob("*") if path.is_file() and secret_store not in path.parents]
    assert any(path.name == "trace.pickle" for path in files)  # dlt's working files are among them
    assert any(path.name == "result.json" for path in files)
    spool = tmp_path / "fallback"  # the service's spool (the conftest's FALLBACK_DIRECTORY)
    files += [path for path in spool.rglob("*") if path.is_file()] if spool.exists() else []
    in_files = {str(path): _planted_in(path.read_bytes().decode("latin-1")) for path in files}
    assert not {path: found for path, found in in_files.items() if found}

    forwarded = [body for bodies in forwarder.bodies.values() for body in bodies]
    assert len(forwarded) > 2
    sent_on = "\n".join(body.decode("latin-1") for body in forwarded)
    assert "redis://:***@cache:6379/0" in sent_on
    assert not _planted_in(sent_on)


def test_spooled_corpus_holds_no_secret(tmp_path: Path) -> None:
    """While the store is down, received batches wait in spool files: the corpus is scrubbed first."""
    logs, spans = InMemoryLogRecordExporter(), InMemorySpanExporter()
    corpus.emit(logs, spans, "spool")
    store = FailingStore(str(tmp_path / "down.duckdb"))
    store.failing = True
    spool = tmp_path / "spool"
    log_exporter = DuckDBLogRecordExporter(store=store, fallback_directory=str(spool), max_retry_attempts=0)
    span_exporter = DuckDBSpanExporter(store=store, fallback_directory=str(spool), max_retry_attempts=0)
    telemetry = Telemetry(
        resource=RESOURCE,
        log_exporters=[Export(log_exporter, simple=True, acknowledges=True)],
        span_exporters=[Export(span_exporter, simple=True, acknowledges=True)],
    )
    own = logging.getLogger("spool.corpus")
    telemetry.bridge_logging("INFO", own)
    try:
        received_logs = otlp_codec.decode_logs(encode_logs(logs.get_finished_logs()))
        received_spans = otlp_codec.decode_spans(encode_spans(spans.get_finished_spans()))
        # The store is down: both batches are spooled (which counts as delivered).
        assert telemetry.ingest_logs(received_logs.records) and telemetry.ingest_spans(received_spans.records)
        for planted in corpus.PLANTED:
            own.warning(planted.text, extra={"db.password": corpus.KEYED["db.password"]})
        telemetry.force_flush()
        files = [path for path in spool.rglob("*") if path.is_file()]
        assert len(files) >= 2
        raw = b"".join(path.read_bytes() for path in files).decode("latin-1")
        assert "***" in raw and not corpus.found_in(raw)
    finally:
        telemetry.shutdown()
        log_exporter.shutdown()
        span_exporter.shutdown()


def test_ordinary_data_is_stored_and_returned_unchanged(live_server: LiveServer, tmp_path: Path) -> None:
    corpus.emit_ordinary(HttpLogExporter(endpoint=f"{live_server.url}/v1/logs"), "ordinary")

    def arrived(body: dict[str, Any]) -> bool:
        return len(_tagged(body)) == len(corpus.ORDINARY_BODIES)

    body = wait_for_logs(live_server, "/api/logs?limit=1000", arrived)
    records = _tagged(body)
    assert sorted(record["body"] for record in records) == sorted(corpus.ORDINARY_BODIES)
    expected = {**corpus.ORDINARY_ATTRIBUTES, "corpus.tag": "ordinary"}
    for record in records:
        attributes = record["attributes"]
        assert attributes["gen_ai.usage.input_tokens"] == {"intValue": "42"}
        assert attributes["tags"] == {
            "arrayValue": {"values": [{"stringValue": v} for v in expected["tags"]]}
        }
        strings = {key: value for key, value in expected.items() if isinstance(value, str)}
        assert {key: attributes[key] for key in strings} == strings


def _tagged(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [log for log in body["logs"] if (log.get("attributes") or {}).get("corpus.tag") == "ordinary"]
