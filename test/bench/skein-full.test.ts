// The skein-full bench targets run for real: the proxy the plan starts, with the config the plan writes, in front of
// the bench origin, carries every resilience stage (health checks, outlier detection, breakers, retries, a rate
// limit; for skein-full-global the limit kept in the redis-server the plan starts) and none of them fires under
// load: every request succeeds, nothing is rate limited or retried, and the admin listener shows it all loaded.
// Then one short `skein bench` run measures both with no errors, and stops the redis-server it started.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Origin, startOrigin } from '../../bench/origin/index.ts';
import { httpGetText, waitForHttpOk } from '../../bench/lib/http-check.ts';
import { freePorts } from '../../bench/lib/ports.ts';
import { ProcessSupervisor } from '../../bench/lib/processes.ts';
import { redisServerMissing, waitForRedis } from '../../bench/lib/redis.ts';
import { planTarget } from '../../bench/lib/targets.ts';
import type { BenchReport } from '../../bench/report/model.ts';
import { waitForAsync } from '../support/wait-for.ts';

const PROJECT = new URL('../..', import.meta.url).pathname;
const REQUESTS = 400;
const POSTS = 40;
const CONCURRENCY = 16;

const dirs: string[] = [];
const supervisors: ProcessSupervisor[] = [];
const origins: Origin[] = [];

afterAll(async () => {
  for (const s of supervisors) await s.stopAll();
  for (const o of origins) await o.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Sum of a metric's samples whose labels include every `labels` pair (Prometheus text format). */
function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const set = m[2] ?? '';
    if (!Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) continue;
    sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}

interface Answer {
  readonly status: number;
  readonly body: string;
}

function send(port: number, agent: http.Agent, method: 'GET' | 'POST', i: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: `/item/${i}`, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(method === 'POST' ? Buffer.alloc(1000 + i, 'x') : undefined);
  });
}

/** REQUESTS GETs and POSTS POSTs, CONCURRENCY at a time over keep-alive connections, as a bench client sends. */
async function load(port: number): Promise<Answer[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const answers: Answer[] = [];
  let next = 0;
  const total = REQUESTS + POSTS;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      answers.push(await send(port, agent, i < REQUESTS ? 'GET' : 'POST', i));
    }
  };
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  } finally {
    agent.destroy();
  }
  return answers;
}

async function runTarget(name: 'skein-full' | 'skein-full-global') {
  const runDir = mkdtempSync(join(tmpdir(), `skein-${name}-`));
  dirs.push(runDir);
  const supervisor = new ProcessSupervisor(runDir);
  supervisors.push(supervisor);
  const origin = await startOrigin({ port: 0 });
  origins.push(origin);
  const [port, adminPort, redisPort] = await freePorts(3);
  const plan = planTarget(name, {
    port,
    originPort: origin.port,
    adminPort,
    redisPort,
    runDir,
    projectDir: PROJECT,
    nodePath: process.execPath,
    skeinReadyTimeoutMs: 15_000,
    origin: 'node',
  });
  if (plan.kind !== 'process') throw new Error(`${name} did not plan a process: ${JSON.stringify(plan)}`);
  for (const c of plan.companions ?? []) {
    const proc = supervisor.start(c.name, c.argv, { cwd: runDir });
    expect(await waitForRedis(c.redisPort, c.readyTimeoutMs, proc.hasExited)).toBeUndefined();
  }
  const proxy = supervisor.start(name, plan.argv, { env: plan.env, cwd: plan.cwd });
  expect(await waitForHttpOk(port, plan.readyTimeoutMs, proxy.hasExited)).toBeUndefined();
  const scrape = async () => (await httpGetText(adminPort, '/metrics')).body;
  // The active checks have run and passed before the load starts. The counters are read here and after the load:
  // skein-full-global answers 429 (failureMode closed) until its first Redis connection is up, which the readiness
  // probe may meet; the load must meet nothing.
  const before = await waitForAsync(async () => {
    const text = await scrape();
    return (metric(text, 'skein_health_checks_total', { result: 'success' }) ?? 0) >= 1 ? text : undefined;
  }, 5000);

  const answers = await load(port);
  const clusters = JSON.parse((await httpGetText(adminPort, '/clusters')).body) as {
    clusters: {
      name: string;
      healthyEndpoints: number;
      circuitBreakers: { maxRequests: number; overflows: Record<string, number> };
      retryBudget: { retries: number; refused: number };
      endpoints: {
        health: string;
        activeCheck: string;
        ejections: number;
        breaker: { state: string; timesOpened: number };
      }[];
    }[];
  };
  return { answers, before, metrics: await scrape(), clusters: clusters.clusters };
}

function expectNothingFired(r: Awaited<ReturnType<typeof runTarget>>): void {
  const { answers, before, metrics, clusters } = r;
  /** How much a counter grew during the load (undefined: the proxy does not export it). */
  const grew = (name: string, labels: Record<string, string> = {}) => {
    const after = metric(metrics, name, labels);
    return after === undefined ? undefined : after - (metric(before, name, labels) ?? 0);
  };
  expect(answers).toHaveLength(REQUESTS + POSTS);
  expect(answers.filter((a) => a.status !== 200)).toEqual([]);
  expect(answers.filter((a) => a.body === 'ok\n')).toHaveLength(REQUESTS);
  // The stages are built (their metrics are exported from the moment they exist) and never acted.
  expect(grew('service_mesh_rate_limited_requests_total'), 'rate limited').toBe(0);
  expect(metric(metrics, 'service_mesh_retries_total'), 'retries').toBe(0);
  expect(metric(metrics, 'skein_health_checks_total', { result: 'success' }), 'checks passed').toBeGreaterThanOrEqual(
    1,
  );
  expect(metric(metrics, 'skein_health_checks_total', { result: 'failure' }), 'checks failed').toBe(0);
  expect(metric(metrics, 'skein_outlier_ejections_total', { cluster: 'origin' }), 'ejections').toBe(0);
  expect(metric(metrics, 'skein_endpoints_healthy', { cluster: 'origin' }), 'healthy endpoints').toBe(1);
  expect(metric(metrics, 'skein_upstream_overflow_total', { cluster: 'origin' }), 'overflows').toBe(0);
  expect(metric(metrics, 'skein_circuit_breaker_state', { cluster: 'origin' }), 'breaker state').toBe(0);
  // Every request of the load was a 200 from the origin, with no response flag (RL, URX, UO, UH…).
  expect(grew('service_mesh_requests_total'), 'requests').toBe(REQUESTS + POSTS);
  expect(grew('service_mesh_requests_total', { response_code: '200', response_flag: '' }), 'plain 200s').toBe(
    REQUESTS + POSTS,
  );

  expect(clusters).toHaveLength(1);
  const [origin] = clusters;
  expect(origin.healthyEndpoints).toBe(1);
  expect(origin.circuitBreakers.maxRequests).toBe(1024);
  expect(Object.values(origin.circuitBreakers.overflows)).toEqual([0, 0, 0, 0]);
  expect(origin.retryBudget).toMatchObject({ retries: 0, refused: 0 });
  expect(origin.endpoints).toHaveLength(1);
  expect(origin.endpoints[0]).toMatchObject({
    health: 'healthy',
    activeCheck: 'passing',
    ejections: 0,
    breaker: { state: 'closed', timesOpened: 0 },
  });
}

describe('the skein-full bench targets under load', () => {
  it('skein-full: every request succeeds through health checks, outlier detection, breakers, retries and the rate limit, none of which fires', async () => {
    const r = await runTarget('skein-full');
    expectNothingFired(r);
    expect(metric(r.metrics, 'skein_ratelimit_redis_seconds_count')).toBeUndefined(); // local limit: no Redis
  }, 60_000);

  it.skipIf(redisServerMissing() !== undefined)(
    'skein-full-global: the same, each request counted in the redis-server the plan starts, none refused',
    async () => {
      const r = await runTarget('skein-full-global');
      expectNothingFired(r);
      // One Redis round trip per request of the load, every one allowed.
      const count = (text: string, result: string) =>
        metric(text, 'skein_ratelimit_redis_seconds_count', { result }) ?? 0;
      expect(count(r.metrics, 'allowed') - count(r.before, 'allowed'), 'allowed by Redis').toBe(REQUESTS + POSTS);
      expect(count(r.metrics, 'limited'), 'limited by Redis').toBe(0);
      expect(count(r.metrics, 'error') - count(r.before, 'error'), 'Redis errors during the load').toBe(0);
    },
    60_000,
  );
});

describe('a short skein bench run of the skein-full targets', () => {
  it.skipIf(redisServerMissing() !== undefined)(
    'measures skein-full and skein-full-global with no errors and stops the redis-server afterwards',
    async () => {
      const out = mkdtempSync(join(tmpdir(), 'skein-bench-full-'));
      dirs.push(out);
      const argv = ['bench/cli.ts', 'run', '--local-targets', 'skein-full,skein-full-global', '--rounds', '1'];
      argv.push('--duration-s', '1', '--warmup-s', '0.5', '--first-warmup-s', '0', '--rate', '200');
      argv.push('--no-probes', '--out', out);
      const child = spawn(process.execPath, argv, {
        cwd: PROJECT,
        detached: true,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, NODE_OPTIONS: '' },
      });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
      // A backstop only: the run is sized to take 10–20 s.
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 50_000);
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      clearTimeout(timer);
      expect(code, stderr).toBe(0);

      const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as BenchReport;
      expect(report.targets.map((t) => [t.name, t.available])).toEqual([
        ['skein-full', true],
        ['skein-full-global', true],
      ]);
      for (const t of report.targets) {
        expect(t.description, t.name).toMatch(/health checks.*outlier detection.*breaker.*retries.*rate limit/);
        expect(t.results.map((x) => x.scenario)).toEqual(['http1-max', 'http1-200rps']);
        for (const x of t.results) {
          expect(x.rounds[0].requests, `${t.name} ${x.scenario}`).toBeGreaterThan(0);
          expect(x.summary.errors, `${t.name} ${x.scenario}`).toEqual({});
        }
      }
      const redisPort = Number(
        /redis-server started for the run on 127\.0\.0\.1:(\d+)/.exec(report.targets[1].description)?.[1],
      );
      expect(redisPort).toBeGreaterThan(0);
      expect(await waitForRedis(redisPort, 300)).toMatch(/no PONG/);
    },
    60_000,
  );
});
