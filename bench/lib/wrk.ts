// Reads the summary line that wrk-summary.lua adds to wrk's output as JSON, so results come from wrk's own
// counters and HdrHistogram instead of its human-readable table (bench/load/wrk.ts runs wrk).
const SUMMARY_PREFIX = 'WRK_SUMMARY ';

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
