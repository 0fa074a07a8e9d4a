"""Log records to OTLP without losing what the SDK's encoder cannot know.

The SDK's encoder writes a record's dropped count as the SDK counted it (a local limit), and no
dropped count for resources and scopes; it also merges resources that are equal in value. A record
received over OTLP carries its sender's counts (``exporters.otlp_codec``), so forwarding or spooling
it through the SDK's encoder alone would zero them. Here each (resource, scope) group is encoded by
the SDK's public encoder and the counts are written back, as ``exporters.otlp_spans`` does for spans.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as sdk_encode_logs
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult

from exporters.records import RECEIVED_DROPPED


def encode_logs(batch: Sequence[ReadableLogRecord]) -> ExportLogsServiceRequest:
    """The OTLP request for ``batch``, grouped by resource and scope object in order of arrival."""
    groups: dict[int, tuple[object, dict[int, list[ReadableLogRecord]]]] = {}
    for record in batch:
        scopes = groups.setdefault(id(record.resource), (record.resource, {}))[1]
        scopes.setdefault(id(record.instrumentation_scope), []).append(record)
    request = ExportLogsServiceRequest()
    for resource, scopes in groups.values():
        resource_logs: ResourceLogs | None = None
        for members in scopes.values():
            (encoded,) = sdk_encode_logs(members).resource_logs
            (scope_logs,) = encoded.scope_logs
            if resource_logs is None:
                resource_logs = request.resource_logs.add()
                resource_logs.resource.CopyFrom(encoded.resource)
                resource_logs.resource.dropped_attributes_count = getattr(
                    resource, "dropped_attributes_count", 0
                )
                resource_logs.schema_url = encoded.schema_url
            scope = members[0].instrumentation_scope
            scope_logs.scope.dropped_attributes_count = getattr(scope, "dropped_attributes_count", 0)
            for record, message in zip(members, scope_logs.log_records, strict=True):
                message.dropped_attributes_count += getattr(record.log_record, RECEIVED_DROPPED, 0)
            resource_logs.scope_logs.append(scope_logs)
    return request


class LosslessOTLPLogExporter(OTLPLogExporter):
    """The official OTLP/HTTP log exporter sending :func:`encode_logs`'s requests through its own client
    (session, TLS, headers, compression, retries): its ``export`` has no hook for the encoder."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self._shutdown:
            return LogRecordExportResult.FAILURE
        result = self._client.export(encode_logs(batch).SerializeToString())
        return LogRecordExportResult.SUCCESS if result.success else LogRecordExportResult.FAILURE
