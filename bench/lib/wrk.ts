// Runs wrk (closed-loop HTTP/1.1 load) and returns the summary that wrk-summary.lua prints as JSON,
// so results come from wrk's own counters and HdrHistogram instead of its human-readable table.
import { fileURLToPath } from 'node:url';
import type { ProcessSupervisor } from './processes.ts';

const SUMMARY_SCRIPT = fileURLToPath(new URL('./wrk-summary.lua', import.meta.url));
const SUMMARY_PREFIX = 'WRK_SUMMARY ';

export interface WrkOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationS: number;
  /** wrk threads; 1 keeps the load generator on one core. */
  readonly threads?: number;
  /** CPU to pin wrk to. */
  readonly cpu?: number;
}

export interface WrkErrors {
  readonly connect: number;
  readonly read: number;
  readonly write: number;
  readonly timeout: number;
  /** Responses with a status >= 400. */
  readonly status: number;
}

export interface WrkSummary {
  readonly requests: number;
  readonly durationUs: number;
  readonly bytes: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly p999Us: number;
  readonly maxUs: number;
  readonly meanUs: number;
  readonly errors: WrkErrors;
  /** Derived: requests ÷ duration. */
  readonly requestsPerSecond: number;
  /** Derived: all socket errors plus error statuses. */
  readonly errorCount: number;
}

/** Extracts the WRK_SUMMARY line from wrk's stdout; throws with the output's tail when there is none. */
export function parseWrkSummary(stdout: string): WrkSummary {
  const line = stdout.split('\n').find((l) => l.startsWith(SUMMARY_PREFIX));
  if (line === undefined) throw new Error(`wrk printed no summary line; its output ended with:\n${stdout.slice(-500)}`);
  const raw = JSON.parse(line.slice(SUMMARY_PREFIX.length)) as Omit<WrkSummary, 'requestsPerSecond' | 'errorCount'>;
  const e = raw.errors;
  return {
    ...raw,
    requestsPerSecond: raw.durationUs > 0 ? raw.requests / (raw.durationUs / 1e6) : 0,
    errorCount: e.connect + e.read + e.write + e.timeout + e.status,
  };
}

/** The argv of one wrk run with the summary script, e.g. for a "how measured" note. */
export function wrkArgv(opts: WrkOptions, withLatency = true): string[] {
  return [
    'wrk',
    `-t${opts.threads ?? 1}`,
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    ...(withLatency ? ['--latency'] : []),
    '-s',
    SUMMARY_SCRIPT,
    opts.url,
  ];
}

/** One wrk run in its own process group; killed if it overruns its duration by 20 s (wrk itself can hang on a dead peer). */
export async function runWrk(supervisor: ProcessSupervisor, opts: WrkOptions): Promise<WrkSummary> {
  const result = await supervisor.run('wrk', wrkArgv(opts), {
    cpu: opts.cpu,
    timeoutMs: (opts.durationS + 20) * 1000,
  });
  if (result.timedOut) throw new Error(`wrk against ${opts.url} did not finish within ${opts.durationS + 20} s`);
  if (result.code !== 0) {
    throw new Error(`wrk against ${opts.url} exited with ${result.code ?? result.signal}: ${result.stderr.trim()}`);
  }
  return parseWrkSummary(result.stdout);
}
