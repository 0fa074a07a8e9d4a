"""Wrote `store-v5.duckdb.gz` (then gzip -9 -n): run with pipetrace at b3c4bb8 checked out (schema v5).

`PYTHONPATH=<that checkout> python tests/data/make_store_v5.py store-v5.duckdb`
"""

import logging
import sys

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from exporters.log_exporter import DuckDBLogRecordExporter
from exporters.settings import ExporterSettings
from exporters.span_exporter import DuckDBSpanExporter
from exporters.store import TelemetryStore

path = sys.argv[1]
store = TelemetryStore(path)
settings = ExporterSettings.with_properties(data_dir="/tmp/v5-data")
resource = Resource.create({"service.name": "v5-writer", "pipeline.id": "orders"})
lp = LoggerProvider(resource=resource)
lp.add_log_record_processor(SimpleLogRecordProcessor(DuckDBLogRecordExporter(store=store, settings=settings)))
tp = TracerProvider(resource=resource)
tp.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(store=store, settings=settings)))
logger = logging.getLogger("v5.writer")
logger.setLevel(logging.INFO)
logger.propagate = False
handler = LoggingHandler(logger_provider=lp)
logger.addHandler(handler)
with tp.get_tracer("v5.tracer", "1.0").start_as_current_span("extract") as span:
    span.set_attribute("rows", 3)
    logger.info(
        "extract started",
        extra={
            "pipeline.run_id": "run-1",
            "pipeline.stage": "extract",
            "rows": 3,
            "ratio": 0.25,
            "tags": ["a", "b"],
        },
    )
    logger.warning("slow source", extra={"pipeline.run_id": "run-1", "nested": {"k": [1, 2]}})
    logger.error("load failed: timeout")
    print(format(span.get_span_context().trace_id, "032x"))
logger.removeHandler(handler)
lp.shutdown()
tp.shutdown()
store.cursor().execute("CHECKPOINT").fetchall()
print(store.schema_version)
store.close()
