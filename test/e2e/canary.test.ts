// Canary rollouts end to end, all real processes: `skein control` (with and without --prometheus), one
// `skein proxy` taking its routes from control, two versions of a service as node:http servers, a real
// Prometheus scraping the proxy every second, and a bounded load loop sending the service's traffic (Host: app)
// through the proxy. By hand: the split follows promote, survives a control restart, and rollback sends everything
// back at once. Automatically: a canary answering 10% 500s is rolled back, a healthy one is promoted through every
// stage to 100% (across a control restart mid-window), one with autoPromote off waits for a person, and one 3×
// slower is rolled back on the comparison with stable.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { histogramFromBuckets, type VectorSample } from '../../control/canary-prometheus.ts';
import { histogramTotal } from '../../src/canary/histogram.ts';
import { api, type RunningControl, startSkeinControl } from '../support/control.ts';
import { freePort, killAllSkein, type RunningSkein, startSkeinProxy } from '../support/process.ts';
import { type RunningPrometheus, startPrometheus } from '../support/prometheus.ts';
import { waitForAsync } from '../support/wait-for.ts';

interface Version {
  readonly address: string;
  close(): Promise<void>;
}

/** A version of `app`: answers with x-served-by, after `delayMs`, with a 500 for one request in `failEvery`. */
async function startVersion(name: string, opts: { delayMs?: number; failEvery?: number } = {}): Promise<Version> {
  let n = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    const fail = opts.failEvery !== undefined && ++n % opts.failEvery === 0;
    const answer = () => {
      res.writeHead(fail ? 500 : 200, { 'x-served-by': name, 'content-type': 'text/plain' });
      res.end(fail ? 'boom\n' : `${name}\n`);
    };
    if (opts.delayMs === undefined) answer();
    else setTimeout(answer, opts.delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Requests for `app` through the proxy, `concurrency` at a time, until stopped or `maxMs` passed. */
class LoadLoop {
  readonly served = new Map<string, number>();
  #stopped = false;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  readonly #done: Promise<void>;

  constructor(proxyUrl: string, concurrency = 8, maxMs = 90_000) {
    const until = Date.now() + maxMs;
    const worker = async () => {
      while (!this.#stopped && Date.now() < until) await this.#one(proxyUrl).catch(() => {});
    };
    this.#done = Promise.all(Array.from({ length: concurrency }, worker)).then(() => {});
  }

  #one(proxyUrl: string): Promise<void> {
    return new Promise((resolve, reject) => {
      http
        .get(`${proxyUrl}/work`, { agent: this.#agent, headers: { host: 'app' } }, (res) => {
          const who = `${String(res.headers['x-served-by'] ?? 'none')} ${res.statusCode}`;
          this.served.set(who, (this.served.get(who) ?? 0) + 1);
          res.resume().on('end', resolve);
        })
        .on('error', reject);
    });
  }

  reset(): void {
    this.served.clear();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
    this.#agent.destroy();
  }
}

/** Who answers `count` requests for app through the proxy, one at a time. */
async function sample(p: RunningSkein, count: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const agent = new http.Agent({ keepAlive: true });
  for (let i = 0; i < count; i++) {
    const who = await new Promise<string>((resolve, reject) => {
      http
        .get(`${p.url()}/s`, { agent, headers: { host: 'app' } }, (res) => {
          res.resume().on('end', () => resolve(String(res.headers['x-served-by'])));
        })
        .on('error', reject);
    });
    out.set(who, (out.get(who) ?? 0) + 1);
  }
  agent.destroy();
  return out;
}

interface HistoryEntry {
  stage: number;
  weight: number;
  verdict: string | null;
  action: string;
  decidedBy: string;
  reasons: string[];
  stats: { canary: { requests: number; errors: number; p50: number | null } } | null;
}

interface CanaryStatus {
  service: string;
  state: string;
  stageIndex: number;
  note: string | null;
  stages: { weight: number; windowS: number }[];
  history: HistoryEntry[];
}

let dir: string;
let closers: (() => Promise<void>)[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'skein-canary-'));
  closers = [];
});

afterEach(async () => {
  for (const close of closers.reverse()) await close().catch(() => {});
  await killAllSkein();
  rmSync(dir, { recursive: true, force: true });
});

async function version(name: string, opts: { delayMs?: number; failEvery?: number } = {}): Promise<Version> {
  const v = await startVersion(name, opts);
  closers.push(() => v.close());
  return v;
}

async function proxy(control: RunningControl, fallback: Version): Promise<{ proxy: RunningSkein; admin: string }> {
  const adminPort = await freePort();
  const p = await startSkeinProxy(
    [
      '--listen',
      '127.0.0.1:0',
      '--upstream',
      fallback.address,
      '--service',
      'frontend',
      '--admin',
      `127.0.0.1:${adminPort}`,
      '--control',
      control.url,
      '--state-dir',
      join(dir, 'proxy-state'),
      '--node-id',
      'frontend-1',
    ],
    { adminPort },
  );
  return { proxy: p, admin: `127.0.0.1:${adminPort}` };
}

async function registerApp(control: RunningControl, v1: Version, v2: Version): Promise<void> {
  const r = await api(control.url, 'POST', '/v1/services', {
    id: 'app',
    endpoints: [
      { address: v1.address, version: 'v1' },
      { address: v2.address, version: 'v2' },
    ],
  });
  expect(r.status).toBe(201);
}

async function status(control: RunningControl): Promise<CanaryStatus> {
  return (await api<CanaryStatus>(control.url, 'GET', '/v1/canaries/app')).body;
}

/** Waits until the proxy runs control's current config version. */
async function pushed(control: RunningControl): Promise<void> {
  const version = (await api<{ version: number }>(control.url, 'GET', '/v1/config')).body.version;
  await waitForAsync(async () => {
    const rows = (await api<{ lastAck: { version: number } | null }[]>(control.url, 'GET', '/proxies')).body;
    return rows[0]?.lastAck?.version === version ? true : undefined;
  }, 10_000);
}

async function finished(control: RunningControl, timeoutMs: number): Promise<CanaryStatus> {
  return waitForAsync(
    async () => {
      const s = await status(control);
      return ['promoted', 'rolled_back', 'failed', 'paused'].includes(s.state) ? s : undefined;
    },
    timeoutMs,
    250,
  );
}

describe('canary rollouts driven by hand', () => {
  it('splits by stage, promotes and rolls back by hand, refuses bad starts, and resumes after a control restart', async () => {
    const [v1, v2] = [await version('v1'), await version('v2')];
    const controlDir = join(dir, 'control');
    let control = await startSkeinControl(controlDir);
    const { proxy: p } = await proxy(control, v1);
    await registerApp(control, v1, v2);
    const spec = { service: 'app', from: 'v1', to: 'v2', stages: [{ weight: 20, windowS: 3600 }, { weight: 50 }] };

    // Writes need the token; a bad body names each field.
    expect((await api(control.url, 'POST', '/v1/canaries', spec, { token: null })).status).toBe(401);
    const bad = await api<{ error: { problems: string[] } }>(control.url, 'POST', '/v1/canaries', {
      service: 'app',
      from: 'v1',
      to: 'v3',
      stages: [{ weight: 50 }, { weight: 20 }],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.problems).toEqual(['stages[1].weight: weights must rise stage by stage (50 before it)']);
    const noVersion = await api<{ error: { problems: string[] } }>(control.url, 'POST', '/v1/canaries', {
      ...spec,
      to: 'v3',
    });
    expect(noVersion.status).toBe(400);
    expect(noVersion.body.error.problems).toEqual(["to: service 'app' has no endpoint with version 'v3'"]);

    const started = await api<CanaryStatus>(control.url, 'POST', '/v1/canaries', spec);
    expect(started.status).toBe(201);
    expect(started.body.state).toBe('running');
    expect(started.body.note).toBeNull(); // judged on the proxies' own reports (no --prometheus), hour-long windows
    expect(started.body.stages.map((s) => s.weight)).toEqual([20, 50, 100]);
    expect((await api(control.url, 'POST', '/v1/canaries', spec)).status).toBe(409);
    await pushed(control);
    const first = await sample(p, 400);
    expect((first.get('v2') ?? 0) / 400).toBeGreaterThan(0.12);
    expect((first.get('v2') ?? 0) / 400).toBeLessThan(0.28);

    // Traffic not addressed to app is not split.
    const other = await new Promise<string>((resolve, reject) =>
      http
        .get(`${p.url()}/x`, (res) => res.resume().on('end', () => resolve(String(res.headers['x-served-by']))))
        .on('error', reject),
    );
    expect(other).toBe('v1');

    const promoted = await api<CanaryStatus>(control.url, 'POST', '/v1/canaries/app/promote', undefined);
    expect(promoted.body.stageIndex).toBe(1);
    expect(promoted.body.history.at(-1)).toMatchObject({ action: 'promote', verdict: null, weight: 20 });
    await pushed(control);
    const second = await sample(p, 400);
    expect((second.get('v2') ?? 0) / 400).toBeGreaterThan(0.4);
    expect((second.get('v2') ?? 0) / 400).toBeLessThan(0.6);

    // Control restarted: the canary is still at its stage, and the proxy keeps the split.
    const port = new URL(control.url).port;
    await control.kill();
    control = await startSkeinControl(controlDir, ['--listen', `127.0.0.1:${port}`]);
    expect((await status(control)).stageIndex).toBe(1);
    expect((await status(control)).state).toBe('running');
    await waitForAsync(
      async () =>
        (await api<{ connected: boolean }[]>(control.url, 'GET', '/proxies')).body[0]?.connected ? true : undefined,
      15_000,
    );

    const paused = await api<CanaryStatus>(control.url, 'POST', '/v1/canaries/app/pause', undefined);
    expect(paused.body.state).toBe('paused');
    expect((await api<CanaryStatus>(control.url, 'POST', '/v1/canaries/app/resume', undefined)).body.state).toBe(
      'running',
    );
    const rolled = await api<CanaryStatus>(control.url, 'POST', '/v1/canaries/app/rollback', undefined);
    expect(rolled.body.state).toBe('rolled_back');
    await waitForAsync(async () => ((await sample(p, 50)).get('v1') === 50 ? true : undefined), 10_000);
    expect([...(await sample(p, 200))]).toEqual([['v1', 200]]);
    expect((await api(control.url, 'POST', '/v1/canaries/app/promote', undefined)).status).toBe(409);

    // Every traffic change was the controller's, one rule write each.
    const audit = (await api<{ actor: string; objectId: string }[]>(control.url, 'GET', '/v1/audit')).body;
    expect(audit.filter((e) => e.objectId === 'canary-app').map((e) => e.actor)).toEqual([
      'canary-controller',
      'canary-controller',
      'canary-controller',
    ]);
    const openapi = (await api<{ paths: Record<string, unknown> }>(control.url, 'GET', '/openapi.json')).body;
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining(['/v1/canaries', '/v1/canaries/{service}', '/v1/canaries/{service}/rollback']),
    );
    const metrics = (await api<string>(control.url, 'GET', '/metrics')).body;
    expect(metrics).toMatch(/^canary_deployment_status\{service="app",status="rolled_back"\} 1$/m);
  });
});

describe('canary rollouts when Prometheus cannot answer', () => {
  it('a window that cannot be judged is observed again, then the canary fails and all traffic goes back', async () => {
    const [v1, v2] = [await version('v1'), await version('v2')];
    const nothing = await freePort(); // no Prometheus there: every query fails to connect
    const control = await startSkeinControl(join(dir, 'control'), ['--prometheus', `http://127.0.0.1:${nothing}`]);
    const { proxy: p } = await proxy(control, v1);
    await registerApp(control, v1, v2);
    expect((await api(control.url, 'GET', '/v1/canaries/app')).status).toBe(404);
    const start = { service: 'app', from: 'v1', to: 'v2', stages: [{ weight: 50, windowS: 1 }], maxExtensions: 1 };
    expect((await api(control.url, 'POST', '/v1/canaries', start)).status).toBe(201);
    const s = await finished(control, 20_000);
    expect(s.state).toBe('failed');
    expect(s.history.map((h) => `${h.verdict} ${h.action}`)).toEqual(['inconclusive extend', 'inconclusive fail']);
    expect(s.history[0].reasons[0]).toMatch(/^cannot judge the window: /);
    expect(s.history[1].reasons.at(-1)).toMatch(/no verdict after 2 windows .* failed, all traffic back to v1/);
    await pushed(control);
    expect([...(await sample(p, 100))]).toEqual([['v1', 100]]);
    const metrics = (await api<string>(control.url, 'GET', '/metrics')).body;
    expect(metrics).toMatch(/^canary_deployment_status\{service="app",status="failed"\} 1$/m);
  });
});

/** Runs a script of scripts/ (they call bin/skein.js canary) with this Node first on PATH, and `env` added. */
function script(
  name: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = fileURLToPath(new URL(`../../scripts/${name}`, import.meta.url));
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        timeout: 20_000,
        env: {
          ...process.env,
          NODE_OPTIONS: '',
          PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
          ...env,
        },
      },
      (err, stdout, stderr) =>
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }),
    );
  });
}

describe('skein canary and the scripts', () => {
  it('start, status, promote and rollback from the command line', async () => {
    const [v1, v2] = [await version('v1'), await version('v2')];
    const controlDir = join(dir, 'control');
    const control = await startSkeinControl(controlDir);
    const { proxy: p } = await proxy(control, v1);
    await registerApp(control, v1, v2);
    const opts = ['--control', control.url, '--token-file', join(controlDir, 'api-token')];

    const bad = await script('deploy.sh', ['app', 'v1', 'v2', '--stages', '50:60,20:60', ...opts]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('stages[1].weight: weights must rise stage by stage (50 before it)');
    const started = await script('deploy.sh', ['app', 'v1', 'v2', '--stages', '10:3600,50:3600', ...opts]);
    expect(started.stderr).toBe('');
    expect(started.stdout).toMatch(/^app: v1 → v2, running, stage 1\/3 \(10% to v2\)/);
    expect(started.stdout).not.toMatch(/note: /); // judged on the proxies' reports, after an hour-long window
    const noToken = await script('promote.sh', ['app', '--control', control.url, '--token-file', join(dir, 'none')]);
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toMatch(/cannot read the API token/);

    const promoted = await script('promote.sh', ['app', ...opts]);
    expect(promoted.stdout).toMatch(/stage 2\/3 \(50% to v2\)/);
    expect(promoted.stdout).toMatch(/stage 1 \(10%\) .*: verdict -, promote by \S*skein-canary-cli/);
    const shown = await script('status.sh', ['app', '--json', '--control', control.url]);
    expect(JSON.parse(shown.stdout)).toMatchObject({ service: 'app', state: 'running', stageIndex: 1 });

    // Control's address and the token from the environment (a port-forward or the Service address, set once).
    const fromEnv = { SKEIN_CONTROL: control.url, SKEIN_TOKEN_FILE: join(controlDir, 'api-token') };
    const rolled = await script('rollback.sh', ['app'], fromEnv);
    expect(rolled.stderr).toBe('');
    expect(rolled.stdout).toMatch(/^app: v1 → v2, rolled_back/);
    await pushed(control);
    expect([...(await sample(p, 100))]).toEqual([['v1', 100]]);
    const all = await script('status.sh', ['app'], { SKEIN_CONTROL: control.url });
    expect(all.stdout).toMatch(/rolled back by hand by \S*skein-canary-cli/);
  });
});

describe("canary rollouts judged on the proxies' own reports (no Prometheus)", () => {
  it('a canary answering 10% 500s is rolled back on its own, and a healthy one is promoted', async () => {
    const v1 = await version('v1', { delayMs: 2 });
    const bad = await version('v2', { delayMs: 2, failEvery: 10 });
    const control = await startSkeinControl(join(dir, 'control'));
    const adminPort = await freePort();
    const p = await startSkeinProxy(
      [
        ...['--listen', '127.0.0.1:0', '--upstream', v1.address, '--service', 'frontend'],
        ...['--admin', `127.0.0.1:${adminPort}`, '--control', control.url, '--state-dir', join(dir, 'state')],
        ...['--stats-interval-ms', '250'],
      ],
      { adminPort },
    );
    await registerApp(control, v1, bad);
    const load = new LoadLoop(p.url());
    closers.push(() => load.stop());
    const stages = [
      { weight: 50, windowS: 3 },
      { weight: 100, windowS: 3 },
    ];
    expect(
      (await api(control.url, 'POST', '/v1/canaries', { service: 'app', from: 'v1', to: 'v2', stages })).status,
    ).toBe(201);
    const s = await finished(control, 40_000);
    expect(s.state).toBe('rolled_back');
    const decided = s.history.at(-1)!;
    expect(decided).toMatchObject({ verdict: 'rollback', decidedBy: 'canary-controller' });
    expect(decided.stats!.canary.errors).toBeGreaterThan(0);
    await pushed(control);
    load.reset();
    expect([...(await sample(p, 100))]).toEqual([['v1', 100]]);

    // The same service again with a healthy v2 endpoint: promoted through to 100%.
    const good = await version('v2', { delayMs: 2 });
    const svc = await api(control.url, 'PUT', '/v1/services/app', {
      id: 'app',
      endpoints: [
        { address: v1.address, version: 'v1' },
        { address: good.address, version: 'v2' },
      ],
    });
    expect(svc.status).toBe(200);
    await pushed(control);
    const again = await api(control.url, 'POST', '/v1/canaries', { service: 'app', from: 'v1', to: 'v2', stages });
    expect(again.status).toBe(201);
    const done = await finished(control, 40_000);
    expect(done.state).toBe('promoted');
    await load.stop();
    await pushed(control);
    expect([...(await sample(p, 100))]).toEqual([['v2', 100]]);
  });
});

describe('canary rollouts judged on Prometheus', () => {
  async function setup(v2opts: { delayMs?: number; failEvery?: number }) {
    const v1 = await version('v1', { delayMs: 4 });
    const v2 = await version('v2', v2opts);
    const adminPort = await freePort();
    const prometheus: RunningPrometheus = await startPrometheus(dir, [`127.0.0.1:${adminPort}`]);
    closers.push(() => prometheus.stop());
    const control = await startSkeinControl(join(dir, 'control'), ['--prometheus', prometheus.url]);
    const p = await startSkeinProxy(
      [
        '--listen',
        '127.0.0.1:0',
        '--upstream',
        v1.address,
        '--service',
        'frontend',
        '--admin',
        `127.0.0.1:${adminPort}`,
        '--control',
        control.url,
        '--state-dir',
        join(dir, 'proxy-state'),
      ],
      { adminPort },
    );
    await registerApp(control, v1, v2);
    const load = new LoadLoop(p.url());
    closers.push(() => load.stop());
    return { control, proxy: p, load, prometheus };
  }

  const stages = [
    { weight: 20, windowS: 5 },
    { weight: 50, windowS: 5 },
    { weight: 100, windowS: 5 },
  ];

  it('a canary answering 10% 500s is rolled back on its own: all traffic back to v1, with the reasons', async () => {
    const { control, proxy: p, load } = await setup({ delayMs: 4, failEvery: 10 });
    expect(
      (await api(control.url, 'POST', '/v1/canaries', { service: 'app', from: 'v1', to: 'v2', stages })).status,
    ).toBe(201);
    const s = await finished(control, 60_000);
    expect(s.state).toBe('rolled_back');
    const decided = s.history.at(-1)!;
    expect(decided).toMatchObject({ verdict: 'rollback', action: 'rollback', decidedBy: 'canary-controller' });
    expect(decided.reasons[0]).toMatch(/canary error rate \d+\.\d+% .* above the 5% rollback threshold/);
    expect(decided.stats!.canary.errors).toBeGreaterThan(0);
    await load.stop();
    await pushed(control);
    expect([...(await sample(p, 200))]).toEqual([['v1', 200]]);
    const metrics = (await api<string>(control.url, 'GET', '/metrics')).body;
    expect(metrics).toMatch(/^canary_deployment_status\{service="app",status="rolled_back"\} 1$/m);
    expect(metrics).toMatch(/^canary_deployment_error_rate\{service="app"\} \d/m);
  });

  it('a healthy canary is promoted through every stage to 100% v2, across a control restart', async () => {
    const setupDone = await setup({ delayMs: 4 });
    const { proxy: p, load, prometheus } = setupDone;
    let control = setupDone.control;
    const started = await api<CanaryStatus & { windowEndsAt: string }>(control.url, 'POST', '/v1/canaries', {
      service: 'app',
      from: 'v1',
      to: 'v2',
      stages,
    });
    expect(started.status).toBe(201);
    // Control restarted during the first window: the canary goes on at its stage, judged at the same time.
    const port = new URL(control.url).port;
    await control.kill();
    control = await startSkeinControl(join(dir, 'control'), [
      '--listen',
      `127.0.0.1:${port}`,
      '--prometheus',
      prometheus.url,
    ]);
    const resumed = (await api<CanaryStatus & { windowEndsAt: string }>(control.url, 'GET', '/v1/canaries/app')).body;
    expect(resumed).toMatchObject({ state: 'running', stageIndex: 0, windowEndsAt: started.body.windowEndsAt });
    const s = await finished(control, 90_000);
    expect(s.state, JSON.stringify(s.history, null, 1)).toBe('promoted');
    const judged = s.history.filter((h) => h.verdict === 'promote' && h.decidedBy === 'canary-controller');
    expect(judged.map((h) => `${h.weight} ${h.action}`)).toEqual(['20 promote', '50 promote', '100 finish']);
    expect(judged[2].reasons[0]).toMatch(/stable has no traffic to compare with at 100%/);
    for (const h of judged.slice(0, 2)) expect(h.stats!.canary.requests).toBeGreaterThanOrEqual(100);

    // The conversion reads Prometheus's real answer: the histogram holds as many observations as were counted.
    const answer = (await prometheus.queryRaw(
      'sum by (le) (increase(service_mesh_request_duration_seconds_bucket{reporter="source",destination_service="app",destination_version="v2"}[30s]))',
    )) as { data: { result: VectorSample[] } };
    const h = histogramFromBuckets(answer.data.result);
    expect(h.bounds[0]).toBe(1);
    expect(h.counts.length).toBe(h.bounds.length + 1);
    expect(histogramTotal(h)).toBeGreaterThan(100);

    await load.stop();
    await pushed(control);
    expect([...(await sample(p, 200))]).toEqual([['v2', 200]]);
    const metrics = (await api<string>(control.url, 'GET', '/metrics')).body;
    expect(metrics).toMatch(/^canary_deployment_status\{service="app",status="success"\} 1$/m);
  });

  it('with autoPromote off, a window the judge would promote waits for a promote by hand', async () => {
    const { control, proxy: p, load } = await setup({ delayMs: 4 });
    const start = { service: 'app', from: 'v1', to: 'v2', stages: [{ weight: 30, windowS: 4 }], autoPromote: false };
    expect((await api(control.url, 'POST', '/v1/canaries', start)).status).toBe(201);
    const waiting = await waitForAsync(
      async () => {
        const s = await status(control);
        return s.history.some((h) => h.action === 'wait') ? s : undefined;
      },
      60_000,
      250,
    );
    expect(waiting).toMatchObject({ state: 'running', stageIndex: 0 });
    expect(waiting.note).toMatch(/autoPromote is off/);
    expect(waiting.history.find((h) => h.action === 'wait')!.verdict).toBe('promote');
    const done = await api<CanaryStatus>(control.url, 'POST', '/v1/canaries/app/promote', undefined);
    expect(done.body.state).toBe('promoted');
    expect(done.body.note).toBeNull();
    await load.stop();
    await pushed(control);
    expect([...(await sample(p, 100))]).toEqual([['v2', 100]]);
  });

  it('a canary 3× slower than stable is rolled back on the comparison', async () => {
    const { control } = await setup({ delayMs: 15 });
    expect(
      (await api(control.url, 'POST', '/v1/canaries', { service: 'app', from: 'v1', to: 'v2', stages })).status,
    ).toBe(201);
    const s = await finished(control, 60_000);
    expect(s.state, JSON.stringify(s.history, null, 1)).toBe('rolled_back');
    expect(s.history.at(-1)!.reasons[0]).toMatch(/canary latency is significantly higher than stable's/);
  });
});
