// The probe-run manager against a real file store: requests checked at the edge with field paths, PIDs that
// do not exist refused, runs that control lost to a crash marked interrupted, and old runs forgotten. (Attaching
// real probes is test/e2e/control-probes.test.ts, as root.)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../control/http.ts';
import { type ProbeRunRecord, ProbeRuns } from '../../control/probe-runs.ts';
import { FileStore } from '../../control/store/file.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function store(): FileStore {
  const dir = mkdtempSync(join(tmpdir(), 'skein-probe-runs-'));
  dirs.push(dir);
  return new FileStore({ dir });
}
const DAY_MS = 24 * 60 * 60 * 1000;
const quiet = () => {};

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('no ApiError');
}

function record(id: string, status: ProbeRunRecord['status'], finishedDaysAgo?: number): ProbeRunRecord {
  const at = new Date(Date.now() - (finishedDaysAgo ?? 0) * DAY_MS).toISOString();
  return {
    id,
    status,
    pids: [1],
    scripts: ['oncpu'],
    durationS: 5,
    createdAt: at,
    ...(finishedDaysAgo !== undefined && { finishedAt: at }),
    warnings: [],
  };
}

describe('probe runs', () => {
  it('names every bad field of a start request', async () => {
    const runs = await ProbeRuns.open({ store: store(), retentionMs: DAY_MS, log: quiet });
    const err = await apiError(runs.start({ pids: [0, 'x'], durationS: -1, scripts: ['kprobe-all'], extra: 1 }));
    expect(err.status).toBe(400);
    const text = err.problems.join('\n');
    for (const path of ['pids[0]', 'pids[1]', 'durationS', 'scripts[0]']) expect(text).toContain(`${path}: `);
    expect(text).toMatch(/extra/);
    expect((await apiError(runs.start(undefined))).status).toBe(400);
    await runs.close();
  });

  it('refuses a PID that no process has', async () => {
    const runs = await ProbeRuns.open({ store: store(), retentionMs: DAY_MS, log: quiet });
    const err = await apiError(runs.start({ pids: [process.pid, 4_194_303] }));
    expect(err.problems).toEqual(['pids[1]: no process with PID 4194303']);
    expect(runs.list()).toEqual([]); // nothing recorded for a refused request
    await runs.close();
  });

  it('marks a run that was attached when control died as interrupted, and answers for unknown or finished runs', async () => {
    const s = store();
    await s.put('probe-runs', record('pr-lost', 'running'));
    const runs = await ProbeRuns.open({ store: s, retentionMs: DAY_MS, log: quiet });
    const lost = runs.get('pr-lost');
    expect(lost.status).toBe('interrupted');
    expect(lost.error).toBe('control stopped while the probe ran');
    expect((await s.get<ProbeRunRecord>('probe-runs', 'pr-lost'))!.status).toBe('interrupted');
    expect((await apiError(runs.stop('pr-lost'))).status).toBe(409);
    expect((await apiError(Promise.resolve().then(() => runs.result('pr-lost')))).status).toBe(404);
    expect((await apiError(Promise.resolve().then(() => runs.get('pr-none')))).status).toBe(404);
    expect(runs.status().recent.map((r) => r.id)).toEqual(['pr-lost']);
    await runs.close();
  });

  it('forgets finished runs older than the retention period and keeps the rest', async () => {
    const s = store();
    await s.put('probe-runs', record('pr-old', 'succeeded', 31));
    await s.put('probe-runs', record('pr-recent', 'succeeded', 2));
    const runs = await ProbeRuns.open({ store: s, retentionMs: 30 * DAY_MS, log: quiet });
    expect(runs.list().map((r) => r.id)).toEqual(['pr-recent']);
    expect(await s.get('probe-runs', 'pr-old')).toBeUndefined();
    await runs.close();
  });
});
