// The 'h2load' engine (nghttp2-client): HTTP/2 load, closed loop (-m streams per client) or paced with --rps per
// client. Counts come from its summary lines; latencies from its per-request log (--log-file), which holds only
// the measured phase, so the histograms are ours. h2load paces per connection and times a request from when it
// was actually sent: its paced mode does not correct coordinated omission, and the result says so.
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { missingTools } from '../lib/prereqs.ts';
import { ProcessSupervisor } from '../lib/processes.ts';
import { latencySummary, newHistogram, percentileCurve, recordUs } from './histogram.ts';
import { assertSpec } from './spec-check.ts';
import type { EngineAvailability, LoadResult, LoadSpec } from './types.ts';

/** Streams in flight per client in paced mode when the spec does not say. */
const OPEN_LOOP_STREAMS = 100;

export function h2loadAvailable(spec?: LoadSpec): EngineAvailability {
  if (missingTools({ h2load: 'nghttp2-client' }).length > 0) {
    return { available: false, reason: 'h2load not installed: apt-get install nghttp2-client' };
  }
  if (spec === undefined) return { available: true };
  if (spec.protocol !== 'http2')
    return { available: false, reason: `the h2load engine runs http2 only, not ${spec.protocol}` };
  if (spec.stages !== undefined && spec.stages.length > 0) return { available: false, reason: 'h2load cannot ramp' };
  if (spec.tls?.certFile !== undefined)
    return { available: false, reason: 'h2load cannot present a client certificate' };
  return { available: true };
}

export function h2loadArgv(spec: LoadSpec, logFile: string, dataFile: string | undefined): string[] {
  const streams = spec.streamsPerConnection ?? (spec.mode === 'open' ? OPEN_LOOP_STREAMS : 1);
  const ms = (s: number): string => `${Math.round(s * 1000)}ms`; // h2load's durations take units, not fractions
  const argv = ['h2load', '-t1', `-c${spec.connections}`, `-m${streams}`, `-D${ms(spec.durationS)}`];
  if ((spec.warmupS ?? 0) > 0) argv.push(`--warm-up-time=${ms(spec.warmupS!)}`);
  if (spec.mode === 'open') argv.push(`--rps=${((spec.ratePerS ?? 0) / spec.connections).toFixed(3)}`);
  if (dataFile !== undefined) argv.push('-d', dataFile, '-H', 'content-type: application/octet-stream');
  argv.push(`--log-file=${logFile}`, spec.url);
  return argv;
}

export interface H2loadCounts {
  readonly total: number;
  readonly started: number;
  readonly done: number;
  readonly succeeded: number;
  readonly errored: number;
  readonly timeout: number;
  readonly status4xx: number;
  readonly status5xx: number;
}

/** The "requests:" and "status codes:" lines of h2load's summary. */
export function parseH2loadCounts(stdout: string): H2loadCounts {
  const req =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      stdout,
    );
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  if (req === null || codes === null)
    throw new Error(`h2load printed no summary; its output ended with:\n${stdout.slice(-500)}`);
  return {
    total: Number(req[1]),
    started: Number(req[2]),
    done: Number(req[3]),
    succeeded: Number(req[4]),
    errored: Number(req[6]),
    timeout: Number(req[7]),
    status4xx: Number(codes[3]),
    status5xx: Number(codes[4]),
  };
}

/**
 * Error kinds from h2load's counts: a request done without a status was reset; errored requests beyond those
 * (and timeouts) never started: their connection failed. A run where nothing started at all could not connect.
 */
export function h2loadErrors(c: H2loadCounts, connections: number): Record<string, number> {
  const errors: Record<string, number> = {};
  const add = (kind: string, n: number): void => {
    if (n > 0) errors[kind] = n;
  };
  const reset = Math.max(0, c.done - c.succeeded - c.status4xx - c.status5xx);
  add('status_4xx', c.status4xx);
  add('status_5xx', c.status5xx);
  add('reset', reset);
  add('timeout', c.timeout);
  add('connect', c.started === 0 && c.total === 0 ? connections : Math.max(0, c.errored - reset - c.timeout));
  return errors;
}

/** Builds the latency histogram from h2load's log: "start µs \t status \t duration µs" per request. */
async function readLog(logFile: string): Promise<ReturnType<typeof newHistogram>> {
  const h = newHistogram();
  const lines = createInterface({ input: createReadStream(logFile, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    const [, status, duration] = line.split('\t');
    if (Number(status) > 0) recordUs(h, Number(duration));
  }
  return h;
}

export async function runH2load(spec: LoadSpec, signal?: AbortSignal): Promise<LoadResult> {
  assertSpec(spec);
  const availability = h2loadAvailable(spec);
  if (!availability.available) throw new Error(`the h2load engine cannot run this spec: ${availability.reason}`);
  signal?.throwIfAborted();
  const dir = mkdtempSync(join(tmpdir(), 'skein-h2load-'));
  const supervisor = new ProcessSupervisor(dir);
  const onAbort = (): void => void supervisor.stopAll(500);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const logFile = join(dir, 'requests.log');
    let dataFile: string | undefined;
    if ((spec.payloadBytes ?? 0) > 0) {
      dataFile = join(dir, 'payload');
      writeFileSync(dataFile, Buffer.alloc(spec.payloadBytes!, 'x'));
    }
    const limitS = (spec.warmupS ?? 0) + spec.durationS + 20;
    const result = await supervisor.run('h2load', h2loadArgv(spec, logFile, dataFile), {
      cpu: spec.cpu,
      timeoutMs: limitS * 1000,
    });
    signal?.throwIfAborted();
    if (result.timedOut) throw new Error(`h2load against ${spec.url} did not finish within ${limitS} s`);
    if (result.code !== 0) {
      throw new Error(
        `h2load against ${spec.url} exited with ${result.code ?? result.signal}: ${result.stderr.trim()}`,
      );
    }
    const counts = parseH2loadCounts(result.stdout);
    const errors = h2loadErrors(counts, spec.connections);
    const latency = await readLog(logFile);
    const requests = counts.succeeded + Object.values(errors).reduce((a, b) => a + b, 0);
    return {
      engine: 'h2load',
      protocol: spec.protocol,
      mode: spec.mode,
      durationS: spec.durationS,
      requests,
      ok: counts.succeeded,
      errors,
      throughputPerS: requests / spec.durationS,
      ...(spec.mode === 'open' ? { targetRatePerS: spec.ratePerS } : {}),
      latencyUs: latencySummary(latency),
      percentileCurve: percentileCurve(latency),
      notes:
        spec.mode === 'open'
          ? [
              'h2load --rps paces each connection and times requests from their actual send: coordinated omission is not corrected, and its lag is unknown',
            ]
          : [],
    };
  } finally {
    signal?.removeEventListener('abort', onAbort);
    rmSync(dir, { recursive: true, force: true });
  }
}
