// The proxy's telemetry for the current config: the tracer and the access log every listener reports to
// (metrics live in ProxyStats). A reload that changes the telemetry section builds new ones and retires the
// old ones a little later, so requests in flight can still end their spans; an unchanged section keeps them.
// The OpenTelemetry SDK and pino are loaded only once a config turns tracing or the access log on: a proxy
// without them does not carry their code and objects (~5 MB of RSS for the SDK and its OTLP exporter).
import type { TelemetryConfig } from '../src/config/schema.ts';
import type { AccessLog } from '../src/telemetry/access-log.ts';
import type { RequestRecord, RequestTracer, TraceState } from '../src/telemetry/types.ts';
import type { Logger } from '../src/log.ts';

/** How long a replaced tracer or access log stays open for the requests that started with it. */
const RETIRE_AFTER_MS = 15_000;

type TracingModule = typeof import('../src/telemetry/tracing.ts');
type AccessLogModule = typeof import('../src/telemetry/access-log.ts');
let tracingModule: TracingModule | null = null;
let accessLogModule: AccessLogModule | null = null;

export class ProxyTelemetry {
  tracer: RequestTracer | null = null;
  accessLog: AccessLog | null = null;
  private tracingKey = '';
  private accessLogKey = '';
  private readonly log: Logger;
  private readonly baseDir: string;

  constructor(log: Logger, baseDir: string) {
    this.log = log;
    this.baseDir = baseDir;
  }

  /** Loads the modules `cfg` needs, before the swap (so that `apply` stays synchronous). */
  async prepare(cfg: TelemetryConfig): Promise<void> {
    if (cfg.tracing.enabled) tracingModule ??= await import('../src/telemetry/tracing.ts');
    if (cfg.accessLog.enabled) accessLogModule ??= await import('../src/telemetry/access-log.ts');
  }

  /** Builds what changed; the replaced tracer and log are shut down in the background. Call `prepare` first. */
  apply(cfg: TelemetryConfig, serviceName: string): void {
    const tracingKey = cfg.tracing.enabled ? JSON.stringify([cfg.tracing, serviceName]) : '';
    if (tracingKey !== this.tracingKey) {
      const old = this.tracer;
      this.tracer = cfg.tracing.enabled ? loaded(tracingModule).createTracer(cfg.tracing, serviceName) : null;
      this.tracingKey = tracingKey;
      if (old !== null) this.retire('tracer', () => old.shutdown());
    }
    const accessLogKey = cfg.accessLog.enabled ? JSON.stringify(cfg.accessLog) : '';
    if (accessLogKey !== this.accessLogKey) {
      const old = this.accessLog;
      this.accessLog = cfg.accessLog.enabled
        ? new (loaded(accessLogModule).AccessLog)(cfg.accessLog, this.baseDir, (message) => this.log.warn(message))
        : null;
      this.accessLogKey = accessLogKey;
      if (old !== null) this.retire('access log', () => old.close());
    }
  }

  /** Once per request, when the head is parsed. */
  startTrace(rec: RequestRecord, header: (name: string) => string | undefined): TraceState | null {
    return this.tracer === null ? null : this.tracer.start(rec, header);
  }

  /** Once per request, when it has finished. `tracer`: the one that started its trace. */
  onRequestEnd(rec: RequestRecord, trace: TraceState | null, tracer: RequestTracer | null): void {
    if (trace !== null && tracer !== null) tracer.end(trace, rec);
    this.accessLog?.onRequestEnd(rec);
  }

  async shutdown(): Promise<void> {
    await Promise.allSettled([this.tracer?.shutdown(), this.accessLog?.close()]);
    this.tracer = null;
    this.accessLog = null;
  }

  private retire(what: string, close: () => Promise<void>): void {
    const timer = setTimeout(() => {
      close().catch((err: Error) => this.log.warn(`closing the replaced ${what} failed`, { error: err.message }));
    }, RETIRE_AFTER_MS);
    timer.unref();
  }
}

function loaded<M>(module: M | null): M {
  if (module === null) throw new Error('telemetry module used before ProxyTelemetry.prepare() loaded it');
  return module;
}
