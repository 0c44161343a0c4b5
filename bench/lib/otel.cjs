// OpenTelemetry for the comparison mode of bench/realistic.bench.mjs, preloaded with
// `node --require bench/lib/otel.cjs server.cjs`, as the OpenTelemetry docs set up a Node app:
// - tracing: a NodeTracerProvider (AlwaysOn sampling, the default) with a BatchSpanProcessor at
//   its default settings (queue 2048, batches of 512, every 5 s) whose exporter takes each batch
//   and drops it, so every span is started, ended, queued and batched but sent nowhere;
// - metrics: a MeterProvider with a PrometheusExporter (its own /metrics server on
//   OTEL_BENCH_PROMETHEUS_PORT; nothing scrapes it during the bench);
// - instrumentations: http (which also records http.server.duration into the MeterProvider), pg
//   (spans for pool.connect and each query) and ioredis (a span per command), default options.
'use strict';
const { metrics } = require('@opentelemetry/api');
const { ExportResultCode } = require('@opentelemetry/core');
const { PrometheusExporter } = require('@opentelemetry/exporter-prometheus');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { IORedisInstrumentation } = require('@opentelemetry/instrumentation-ioredis');
const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { MeterProvider } = require('@opentelemetry/sdk-metrics');
const { BatchSpanProcessor, NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');

/** Takes every batch and drops it: the export costs nothing, everything before it is real. */
class DroppingSpanExporter {
  exported = 0;
  export(spans, resultCallback) {
    this.exported += spans.length;
    resultCallback({ code: ExportResultCode.SUCCESS });
  }
  shutdown() {
    return Promise.resolve();
  }
  forceFlush() {
    return Promise.resolve();
  }
}

const resource = resourceFromAttributes({ 'service.name': 'leakwatch-bench' });
const tracerProvider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new DroppingSpanExporter())] });
tracerProvider.register();

const prometheus = new PrometheusExporter({ host: '127.0.0.1', port: Number(process.env.OTEL_BENCH_PROMETHEUS_PORT) || 9464 });
const meterProvider = new MeterProvider({ resource, readers: [prometheus] });
metrics.setGlobalMeterProvider(meterProvider);

registerInstrumentations({
  tracerProvider,
  meterProvider,
  instrumentations: [new HttpInstrumentation(), new PgInstrumentation(), new IORedisInstrumentation()],
});
