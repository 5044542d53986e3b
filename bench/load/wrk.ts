// The 'wrk' engine: closed-loop HTTP/1.1 load from wrk (one thread, so it stays on one core), read from the
// machine-readable lines our Lua script prints (bench/lib/wrk-summary.lua's summary plus a percentile curve).
// wrk cannot pace requests, ramp, or present a client certificate; engineAvailable says so before a run.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingTools } from '../lib/prereqs.ts';
import { ProcessSupervisor } from '../lib/processes.ts';
import { parseWrkSummary, type WrkSummary } from '../lib/wrk.ts';
import { curveFromPoints, curvePercentiles } from './histogram.ts';
import { assertSpec } from './spec-check.ts';
import type { EngineAvailability, LoadResult, LoadSpec } from './types.ts';

/** A Lua file of bench/ (tsc does not copy them): beside this module, or in the sources when this runs from dist/. */
function luaFile(pathInBench: string): string {
  const candidates = [
    new URL(`../${pathInBench}`, import.meta.url),
    new URL(`../../../bench/${pathInBench}`, import.meta.url),
  ];
  return fileURLToPath(candidates.find((u) => existsSync(u)) ?? candidates[0]);
}

const LOAD_SCRIPT = luaFile('load/wrk-load.lua');
const SUMMARY_SCRIPT = luaFile('lib/wrk-summary.lua');
const CURVE_PREFIX = 'WRK_CURVE ';

/** Whether wrk is installed and, given a spec, whether wrk can run it. */
export function wrkAvailable(spec?: LoadSpec): EngineAvailability {
  if (missingTools({ wrk: 'wrk' }).length > 0)
    return { available: false, reason: 'wrk not installed: apt-get install wrk' };
  const missing = [LOAD_SCRIPT, SUMMARY_SCRIPT].find((f) => !existsSync(f));
  if (missing !== undefined) return { available: false, reason: `wrk's script ${missing} is missing` };
  if (spec === undefined) return { available: true };
  if (spec.protocol !== 'http1') return { available: false, reason: `wrk speaks HTTP/1.1 only, not ${spec.protocol}` };
  if (spec.mode !== 'closed')
    return { available: false, reason: 'wrk runs closed loop only (it cannot pace requests)' };
  if (spec.stages !== undefined && spec.stages.length > 0) return { available: false, reason: 'wrk cannot ramp' };
  if (spec.tls?.certFile !== undefined) return { available: false, reason: 'wrk cannot present a client certificate' };
  return { available: true };
}

export function wrkLoadArgv(spec: LoadSpec, durationS: number): string[] {
  const timeoutS = Math.max(1, Math.ceil((spec.timeoutMs ?? 5000) / 1000));
  return [
    'wrk',
    '-t1',
    `-c${spec.connections}`,
    `-d${Math.max(1, Math.round(durationS))}s`,
    `--timeout`,
    `${timeoutS}s`,
    '--latency',
    '-s',
    LOAD_SCRIPT,
    spec.url,
  ];
}

/** The WRK_CURVE line: [[percentile, µs], …]; empty when absent. */
export function parseWrkCurve(stdout: string): [number, number][] {
  const line = stdout.split('\n').find((l) => l.startsWith(CURVE_PREFIX));
  if (line === undefined) return [];
  return curveFromPoints(JSON.parse(line.slice(CURVE_PREFIX.length)) as [number, number][]);
}

/** wrk's counters as a LoadResult: socket errors are requests too; status ≥ 400 is all wrk can tell apart. */
export function wrkResult(spec: LoadSpec, summary: WrkSummary, curve: readonly [number, number][]): LoadResult {
  const e = summary.errors;
  const errors: Record<string, number> = {};
  const add = (kind: string, n: number): void => {
    if (n > 0) errors[kind] = (errors[kind] ?? 0) + n;
  };
  add('connect', e.connect);
  add('reset', e.read + e.write);
  add('timeout', e.timeout);
  add('status_4xx_5xx', e.status);
  const requests = summary.requests + e.connect + e.read + e.write;
  const durationS = summary.durationUs / 1e6;
  const finest = summary.requests > 1 ? 100 * (1 - 1 / summary.requests) : 0;
  return {
    engine: 'wrk',
    protocol: spec.protocol,
    mode: spec.mode,
    durationS,
    requests,
    ok: Math.max(0, summary.requests - e.status - e.timeout),
    errors,
    throughputPerS: durationS > 0 ? requests / durationS : 0,
    latencyUs: {
      p50: summary.p50Us,
      p90: summary.p90Us,
      p99: summary.p99Us,
      p999: summary.p999Us,
      max: summary.maxUs,
      mean: summary.meanUs,
    },
    percentileCurve: curve.filter(([p]) => p <= finest || p === 100),
    notes: ['wrk: errors of status ≥ 400 are one kind (status_4xx_5xx); a timeout may also be counted as a response'],
  };
}

/** What a run against a target wrk could not connect to at all: one failed connection per connection. */
function unreachable(spec: LoadSpec): LoadResult {
  return {
    engine: 'wrk',
    protocol: spec.protocol,
    mode: spec.mode,
    durationS: spec.durationS,
    requests: spec.connections,
    ok: 0,
    errors: { connect: spec.connections },
    throughputPerS: 0,
    latencyUs: { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 },
    percentileCurve: [],
    notes: ['wrk could not connect and stopped before sending'],
  };
}

export async function runWrkLoad(spec: LoadSpec, signal?: AbortSignal): Promise<LoadResult> {
  assertSpec(spec);
  const availability = wrkAvailable(spec);
  if (!availability.available) throw new Error(`the wrk engine cannot run this spec: ${availability.reason}`);
  signal?.throwIfAborted();
  const logDir = mkdtempSync(join(tmpdir(), 'skein-wrk-'));
  const supervisor = new ProcessSupervisor(logDir);
  const onAbort = (): void => void supervisor.stopAll(500);
  signal?.addEventListener('abort', onAbort, { once: true });
  const env = {
    ...process.env,
    SKEIN_WRK_BODY_BYTES: String(spec.payloadBytes ?? 0),
    SKEIN_WRK_SUMMARY: SUMMARY_SCRIPT,
    SKEIN_WRK_CURVE: curvePercentiles(100_000).join(','),
  };
  /** wrk's stdout, or undefined when it could not connect at all (it exits 1 before any request). */
  const once = async (durationS: number): Promise<string | undefined> => {
    const result = await supervisor.run('wrk', wrkLoadArgv(spec, durationS), {
      cpu: spec.cpu,
      env,
      timeoutMs: (durationS + 20) * 1000,
    });
    signal?.throwIfAborted();
    if (result.timedOut) throw new Error(`wrk against ${spec.url} did not finish within ${durationS + 20} s`);
    if (result.code !== 0 && /unable to connect/.test(result.stderr + result.stdout)) return undefined;
    if (result.code !== 0) {
      throw new Error(`wrk against ${spec.url} exited with ${result.code ?? result.signal}: ${result.stderr.trim()}`);
    }
    return result.stdout;
  };
  try {
    if ((spec.warmupS ?? 0) > 0) await once(spec.warmupS!);
    const stdout = await once(spec.durationS);
    if (stdout === undefined) return unreachable(spec);
    return wrkResult(spec, parseWrkSummary(stdout), parseWrkCurve(stdout));
  } finally {
    signal?.removeEventListener('abort', onAbort);
    rmSync(logDir, { recursive: true, force: true });
  }
}
