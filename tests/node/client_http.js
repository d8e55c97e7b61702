// A foreign OTLP/HTTP client: the OpenTelemetry JS SDK sends one span, one robot.dds.command event
// log record and one counter to OTEL_EXPORTER_OTLP_ENDPOINT over OTLP/HTTP, as JSON
// (`node client_http.js json`: @opentelemetry/exporter-*-otlp-http) or binary protobuf
// (`node client_http.js proto`: @opentelemetry/exporter-*-otlp-proto), then shuts down (flushing).
const { resourceFromAttributes } = require("@opentelemetry/resources");
const { BasicTracerProvider, BatchSpanProcessor } = require("@opentelemetry/sdk-trace-base");
const { LoggerProvider, BatchLogRecordProcessor } = require("@opentelemetry/sdk-logs");
const { MeterProvider, PeriodicExportingMetricReader } = require("@opentelemetry/sdk-metrics");
const { context, trace } = require("@opentelemetry/api");

const encoding = process.argv[2];
if (encoding !== "json" && encoding !== "proto") {
  console.error("usage: node client_http.js json|proto");
  process.exit(2);
}
const suffix = encoding === "json" ? "http" : "proto";
const { OTLPTraceExporter } = require(`@opentelemetry/exporter-trace-otlp-${suffix}`);
const { OTLPLogExporter } = require(`@opentelemetry/exporter-logs-otlp-${suffix}`);
const { OTLPMetricExporter } = require(`@opentelemetry/exporter-metrics-otlp-${suffix}`);

async function main() {
  const base = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const resource = resourceFromAttributes({ "service.name": `arm-ui-node-${encoding}` });
  const tracerProvider = new BasicTracerProvider({
    resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${base}/v1/traces` }))],
  });
  const loggerProvider = new LoggerProvider({
    resource,
    processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${base}/v1/logs` }) })],
  });
  const meterProvider = new MeterProvider({
    resource,
    readers: [new PeriodicExportingMetricReader({
      exporter: new OTLPMetricExporter({ url: `${base}/v1/metrics` }), exportIntervalMillis: 3600000,
    })],
  });
  const span = tracerProvider.getTracer("node-client").startSpan(`ui.click.${encoding}`);
  const ctx = trace.setSpan(context.active(), span);
  loggerProvider.getLogger("node-client").emit({
    eventName: "robot.dds.command", context: ctx, body: { kind: "command", encoding },
    attributes: { "robot.dds.seq": encoding === "json" ? 21 : 22, "robot.dds.funcode": 1, "robot.joint.id": 3,
                  "robot.target_value": 1.25 },
  });
  meterProvider.getMeter("node-client").createCounter("ui.clicks", { unit: "{click}" }).add(2);
  span.end();
  await tracerProvider.shutdown();
  await loggerProvider.shutdown();
  await meterProvider.shutdown();
  console.log(`node ${encoding} client done`);
}

main().catch((err) => { console.error(err); process.exit(1); });
