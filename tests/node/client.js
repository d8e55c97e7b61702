// A foreign OTLP client: the OpenTelemetry JS SDK sends one span and two event log records over
// OTLP/gRPC to the endpoint in OTEL_EXPORTER_OTLP_ENDPOINT, then shuts down (flushing).
const { resourceFromAttributes } = require("@opentelemetry/resources");
const { BasicTracerProvider, BatchSpanProcessor } = require("@opentelemetry/sdk-trace-base");
const { OTLPTraceExporter } = require("@opentelemetry/exporter-trace-otlp-grpc");
const { LoggerProvider, BatchLogRecordProcessor } = require("@opentelemetry/sdk-logs");
const { OTLPLogExporter } = require("@opentelemetry/exporter-logs-otlp-grpc");
const { context, trace } = require("@opentelemetry/api");

async function main() {
  const resource = resourceFromAttributes({ "service.name": "arm-ui-node" });
  const tracerProvider = new BasicTracerProvider({
    resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  const loggerProvider = new LoggerProvider({
    resource, processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter() })],
  });
  const tracer = tracerProvider.getTracer("node-client");
  const logger = loggerProvider.getLogger("node-client");
  const span = tracer.startSpan("ui.click");
  const ctx = trace.setSpan(context.active(), span);
  logger.emit({
    eventName: "robot.system.event", context: ctx, severityText: "INFO",
    attributes: { "robot.system.event_type": "estop", "robot.source": "web", "robot.system.level": "warning",
                  "robot.system.detail": "operator pressed stop" },
  });
  logger.emit({
    eventName: "robot.dds.command", context: ctx,
    attributes: { "robot.dds.seq": 7, "robot.dds.funcode": 1, "robot.joint.id": 6, "robot.target_value": 12.5 },
  });
  span.end();
  await tracerProvider.shutdown();
  await loggerProvider.shutdown();
  console.log("node client done");
}

main().catch((err) => { console.error(err); process.exit(1); });
