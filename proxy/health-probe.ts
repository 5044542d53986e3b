// One active health check of one endpoint: an HTTP GET (its own connection; h2c for `protocol: http2`
// clusters, whose endpoints may speak nothing else, HTTP/1.1 otherwise), a grpc.health.v1
// Health/Check over h2c (node:http2, the two messages encoded by src/resilience/health.ts), or a TCP connect.
// Each resolves with null when the check passed, or why it failed; it never rejects and never outlives timeoutMs.
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { HealthChecksConfig } from '../src/config/health-schema.ts';
import { grpcHealthRequest, grpcHealthStatus, SERVING } from '../src/resilience/health.ts';

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
}

/** null: passed; a string: why it failed. `defaultHost` is the Host header when the check names none. */
export function probe(
  target: ProbeTarget,
  check: HealthChecksConfig,
  defaultHost: string,
  h2c: boolean,
): Promise<string | null> {
  if (check.type === 'tcp') return probeTcp(target, check.timeoutMs);
  if (check.type === 'grpc') return probeGrpc(target, check.service, check.timeoutMs);
  const host = check.host ?? defaultHost;
  if (h2c) return probeH2c(target, check.path, host, check.expectedStatuses, check.timeoutMs);
  return probeHttp(target, check.path, host, check.expectedStatuses, check.timeoutMs);
}

function probeTcp(target: ProbeTarget, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: target.host, port: target.port });
    const done = (why: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    socket.once('connect', () => done(null));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? 'connect error'));
  });
}

function probeHttp(
  target: ProbeTarget,
  path: string,
  host: string,
  expected: readonly number[],
  timeoutMs: number,
): Promise<string | null> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (why: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(why);
    };
    const req = http.request(
      {
        host: target.host,
        port: target.port,
        path,
        method: 'GET',
        agent: false,
        headers: { host, 'user-agent': 'skein-health-check', connection: 'close' },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        done(expected.includes(status) ? null : `status ${status}`);
      },
    );
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    req.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? 'request error'));
    req.end();
  });
}

/**
 * One HTTP/2 stream on a fresh h2c session to `target`: `send` opens the stream (with `done` to settle), and
 * the session ends with the first verdict (null: healthy) — a timeout, a session or stream error, a reset.
 */
function probeStream(
  target: ProbeTarget,
  timeoutMs: number,
  send: (session: http2.ClientHttp2Session, done: (why: string | null) => void) => http2.ClientHttp2Stream,
): Promise<string | null> {
  return new Promise((resolve) => {
    let settled = false;
    const session = http2.connect(`http://${authorityOf(target)}`);
    const done = (why: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    session.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? 'connect error'));
    const stream = send(session, done);
    stream.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? 'stream error'));
    stream.once('close', () => done(`stream closed (code ${stream.rstCode ?? 0})`)); // a reset without an answer
  });
}

function probeH2c(
  target: ProbeTarget,
  path: string,
  host: string,
  expected: readonly number[],
  timeoutMs: number,
): Promise<string | null> {
  return probeStream(target, timeoutMs, (session, done) => {
    const stream = session.request(
      { ':method': 'GET', ':path': path, ':authority': host, 'user-agent': 'skein-health-check' },
      { endStream: true },
    );
    stream.once('response', (headers) => {
      const status = Number(headers[':status']);
      done(expected.includes(status) ? null : `status ${status}`);
    });
    return stream;
  });
}

function authorityOf(target: ProbeTarget): string {
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

function probeGrpc(target: ProbeTarget, service: string, timeoutMs: number): Promise<string | null> {
  return probeStream(target, timeoutMs, (session, done) => {
    const stream = session.request({
      ':method': 'POST',
      ':path': '/grpc.health.v1.Health/Check',
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'skein-health-check',
    });
    const chunks: Buffer[] = [];
    let headerStatus: string | undefined;
    stream.on('response', (headers) => {
      headerStatus = headers['grpc-status'] as string | undefined; // a trailers-only answer
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('trailers', (trailers) => {
      headerStatus ??= trailers['grpc-status'] as string | undefined;
    });
    stream.once('end', () => {
      if (headerStatus !== undefined && headerStatus !== '0') return done(`grpc-status ${headerStatus}`);
      const status = grpcHealthStatus(Buffer.concat(chunks));
      if (status === null) return done('malformed HealthCheckResponse');
      done(status === SERVING ? null : `serving status ${status}`);
    });
    stream.end(grpcHealthRequest(service));
    return stream;
  });
}
