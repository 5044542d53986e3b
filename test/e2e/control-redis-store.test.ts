// `skein control --store redis://...` end to end: a real redis-server, control as a real process. What is
// written through the API (a service, a benchmark job) is still there after control restarts with an empty
// data directory (so it came from Redis, not from files), and bad --store values are refused with the option named.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchJob } from '../../control/bench-jobs.ts';
import { api, type RunningControl, startSkeinControl } from '../support/control.ts';
import { runSkein } from '../support/process.ts';
import { type RunningRedis, startRedis } from '../support/redis.ts';

const dirs: string[] = [];
const controls: RunningControl[] = [];
let redis: RunningRedis;

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'skein-control-redis-'));
  dirs.push(dir);
  return dir;
}

async function start(prefix: string): Promise<RunningControl> {
  const control = await startSkeinControl(tmp(), ['--store', redis.url, '--store-prefix', prefix]);
  controls.push(control);
  return control;
}

beforeAll(async () => {
  redis = await startRedis();
}, 20_000);

afterAll(async () => {
  for (const c of controls) await c.kill();
  await redis?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Never finishes on its own within a test: it is cancelled. */
const LONG = {
  label: 'e2e redis store',
  localTargets: ['direct'],
  scenarios: ['http1-max'],
  rounds: 1,
  durationS: 600,
  warmupS: 0,
  firstWarmupS: 0,
  probes: false,
};

describe('skein control --store redis://', () => {
  it('keeps services and benchmark jobs written through its API in Redis across a restart', async () => {
    const first = await start('e2e-restart');
    expect(first.stdout).toContain(`records in Redis ${redis.url} prefix e2e-restart`);
    const service = { id: 'app', endpoints: [{ address: '127.0.0.1:9', version: 'v1' }] };
    expect((await api(first.url, 'POST', '/v1/services', service)).status).toBe(201);
    const submitted = await api<BenchJob>(first.url, 'POST', '/benchmarks/start', LONG);
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    const id = submitted.body.id;
    expect((await api<BenchJob>(first.url, 'DELETE', `/benchmarks/jobs/${id}`)).body.status).toBe('cancelled');
    first.signal('SIGTERM');
    expect((await first.waitForExit(30_000)).code).toBe(0);

    // A new data directory: nothing on disk to remember anything by.
    const second = await start('e2e-restart');
    const job = await api<BenchJob>(second.url, 'GET', `/benchmarks/jobs/${id}`);
    expect(job.status).toBe(200);
    expect(job.body).toMatchObject({ id, status: 'cancelled', request: { label: 'e2e redis store' } });
    const stored = await api(second.url, 'GET', '/v1/services/app');
    expect(stored.status).toBe(200);
    expect(stored.body).toMatchObject(service);

    // Another prefix on the same Redis is another, empty, control.
    const other = await start('e2e-other');
    expect((await api(other.url, 'GET', `/benchmarks/jobs/${id}`)).status).toBe(404);
  }, 90_000);

  it('refuses a bad --store or --store-prefix naming the option, and an unreachable Redis at start', async () => {
    for (const [args, message] of [
      [['--store', 'mysql://127.0.0.1:3306'], /--store must be 'file' or redis:\/\/HOST:PORT\[\/DB\]/],
      [['--store', 'redis://127.0.0.1:6379/x'], /--store must be .*DB is a database number/],
      [['--store', 'file', '--store-prefix', 'p'], /--store-prefix applies to a Redis store only/],
      [['--store', redis.url, '--store-prefix', 'bad prefix'], /--store-prefix must be/],
    ] as const) {
      const r = await runSkein(['control', '--listen', '127.0.0.1:0', '--data-dir', tmp(), ...args]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(message);
    }
    const gone = await startRedis();
    await gone.stop();
    const r = await runSkein(['control', '--listen', '127.0.0.1:0', '--data-dir', tmp(), '--store', gone.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot start: cannot reach Redis at ${gone.url}`);
  }, 60_000);
});
