// Access log: one JSON line per finished request, in the spirit of Envoy's default format (what was asked,
// how it ended, which upstream answered, how long each part took, which trace it belongs to). Lines go to
// pino's asynchronous destination (sonic-boom): writes are batched off the request path, and a destination
// that cannot keep up loses lines (counted) instead of growing memory or blocking the event loop. The line is
// our own JSON, not a pino log record: no level, time or pid fields — every line is a request.
import { isAbsolute, resolve } from 'node:path';
import pino from 'pino';
import { fastRandom } from '../lb/fast-random.ts';
import type { AccessLogConfig } from '../config/schema.ts';
import type { RequestRecord } from './types.ts';

/** Buffered output beyond this is dropped (a stuck pipe or disk must not take the proxy's memory). */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/** The line for one request. Field names follow Envoy's access log vocabulary in snake_case. */
export function accessLogEntry(rec: RequestRecord): Record<string, string | number> {
  const upstreamMs =
    rec.upstreamHeadersMs > 0 && rec.upstreamStartMs > 0 ? round3(rec.upstreamHeadersMs - rec.upstreamStartMs) : -1;
  const entry: Record<string, string | number> = {
    start_time: new Date(performance.timeOrigin + rec.startMs).toISOString(),
    listener: rec.listenerName,
    direction: rec.direction,
    method: rec.method,
    authority: rec.authority,
    path: rec.path,
    protocol: rec.protocol,
    response_code: rec.status,
    response_flags: rec.flag === '' ? '-' : rec.flag,
    bytes_received: rec.requestBytes,
    bytes_sent: rec.responseBytes,
    duration_ms: round3(rec.endMs - rec.startMs),
    upstream_service_time_ms: upstreamMs,
    upstream_host: rec.upstreamHost === '' ? '-' : rec.upstreamHost,
    upstream_cluster: rec.clusterName === '' ? '-' : rec.clusterName,
    route_name: rec.routeName === '' ? '-' : rec.routeName,
    x_request_id: rec.requestId,
    trace_id: rec.traceId === '' ? '-' : rec.traceId,
    downstream_remote_address: rec.remoteAddress,
    user_agent: rec.userAgent === '' ? '-' : rec.userAgent,
    source_service: rec.sourceService,
    destination_service: rec.destinationService === '' ? '-' : rec.destinationService,
    destination_version: rec.destinationVersion === '' ? '-' : rec.destinationVersion,
  };
  if (rec.isGrpc) entry.grpc_status = rec.grpcStatus;
  // Only when a pool sent the request again (keep-alive close race, HTTP/2 refused): most lines stay as they were.
  if (rec.upstreamAttempts !== undefined && rec.upstreamAttempts > 1) entry.upstream_attempts = rec.upstreamAttempts;
  return entry;
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export class AccessLog {
  private readonly destination: pino.DestinationStream & {
    flush(cb?: (err?: Error) => void): void;
    end(): void;
    on(event: 'drop' | 'error', listener: (arg: unknown) => void): unknown;
  };
  private readonly sampleRatio: number;
  private readonly alwaysLogErrors: boolean;
  /** Lines a full buffer or a failing destination lost. */
  dropped = 0;
  written = 0;

  /** `baseDir`: a relative `path` resolves against it (the config file's directory). */
  constructor(cfg: AccessLogConfig, baseDir: string, onProblem: (message: string) => void) {
    const dest =
      cfg.path === 'stdout'
        ? 1
        : cfg.path === 'stderr'
          ? 2
          : isAbsolute(cfg.path)
            ? cfg.path
            : resolve(baseDir, cfg.path);
    this.destination = pino.destination({
      dest,
      sync: false,
      minLength: 0,
      maxLength: MAX_BUFFERED_BYTES,
      mkdir: typeof dest === 'string',
    }) as unknown as AccessLog['destination'];
    let warned = false;
    this.destination.on('drop', (data) => {
      this.dropped += typeof data === 'string' ? data.split('\n').length - 1 : 1;
      if (!warned) {
        warned = true;
        onProblem(`access log destination ${cfg.path} cannot keep up; dropping lines`);
      }
    });
    this.destination.on('error', (err) => onProblem(`access log destination ${cfg.path}: ${String(err)}`));
    this.sampleRatio = cfg.sampleRatio;
    this.alwaysLogErrors = cfg.alwaysLogErrors;
  }

  /** Whether this request gets a line: sampled, or an error when errors are always logged. */
  wants(rec: RequestRecord): boolean {
    if (this.sampleRatio >= 1) return true;
    if (this.alwaysLogErrors && (rec.flag !== '' || rec.status >= 500)) return true;
    return this.sampleRatio > 0 && fastRandom() < this.sampleRatio;
  }

  onRequestEnd(rec: RequestRecord): void {
    if (!this.wants(rec)) return;
    this.destination.write(`${JSON.stringify(accessLogEntry(rec))}\n`);
    this.written++;
  }

  /** Writes out what is buffered (bounded wait) and closes the destination. */
  close(timeoutMs = 2000): Promise<void> {
    return new Promise((done) => {
      const timer = setTimeout(finish, timeoutMs);
      let finished = false;
      const dest = this.destination;
      function finish(): void {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        try {
          dest.end();
        } catch {
          // Already closed or never opened: nothing left to write.
        }
        done();
      }
      try {
        dest.flush(() => finish());
      } catch {
        finish();
      }
    });
  }
}
