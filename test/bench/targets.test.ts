// Target planning for `skein bench`: which local targets can run and why not, the configs the harness writes for
// nginx, HAProxy, skein-telemetry and skein-full (checked by nginx -t, haproxy -c and the proxy's own validation),
// skein-full-global's redis-server (or why it cannot run), and the
// http-proxy peer started for real and used through: plain requests on a reused upstream connection, WebSocket.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { waitForHttpOk } from '../../bench/lib/http-check.ts';
import { freePorts } from '../../bench/lib/ports.ts';
import { redisServerMissing } from '../../bench/lib/redis.ts';
import { SKEIN_FULL_RATE_PER_S } from '../../bench/lib/skein-full.ts';
import { skeinTelemetryConfig } from '../../bench/lib/skein-telemetry.ts';
import { LOCAL_TARGET_NAMES, planTarget, targetProtocols } from '../../bench/lib/targets.ts';
import { parseRunOptions, type RunOptions } from '../../bench/run/options.ts';
import { type Installed, plannedSeconds, planRun } from '../../bench/run/plan.ts';
import { parseConfigText } from '../../src/config/load.ts';

const PROJECT = new URL('../..', import.meta.url).pathname;
const ALL: Installed = { nginx: true, haproxy: true, wrk: true, taskset: true };
const opts = (...argv: string[]) => parseRunOptions(argv) as RunOptions;
const dirs: string[] = [];
const children: ChildProcess[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'skein-bench-targets-'));
  dirs.push(d);
  return d;
};

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('planning the targets', () => {
  it('runs the mTLS targets and nginx-tls; skein-full runs; skein-full-global needs redis-server', () => {
    const plan = planRun(opts('--local-targets', 'all'), ALL, PROJECT);
    const reason = (n: string) => plan.targets.find((t) => t.name === n)?.unavailableReason;
    for (const n of [
      'direct',
      'skein',
      'skein-telemetry',
      'skein-pair',
      'skein-mtls',
      'skein-mtls-handshake',
      'skein-full',
      'nginx-tls',
      'nginx',
      'haproxy',
      'http-proxy',
      'naive-undici',
    ])
      expect(reason(n), n).toBeUndefined();
    if (redisServerMissing() === undefined) expect(reason('skein-full-global')).toBeUndefined();
    else expect(reason('skein-full-global')).toMatch(/^redis-server is not installed.*global rate limit/);
    expect(plan.targets.map((t) => t.name)).toEqual(LOCAL_TARGET_NAMES);
    expect(plan.targets.find((t) => t.name === 'skein-telemetry')?.mesh).toBe('skein');
    expect(plan.targets.find((t) => t.name === 'nginx')?.mesh).toBe('baseline');
  });

  it('gives a reason for peers whose binary or package is missing', () => {
    const none: Installed = { nginx: false, haproxy: false, wrk: false, taskset: false };
    const plan = planRun(opts('--local-targets', 'nginx,haproxy,http-proxy'), none, tmp());
    const reasons = Object.fromEntries(plan.targets.map((t) => [t.name, t.unavailableReason]));
    expect(reasons.nginx).toBe('nginx is not installed (apt-get install -y nginx)');
    expect(reasons.haproxy).toBe('haproxy is not installed (apt-get install -y haproxy)');
    expect(reasons['http-proxy']).toMatch(/http-proxy package is not installed.*production installs/);
    // A PATH without redis-server (the sbin directories are searched too, where Debian never puts it).
    const path = process.env.PATH;
    process.env.PATH = tmp();
    try {
      const global = planRun(opts('--local-targets', 'skein-full-global'), none, tmp()).targets[0];
      expect(global.unavailableReason).toBe(
        'redis-server is not installed (apt-get install -y redis-server): skein-full-global keeps its global rate limit in a redis-server',
      );
    } finally {
      process.env.PATH = path;
    }
    expect(plan.notes.join('\n')).toMatch(/nginx is not installed: the HTTP\/1.1 scenarios used the Node origin/);
    expect(plan.notes.join('\n')).toMatch(/taskset is not installed/);
    expect(plan.notes.join('\n')).toMatch(
      /http1-max: the builtin generator drove the closed loop \(wrk is not available\)/,
    );
  });

  it('runs HTTP/1.1 before the nginx origin and the other protocols before the Node origin, remote ones in both', () => {
    const o = opts('--scenarios', 'http1-max,grpc-unary-open,websocket-max', '--remote', 'i=istio:http://h:8080');
    const plan = planRun(o, ALL, PROJECT);
    expect(plan.phases.map((p) => [p.origin, p.scenarios.map((s) => s.spec.id)])).toEqual([
      ['nginx', ['http1-max']],
      ['node', ['grpc-unary-1000rps', 'websocket-max']],
    ]);
    expect(plan.phases[0].scenarios[0].spec.engine).toBe('wrk');
    expect(plan.targets.at(-1)).toMatchObject({ name: 'i', kind: 'remote', mesh: 'istio' });
    const remoteOnly = planRun(opts('--local-targets', 'none', '--remote', 'i=istio:http://h:8080'), ALL, PROJECT);
    expect(remoteOnly.phases.map((p) => p.origin)).toEqual(['none']);
    expect(targetProtocols('naive-undici')).toEqual(['http1']);
    expect(targetProtocols('http-proxy')).toEqual(['http1', 'websocket']);
  });

  it('budgets the default run well under five minutes on two CPUs', () => {
    const o = opts();
    const seconds = plannedSeconds(planRun(o, ALL, PROJECT), o, true);
    expect(seconds).toBeGreaterThan(60);
    expect(seconds).toBeLessThan(240);
  });
});

describe('the configs the harness writes', () => {
  const ctx = (runDir: string) => ({
    port: 18080,
    h2Port: 18081,
    originPort: 18082,
    runDir,
    projectDir: PROJECT,
    nodePath: process.execPath,
    skeinReadyTimeoutMs: 1000,
    origin: 'node' as const,
  });

  it('nginx before the Node origin: a config nginx -t accepts, with an h2c listener and grpc_pass', () => {
    const dir = tmp();
    const plan = planTarget('nginx', ctx(dir));
    expect(plan).toMatchObject({ kind: 'process', h2Port: 18081 });
    if (plan.kind !== 'process') return;
    const t = spawnSync(plan.argv[0], [...plan.argv.slice(1), '-t'], { encoding: 'utf8' });
    expect(t.status, t.stderr).toBe(0);
  });

  it('HAProxy before the Node origin: a config haproxy -c accepts, with an h2 frontend and server', () => {
    const dir = tmp();
    const plan = planTarget('haproxy', ctx(dir));
    expect(plan).toMatchObject({ kind: 'process', h2Port: 18081 });
    const r = spawnSync('haproxy', ['-c', '-f', join(dir, 'haproxy.cfg')], { encoding: 'utf8' });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  });

  it('skein-telemetry: a config the proxy accepts, with metrics, 1% traces and access log, a header route first', () => {
    const text = skeinTelemetryConfig({
      port: 1,
      originPort: 2,
      adminPort: 3,
      otlpEndpoint: 'http://127.0.0.1:4/v1/traces',
      accessLogPath: '/tmp/x.log',
    });
    const cfg = parseConfigText(text, 'skein-telemetry');
    expect(cfg.telemetry.metrics.enabled).toBe(true);
    expect(cfg.telemetry.tracing).toMatchObject({ enabled: true, samplingRatio: 0.01 });
    expect(cfg.telemetry.accessLog).toMatchObject({ enabled: true, sampleRatio: 0.01, path: '/tmp/x.log' });
    const routes = cfg.listeners[0].routes;
    expect(routes[0].match.headers).toHaveLength(1);
    expect(routes[0].priority).toBeGreaterThan(routes[1].priority);
    expect(routes[1].match.pathPrefix).toBe('/');
  });

  it('skein-full: a config the proxy accepts with every resilience stage configured, and a description naming them', () => {
    const dir = tmp();
    const plan = planTarget('skein-full', { ...ctx(dir), adminPort: 18083 });
    expect(plan.kind).toBe('process');
    if (plan.kind !== 'process') return;
    expect(plan.companions ?? []).toEqual([]);
    expect(plan.env?.SKEIN_CONFIG).toBe(join(dir, 'skein-full.yaml'));
    const cfg = parseConfigText(readFileSync(join(dir, 'skein-full.yaml'), 'utf8'), 'skein-full');
    expect(cfg.admin?.address).toBe('127.0.0.1:18083');
    const [listener] = cfg.listeners;
    expect(listener.address).toBe('127.0.0.1:18080');
    const [route] = listener.routes;
    expect(route.retries).toMatchObject({ maxRetries: 2, retriableStatusCodes: [503] });
    expect(route.retries?.retryOn).toEqual([
      'connect-failure',
      'refused-stream',
      'reset',
      'retriable-status-codes',
      'unavailable',
    ]);
    expect(route.rateLimit).toMatchObject({
      requestsPerSecond: SKEIN_FULL_RATE_PER_S,
      burstSize: SKEIN_FULL_RATE_PER_S,
    });
    expect(route.rateLimit?.global).toBeUndefined();
    expect(SKEIN_FULL_RATE_PER_S).toBeGreaterThanOrEqual(1_000_000);
    const [cluster] = cfg.clusters;
    expect(cluster.discovery).toMatchObject({ type: 'static', endpoints: [{ address: '127.0.0.1:18082' }] });
    expect(cluster.healthChecks).toMatchObject({ type: 'http', path: '/', intervalMs: 1000, expectedStatuses: [200] });
    expect(cluster.outlierDetection).toMatchObject({ consecutive5xx: 5, consecutiveGatewayErrors: 5 });
    expect(cluster.circuitBreakers).toMatchObject({ maxConnections: 1024, maxRequests: 1024, maxRetries: 3 });
    expect(cluster.circuitBreakers.endpoint).toMatchObject({ consecutiveFailures: 5, failureRatePercent: 50 });
    expect(plan.description).toMatch(
      /health checks.*outlier detection.*circuit breakers.*per-endpoint breaker.*retries.*local rate limit of 1,000,000 req\/s.*no mTLS/,
    );
  });

  it('skein-full-global: the same with the rate limit in Redis, and the redis-server the run starts for it', () => {
    const dir = tmp();
    if (redisServerMissing() !== undefined) {
      const plan = planTarget('skein-full-global', { ...ctx(dir), adminPort: 18083, redisPort: 18084 });
      expect(plan).toEqual({ kind: 'skip', reason: expect.stringMatching(/^redis-server is not installed/) });
      return;
    }
    const plan = planTarget('skein-full-global', { ...ctx(dir), adminPort: 18083, redisPort: 18084 });
    expect(plan.kind).toBe('process');
    if (plan.kind !== 'process') return;
    expect(plan.companions).toHaveLength(1);
    const [redis] = plan.companions!;
    expect(redis.argv[0]).toBe('redis-server');
    expect(redis.argv.join(' ')).toContain('--port 18084 --bind 127.0.0.1');
    expect(redis.redisPort).toBe(18084);
    const cfg = parseConfigText(readFileSync(join(dir, 'skein-full-global.yaml'), 'utf8'), 'skein-full-global');
    const [route] = cfg.listeners[0].routes;
    expect(route.rateLimit).toMatchObject({
      requestsPerSecond: SKEIN_FULL_RATE_PER_S,
      global: { redis: 'redis://127.0.0.1:18084', failureMode: 'closed' },
    });
    expect(cfg.clusters[0].healthChecks?.type).toBe('http');
    expect(cfg.clusters[0].circuitBreakers.endpoint).toBeDefined();
    expect(plan.description).toMatch(
      /global rate limit of 1,000,000 req\/s kept in a redis-server .*127\.0\.0\.1:18084/,
    );
  });
});

describe('the http-proxy target', () => {
  it('forwards requests over a reused upstream connection, and WebSocket upgrades', async () => {
    let connections = 0;
    const origin = http.createServer((req, res) => res.end(`origin saw ${req.method} ${req.url}`));
    origin.on('connection', () => connections++);
    const wss = new WebSocketServer({ server: origin, path: '/ws' });
    wss.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    const originPort = (origin.address() as AddressInfo).port;
    try {
      const [port] = await freePorts(1);
      const plan = planTarget('http-proxy', {
        port,
        originPort,
        runDir: tmp(),
        projectDir: PROJECT,
        nodePath: process.execPath,
        skeinReadyTimeoutMs: 1000,
      });
      expect(plan.kind).toBe('process');
      if (plan.kind !== 'process') return;
      const child = spawn(plan.argv[0], plan.argv.slice(1), { cwd: plan.cwd, stdio: 'ignore' });
      children.push(child);
      expect(await waitForHttpOk(port, 10_000)).toBeUndefined();
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const get = (path: string) =>
        new Promise<string>((resolve, reject) =>
          http
            .get({ host: '127.0.0.1', port, path, agent }, (res) => {
              let body = '';
              res.on('data', (c: Buffer) => (body += c.toString()));
              res.on('end', () => resolve(body));
            })
            .on('error', reject),
        );
      const before = connections;
      for (let i = 0; i < 5; i++) expect(await get(`/x?i=${i}`)).toBe(`origin saw GET /x?i=${i}`);
      agent.destroy();
      expect(connections - before).toBe(1); // the readiness probe's connection came before

      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      const echoed = await new Promise<string>((resolve, reject) => {
        ws.on('open', () => ws.send('hello through http-proxy'));
        ws.on('message', (m) => resolve(m.toString()));
        ws.on('error', reject);
      });
      ws.close();
      expect(echoed).toBe('hello through http-proxy');
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    } finally {
      origin.closeAllConnections();
      await new Promise((r) => origin.close(r));
    }
  });
});
