// Per-request tracing for the proxy: reads the caller's trace context, decides sampling once per request, and for
// sampled requests records a SERVER span (request head → end) and a CLIENT span (upstream request → end), exported
// over OTLP/HTTP protobuf by a batching processor with a bounded queue. Telemetry wraps the whole pipeline: the
// proxy calls start() at accept, inject() when it builds the upstream request and end() once it has finished.
//
// Unsampled requests (99% at the default ratio) never touch the SDK: they keep the caller's trace id (or get a new
// one), get a span id of their own and pass on a context whose sampled flag is off, as Envoy does. So the decision
// is made once per trace, at its first proxy, and every hop after it follows it (parent-based) instead of drawing
// again and recording fragments of traces; and the access log's trace id joins a request's lines across hops.
import {
  type HrTime,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  createTraceState,
  trace,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BatchSpanProcessor, type IdGenerator, TracerProvider } from '@opentelemetry/sdk-trace';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_SERVICE_NAME,
} from '@opentelemetry/semantic-conventions';
import type { TracingConfig } from '../config/schema.ts';
import { recordOutcome, requestAttributes, spanName } from './trace-attributes.ts';
import {
  IncomingContext,
  type PropagationFormat,
  extractContext,
  newSpanId,
  newTraceId,
  propagationHeaderNames,
  ratioSampled,
  writeContext,
} from './trace-context.ts';
import type { FlatHeaders, HeaderReader, RequestRecord, RequestTracer, TraceState } from './types.ts';

const ALL_FORMATS: readonly PropagationFormat[] = ['w3c', 'b3', 'b3multi'];

/** How long shutdown() waits beyond one export timeout before giving up on the spans still queued. */
const SHUTDOWN_GRACE_MS = 1000;
/** Long attribute values (paths, user agents) are cut here: the export queue's memory stays bounded. */
const ATTRIBUTE_VALUE_LIMIT = 1024;
/** Export requests in flight at once; past this a batch is dropped rather than piling up behind a slow collector. */
const EXPORT_CONCURRENCY = 2;
/** How often the wall clock is read again to place performance.now() times (follows clock steps). */
const CLOCK_REFRESH_MS = 1000;

/** One request's trace. Unsampled: ids only. Sampled: its spans too. */
export class RequestTrace implements TraceState {
  readonly traceId: string;
  /** Our server span's id: the parent of everything this proxy sends on. */
  readonly spanId: string;
  /** The caller's span id ('' for a trace that starts here). */
  readonly parentSpanId: string;
  readonly sampled: boolean;
  readonly debug: boolean;
  /** W3C tracestate, passed on unchanged. */
  readonly traceState: string;
  server: Span | null = null;
  client: Span | null = null;
  /** Upstream attempts that failed and were retried (http.request.resend_count of the next client span). */
  retries = 0;
  /** Wall clock minus performance.now() for every timestamp of this request, so its spans nest exactly. */
  epochOffsetMs = 0;

  constructor(
    traceId: string,
    spanId: string,
    parentSpanId: string,
    sampled: boolean,
    debug: boolean,
    traceState: string,
  ) {
    this.traceId = traceId;
    this.spanId = spanId;
    this.parentSpanId = parentSpanId;
    this.sampled = sampled;
    this.debug = debug;
    this.traceState = traceState;
  }
}

/** How a failed upstream attempt ended, for retry(). */
export interface AttemptOutcome {
  /** HTTP status of the attempt; 0 when none came. */
  readonly status: number;
  /** Envoy-style flag of the failure ("UF", "UT"…); '' for an error status alone. */
  readonly flag: string;
}

/**
 * The SDK asks its IdGenerator for ids; ours hands out the ones the tracer already drew (the ids are needed for
 * propagation and the sampling decision before the SDK is involved, and sampled or not they come from one place).
 */
class PresetIds implements IdGenerator {
  traceId = '';
  spanId = '';
  generateTraceId(): string {
    return this.traceId;
  }
  generateSpanId(): string {
    return this.spanId;
  }
}

export class OtelRequestTracer implements RequestTracer<RequestTrace> {
  readonly headerNames: ReadonlySet<string>;
  private readonly formats: readonly PropagationFormat[];
  private readonly ratio: number;
  private readonly parentBased: boolean;
  private readonly exportTimeoutMs: number;
  private readonly incoming = new IncomingContext();
  private readonly ids = new PresetIds();
  private readonly provider: TracerProvider;
  private readonly tracer: ReturnType<TracerProvider['getTracer']>;
  private shutdownPromise: Promise<void> | null = null;
  private epochOffsetMs = 0;
  private epochOffsetReadAt = -Infinity;

  constructor(cfg: TracingConfig, serviceName: string) {
    this.formats = [...new Set(cfg.propagation)];
    // Every format the proxy understands, not only the configured ones: the header copy skips them all and
    // inject() writes the configured ones, so a caller's b3 beside a w3c-only config is removed, never forwarded
    // stale next to our traceparent (the app would see two contexts).
    this.headerNames = propagationHeaderNames(ALL_FORMATS);
    this.ratio = cfg.samplingRatio;
    this.parentBased = cfg.parentBased;
    this.exportTimeoutMs = cfg.exportTimeoutMs;
    const exporter = new OTLPTraceExporter({
      url: cfg.endpoint,
      timeoutMillis: cfg.exportTimeoutMs,
      concurrencyLimit: EXPORT_CONCURRENCY,
    });
    this.provider = new TracerProvider({
      resource: defaultResource().merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName })),
      // The decision is made in start(); the SDK only ever sees requests that are to be recorded.
      sampler: new AlwaysOnSampler(),
      idGenerator: this.ids,
      spanLimits: { attributeValueLengthLimit: ATTRIBUTE_VALUE_LIMIT },
      spanProcessors: [
        new BatchSpanProcessor({
          exporter,
          maxQueueSize: cfg.maxQueueSize,
          maxExportBatchSize: Math.min(cfg.maxExportBatchSize, cfg.maxQueueSize),
          scheduledDelayMillis: cfg.scheduledDelayMs,
          exportTimeoutMillis: cfg.exportTimeoutMs,
        }),
      ],
    });
    this.tracer = this.provider.getTracer('skein');
  }

  start(rec: RequestRecord, header: HeaderReader): RequestTrace {
    const inc = this.incoming;
    extractContext(this.formats, header, inc);
    const traceId = inc.traceId !== '' ? inc.traceId : newTraceId();
    const sampled = this.parentBased && inc.sampled !== -1 ? inc.sampled === 1 : ratioSampled(traceId, this.ratio);
    const t = new RequestTrace(traceId, newSpanId(), inc.spanId, sampled, sampled && inc.debug, inc.traceState);
    if (sampled) {
      const parent =
        t.parentSpanId === ''
          ? ROOT_CONTEXT
          : trace.setSpanContext(ROOT_CONTEXT, {
              traceId,
              spanId: t.parentSpanId,
              traceFlags: inc.sampled === 1 ? TraceFlags.SAMPLED : TraceFlags.NONE,
              isRemote: true,
              traceState: t.traceState === '' ? undefined : createTraceState(t.traceState),
            });
      this.ids.traceId = traceId;
      this.ids.spanId = t.spanId;
      t.epochOffsetMs = this.epochOffset();
      t.server = this.tracer.startSpan(
        spanName(rec),
        { kind: SpanKind.SERVER, startTime: wallTime(rec.startMs || performance.now(), t.epochOffsetMs) },
        parent,
      );
      // Set after the start rather than passed to it: the SDK cleans start attributes twice (for the sampler,
      // which has nothing to decide here, and for the span); measured ~10-25% of a sampled request's cost.
      t.server.setAttributes(requestAttributes(rec, 'server'));
    }
    return t;
  }

  inject(t: RequestTrace, rec: RequestRecord, out: FlatHeaders): void {
    if (!t.sampled) {
      writeContext(this.formats, t.traceId, t.spanId, '', false, false, t.traceState, out);
      return;
    }
    // A second inject without retry() (a re-sent request): the previous attempt's span ends here, outcome unknown.
    if (t.client !== null) t.client.end(wallTime(performance.now(), t.epochOffsetMs));
    const clientSpanId = newSpanId();
    this.ids.traceId = t.traceId;
    this.ids.spanId = clientSpanId;
    const attributes = requestAttributes(rec, 'client');
    if (t.retries > 0) attributes[ATTR_HTTP_REQUEST_RESEND_COUNT] = t.retries;
    t.client = this.tracer.startSpan(
      spanName(rec),
      { kind: SpanKind.CLIENT, startTime: wallTime(performance.now(), t.epochOffsetMs) },
      trace.setSpan(ROOT_CONTEXT, t.server!),
    );
    t.client.setAttributes(attributes);
    writeContext(this.formats, t.traceId, clientSpanId, t.spanId, true, t.debug, t.traceState, out);
  }

  /**
   * For the retry stage, before it sends the request again: ends the failed attempt's client span with its
   * outcome and notes the retry as an event on the server span; the next inject() starts the next attempt's
   * client span (with http.request.resend_count). Costs nothing for an unsampled request.
   */
  retry(t: RequestTrace, failed: AttemptOutcome): void {
    if (!t.sampled) return;
    t.retries++;
    const errorType = failed.flag !== '' ? failed.flag : failed.status > 0 ? String(failed.status) : '_OTHER';
    const client = t.client;
    if (client !== null) {
      if (failed.status > 0) client.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, failed.status);
      client.setAttribute(ATTR_ERROR_TYPE, errorType);
      client.setStatus({ code: SpanStatusCode.ERROR, message: errorType });
      client.end(wallTime(performance.now(), t.epochOffsetMs));
      t.client = null;
    }
    t.server!.addEvent(
      'retry',
      { [ATTR_HTTP_REQUEST_RESEND_COUNT]: t.retries, [ATTR_ERROR_TYPE]: errorType },
      wallTime(performance.now(), t.epochOffsetMs),
    );
  }

  end(t: RequestTrace, rec: RequestRecord): void {
    if (!t.sampled) return;
    const endTime = wallTime(rec.endMs || performance.now(), t.epochOffsetMs);
    const client = t.client;
    if (client !== null) {
      recordOutcome(client, rec, 'client');
      client.end(endTime);
      t.client = null;
    }
    const server = t.server!;
    recordOutcome(server, rec, 'server');
    server.end(endTime);
  }

  /**
   * The SDK would place each span on the wall clock separately (Date.now(), whole milliseconds), so a client span
   * could seem to end after its server span; one offset per request keeps them nested.
   */
  private epochOffset(): number {
    const now = performance.now();
    if (now - this.epochOffsetReadAt >= CLOCK_REFRESH_MS) {
      this.epochOffsetMs = Date.now() - now;
      this.epochOffsetReadAt = now;
    }
    return this.epochOffsetMs;
  }

  /** Exports what is queued, waiting at most one export timeout (plus a little); a down collector costs that. */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.exportTimeoutMs + SHUTDOWN_GRACE_MS);
      timer.unref();
      this.provider.shutdown().then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        () => {
          // Spans the collector did not take are lost; the proxy is stopping and has nothing better to do.
          clearTimeout(timer);
          resolve();
        },
      );
    });
    return this.shutdownPromise;
  }
}

/** A performance.now() time as OpenTelemetry's [seconds, nanoseconds] since the epoch. */
function wallTime(performanceMs: number, epochOffsetMs: number): HrTime {
  const ms = performanceMs + epochOffsetMs;
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.min(999_999_999, Math.round((ms - seconds * 1000) * 1e6));
  return [seconds, nanos];
}

export function createTracer(cfg: TracingConfig, serviceName: string): RequestTracer {
  return new OtelRequestTracer(cfg, serviceName);
}
