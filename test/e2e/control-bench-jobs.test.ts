// Control's bench job API end to end: `skein control` as a real process, real `skein bench` runs (the direct
// target only, to stay short), cancelling with everything the run started gone afterwards, and the job history
// surviving both a crash and a clean stop of control. Every process is killed by PID in afterAll.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchReport } from '../../bench/report/model.ts';
import type { BenchJob } from '../../control/bench-jobs.ts';
import { alive, api, descendantsOf, type RunningControl, startSkeinControl } from '../support/control.ts';
import { waitFor, waitForAsync } from '../support/wait-for.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'skein-control-e2e-'));
let control: RunningControl;
const started: RunningControl[] = [];

async function start(): Promise<RunningControl> {
  control = await startSkeinControl(dataDir);
  started.push(control);
  return control;
}

beforeAll(async () => {
  await start();
});

afterAll(async () => {
  for (const c of started) await c.kill();
  rmSync(dataDir, { recursive: true, force: true });
});

const QUICK = {
  label: 'e2e quick',
  localTargets: ['direct'],
  scenarios: ['http1-max'],
  rounds: 1,
  durationS: 1,
  warmupS: 0,
  firstWarmupS: 0,
  probes: false,
};
/** Long enough never to finish on its own in a test: only cancelled or interrupted. */
const LONG = { ...QUICK, label: 'e2e long', durationS: 600 };

const job = async (id: string) => (await api<BenchJob>(control.url, 'GET', `/benchmarks/jobs/${id}`)).body;

async function submit(body: unknown): Promise<BenchJob> {
  const res = await api<BenchJob>(control.url, 'POST', '/benchmarks/start', body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

/** Until the job's run is measuring (its generator and origin are up). */
async function measuring(id: string): Promise<BenchJob> {
  return waitForAsync(async () => {
    const j = await job(id);
    return j.status === 'running' && /direct/.test(j.progress?.step ?? '') && j.pid !== undefined ? j : undefined;
  }, 60_000);
}

describe('skein control: bench job API', () => {
  it('answers a bad request with 400 naming each field, unknown paths with 404 and wrong methods with 405', async () => {
    const bad = await api<{ error: { code: string; problems: string[] } }>(control.url, 'POST', '/benchmarks/start', {
      localTargets: ['direct', 'envoy'],
      rounds: 0,
      skeinCmd: 'touch /tmp/pwned',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('SKEIN_BAD_REQUEST');
    const problems = bad.body.error.problems.join('\n');
    expect(problems).toMatch(/^localTargets\[1\]: /m);
    expect(problems).toMatch(/^rounds: /m);
    expect(problems).toMatch(/skeinCmd/);

    const malformed = await api<{ error: { problems: string[] } }>(
      control.url,
      'POST',
      '/benchmarks/start',
      '{"rounds":',
    );
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.problems[0]).toMatch(/^\(body\): /);

    expect((await api(control.url, 'GET', '/benchmarks/nope')).status).toBe(404);
    expect((await api(control.url, 'GET', '/benchmarks/jobs/bj-none')).status).toBe(404);
    const wrong = await fetch(`${control.url}/benchmarks/start`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect((await api(control.url, 'GET', '/benchmarks/jobs?status=bogus')).status).toBe(400);
    // Nothing was queued by any of that, and control still answers.
    expect((await api<BenchJob[]>(control.url, 'GET', '/benchmarks/jobs')).body).toEqual([]);
    expect((await api(control.url, 'GET', '/healthz')).status).toBe(200);
  });

  let finishedId = '';

  it('runs a job to the end, with progress while it runs and its report as JSON, Markdown and HTML after', async () => {
    const submitted = await submit(QUICK);
    expect(['queued', 'running']).toContain(submitted.status);
    expect(submitted.meshTypes).toEqual(['baseline']);
    let sawProgress = false;
    const done = await waitForAsync(
      async () => {
        const j = await job(submitted.id);
        if (j.status === 'running' && j.progress !== undefined) sawProgress = true;
        return j.status === 'running' || j.status === 'queued' ? undefined : j;
      },
      90_000,
      100,
    );
    expect(done.status, done.log.join('\n')).toBe('succeeded');
    expect(sawProgress).toBe(true);
    expect(done.exitCode).toBe(0);
    expect(done.progress?.percent).toBe(100);
    expect(done.startedAt! >= done.createdAt && done.finishedAt! >= done.startedAt!).toBe(true);

    const result = await api<BenchReport>(control.url, 'GET', `/benchmarks/jobs/${submitted.id}/result`);
    expect(result.status).toBe(200);
    const direct = result.body.targets.find((t) => t.name === 'direct');
    expect(direct?.results.length).toBeGreaterThan(0);
    const html = await api<string>(control.url, 'GET', `/benchmarks/jobs/${submitted.id}/report.html`);
    expect(html.contentType).toMatch(/^text\/html/);
    expect(html.body).toMatch(/^<!doctype html>/i);
    const md = await api<string>(control.url, 'GET', `/benchmarks/jobs/${submitted.id}/report.md`);
    expect(md.body).toContain('direct');

    const ids = async (q: string) =>
      (await api<BenchJob[]>(control.url, 'GET', `/benchmarks/jobs${q}`)).body.map((j) => j.id);
    expect(await ids('?status=succeeded')).toContain(submitted.id);
    expect(await ids('?mesh=baseline')).toContain(submitted.id);
    expect(await ids('?mesh=istio')).not.toContain(submitted.id);
    finishedId = submitted.id;
  }, 120_000);

  it('queues behind a running job; cancels a queued job at once and a running one with every process it started', async () => {
    const long = await submit(LONG);
    const running = await measuring(long.id);
    const queued = await submit(QUICK);
    expect(queued.status).toBe('queued');

    const cancelledQueued = await api<BenchJob>(control.url, 'DELETE', `/benchmarks/jobs/${queued.id}`);
    expect(cancelledQueued.status).toBe(200);
    expect(cancelledQueued.body.status).toBe('cancelled');
    expect(cancelledQueued.body.startedAt).toBeUndefined();

    const processes = [running.pid!, ...descendantsOf(running.pid!)];
    expect(processes.length).toBeGreaterThan(1); // the run's origin and load generator
    const cancelled = await api<BenchJob>(control.url, 'DELETE', `/benchmarks/jobs/${long.id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    await waitFor(() => processes.every((p) => !alive(p)), 5_000);

    expect((await api(control.url, 'DELETE', `/benchmarks/jobs/${long.id}`)).status).toBe(409);
    expect((await api(control.url, 'GET', `/benchmarks/jobs/${long.id}/result`)).status).toBe(404);
    expect((await job(queued.id)).status).toBe('cancelled'); // and it never started
  }, 120_000);

  it('keeps the history across a crash and a clean stop: queued jobs run after a restart, running ones are marked interrupted', async () => {
    // Crash: control is SIGKILLed while a job runs; the kernel tells the run (pdeathsig) and it stops what it started.
    const crashed = await submit(LONG);
    const running = await measuring(crashed.id);
    const processes = [running.pid!, ...descendantsOf(running.pid!)];
    const waiting = await submit(QUICK);
    control.signal('SIGKILL');
    await control.waitForExit();
    await waitFor(() => processes.every((p) => !alive(p)), 15_000);

    await start();
    const after = await job(crashed.id);
    expect(after.status).toBe('interrupted');
    expect(after.error).toMatch(/control stopped while the job ran/);
    const resumed = await waitForAsync(
      async () => {
        const j = await job(waiting.id);
        return j.status === 'succeeded' || j.status === 'failed' ? j : undefined;
      },
      90_000,
      200,
    );
    expect(resumed.status, resumed.log.join('\n')).toBe('succeeded');
    // The job finished before the crash is still there, report and all.
    expect((await job(finishedId)).status).toBe('succeeded');
    expect((await api(control.url, 'GET', `/benchmarks/jobs/${finishedId}/result`)).status).toBe(200);

    // Clean stop: SIGTERM stops the running job and control exits 0.
    const stopped = await submit(LONG);
    const run = await measuring(stopped.id);
    control.signal('SIGTERM');
    expect((await control.waitForExit(45_000)).code).toBe(0);
    expect(alive(run.pid!)).toBe(false);
    await start();
    const record = await job(stopped.id);
    expect(record.status).toBe('interrupted');
    expect(record.error).toMatch(/control shut down while the job ran/);
  }, 240_000);
});
