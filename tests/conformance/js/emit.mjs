// Sends one conformance scenario through the official OpenTelemetry JS SDK and its OTLP/HTTP exporters.
//
//   node emit.mjs <proto|json>[+gzip] <base url> <scenario> <trace id hex>
//
// Scenarios: "typed" (bodies and attributes of every type), "identical" (5 identical emit() calls in a
// row), "spans" (a parent and a child span). The test decodes what reached its capturing proxy; this
// script only has to emit, force-flush, shut down and exit 0.
import { context, trace, TraceFlags } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as JsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

const [transport, baseUrl, scenario, traceId] = process.argv.slice(2);
const [protocol, compression = 'none'] = (transport ?? '').split('+');
if (!['proto', 'json'].includes(protocol) || !['none', 'gzip'].includes(compression) || !baseUrl || !scenario || !/^[0-9a-f]{32}$/.test(traceId ?? '')) {
  console.error('usage: node emit.mjs <proto|json>[+gzip] <base url> <typed|identical|spans> <trace id hex>');
  process.exit(2);
}

const resource = resourceFromAttributes({
  'service.name': 'conformance-js',
  'deployment.environment': 'test',
  'resource.count': 3,
});
const parentContext = trace.setSpanContext(context.active(), {
  traceId,
  spanId: '00f067aa0ba902b7',
  traceFlags: TraceFlags.SAMPLED,
});
// A fixed time, so identical records are identical; the SDK keeps milliseconds (hrTime from a Date).
const at = new Date(Date.UTC(2026, 10, 29, 12, 0, 0, 123));

function typedRecords(logger) {
  const values = {
    'a.string': 'text with "quotes" and ünïcode',
    'an.int': 42,
    'a.negative.int': -7,
    'a.double': 3.25,
    'an.integral.double': 2.0, // the JS SDK sends this as intValue (otlp-spec.md: clients' quirks)
    'a.bool': true,
    'a.false': false,
    'an.array': ['x', 'y'],
    'an.int.array': [1, 2, 3],
    'a.map': { inner: 'v', depth: { n: 1 } },
  };
  const bodies = {
    'body.string': 'a plain line',
    'body.int': 7,
    'body.double': 0.5,
    'body.bool': false,
    'body.array': ['one', 2, true],
    'body.map': { zeta: 1, alpha: 'a', nested: { list: [1.5, 'b'] } },
  };
  let severity = SeverityNumber.TRACE;
  for (const [eventName, body] of Object.entries(bodies)) {
    logger.emit({
      eventName,
      timestamp: at,
      severityNumber: severity,
      severityText: `level-${severity}`,
      body,
      attributes: { ...values, 'record.event': eventName },
      context: parentContext,
    });
    severity += 4;
  }
  // An HrTime keeps nanoseconds where a Date has milliseconds.
  logger.emit({ body: 'nanoseconds', timestamp: [1796000000, 123456789], observedTimestamp: [1796000001, 1], context: parentContext });
  // A promoted attribute (stored in its column) comes back in its place, not last.
  logger.emit({ body: 'no time of its own', attributes: { 'pipeline.id': traceId, after: 1 }, context: parentContext });
}

function identicalRecords(logger) {
  for (let i = 0; i < 5; i += 1) {
    logger.emit({
      timestamp: at,
      severityNumber: SeverityNumber.INFO,
      observedTimestamp: at,
      severityText: 'INFO',
      body: 'the same line, five times',
      attributes: { 'same': true },
      context: parentContext,
    });
  }
}

async function sendLogs(emit) {
  const Exporter = protocol === 'proto' ? ProtoLogExporter : JsonLogExporter;
  const exporter = new Exporter({ url: `${baseUrl}/v1/logs`, compression });
  const provider = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter })] });
  emit(provider.getLogger('conformance.js', '1.0.0'));
  await provider.forceFlush();
  await provider.shutdown();
}

async function sendSpans() {
  const Exporter = protocol === 'proto' ? ProtoTraceExporter : JsonTraceExporter;
  const exporter = new Exporter({ url: `${baseUrl}/v1/traces`, compression });
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] });
  const tracer = provider.getTracer('conformance.js', '1.0.0');
  const parent = tracer.startSpan('js parent', { kind: 1, startTime: at, attributes: { 'an.int': 5, 'a.string': 's' } }, parentContext);
  const child = tracer.startSpan(
    'js child',
    { kind: 2, startTime: at, attributes: { 'a.double': 1.5, 'a.bool': true, 'an.array': ['a', 'b'] } },
    trace.setSpan(context.active(), parent),
  );
  child.setStatus({ code: 2, message: 'it failed' });
  child.end(new Date(at.getTime() + 5));
  parent.end(new Date(at.getTime() + 10));
  await provider.forceFlush();
  await provider.shutdown();
}

const scenarios = {
  typed: () => sendLogs(typedRecords),
  identical: () => sendLogs(identicalRecords),
  spans: sendSpans,
};
if (!(scenario in scenarios)) {
  console.error(`unknown scenario ${scenario}; one of ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}
await scenarios[scenario]();
