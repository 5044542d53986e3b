// The TLS bench targets: skein-pair (two proxies, plaintext between them), skein-mtls (the same pair over mutual TLS
// with certificates from a CA made for the run), skein-mtls-handshake (no idle connection kept between the proxies)
// and nginx-tls (nginx terminating TLS with a certificate from the same CA). Their configs pass the project's schema
// and `nginx -t`; then one short real `skein bench` run measures all of them with no errors, counts both proxies in
// the CPU figures, and reports the handshakes each target counted. No timing is asserted.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseStubStatusAccepts } from '../../bench/lib/nginx-tls.ts';
import { promCounter } from '../../bench/lib/handshakes.ts';
import { type BenchCerts, benchSpiffeId, makeBenchCerts } from '../../bench/lib/mesh-certs.ts';
import { skeinMeshInboundConfig, skeinMeshOutboundConfig } from '../../bench/lib/skein-mesh.ts';
import { needsCerts, planTarget } from '../../bench/lib/targets.ts';
import { parseRunOptions, type RunOptions } from '../../bench/run/options.ts';
import { planRun } from '../../bench/run/plan.ts';
import { loadSpecFor } from '../../bench/run/scenarios.ts';
import type { BenchReport } from '../../bench/report/model.ts';
import { renderMarkdown } from '../../bench/report/index.ts';
import { parseConfigText } from '../../src/config/load.ts';

const PROJECT = new URL('../..', import.meta.url).pathname;
const dirs: string[] = [];
const tmp = (prefix = 'skein-bench-mtls-') => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const ctx = (runDir: string, certs?: BenchCerts) => ({
  port: 18080,
  h2Port: 18081,
  originPort: 18082,
  adminPort: 18083,
  peerPort: 18085,
  runDir,
  projectDir: PROJECT,
  nodePath: process.execPath,
  skeinReadyTimeoutMs: 1000,
  certs,
});

describe('the TLS targets’ configs', () => {
  let certs: BenchCerts | undefined;
  const runCerts = async () => (certs ??= await makeBenchCerts(join(tmp('skein-bench-certs-'), 'certs')));

  it('makes the run’s CA and three certificates with the project’s CA, the proxies’ with SPIFFE ids', async () => {
    const c = await runCerts();
    const inspect = (file: string) =>
      spawnSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', file], { encoding: 'utf8' }).stdout;
    expect(inspect(c.outbound.certFile)).toContain(`URI:${benchSpiffeId('bench-client')}`);
    expect(inspect(c.inbound.certFile)).toContain(`URI:${benchSpiffeId('bench-origin')}`);
    expect(inspect(c.nginx.certFile)).toContain('DNS:localhost');
    for (const f of [c.outbound.certFile, c.inbound.certFile, c.nginx.certFile]) {
      const v = spawnSync('openssl', ['verify', '-CAfile', c.bundleFile, '-untrusted', f, f], { encoding: 'utf8' });
      expect(v.status, v.stdout + v.stderr).toBe(0);
    }
  });

  it('skein-mtls: both proxies’ configs pass the schema: mTLS always to the inbound proxy, strict there', async () => {
    const c = await runCerts();
    const opts = { port: 1, peerPort: 2, originPort: 3, adminPort: 4, certs: c };
    const out = parseConfigText(JSON.stringify(skeinMeshOutboundConfig('skein-mtls', opts)), 'outbound');
    const inb = parseConfigText(JSON.stringify(skeinMeshInboundConfig('skein-mtls', opts)), 'inbound');
    expect(out.mtls).toMatchObject({ certFile: c.outbound.certFile, trustBundleFile: c.bundleFile });
    expect(out.listeners[0]).toMatchObject({ address: '127.0.0.1:1', direction: 'outbound' });
    expect(out.clusters[0].mtls).toEqual({ mode: 'always', serverIds: [benchSpiffeId('bench-origin')] });
    expect(out.clusters[0].maxIdlePerEndpoint).toBe(128);
    expect(out.clusters[0].discovery).toMatchObject({ endpoints: [{ address: '127.0.0.1:2' }] });
    expect(inb.mtls).toMatchObject({ certFile: c.inbound.certFile, trustBundleFile: c.bundleFile });
    expect(inb.listeners[0]).toMatchObject({ address: '127.0.0.1:2', direction: 'inbound', mtls: 'strict' });
    expect(inb.admin?.address).toBe('127.0.0.1:4');
    expect(inb.clusters[0].discovery).toMatchObject({ endpoints: [{ address: '127.0.0.1:3' }] });
    // The handshake variant differs in one thing: no idle connection kept between the proxies.
    const hs = parseConfigText(JSON.stringify(skeinMeshOutboundConfig('skein-mtls-handshake', opts)), 'hs');
    expect(hs.clusters[0].maxIdlePerEndpoint).toBe(0);
    expect({ ...hs.clusters[0], maxIdlePerEndpoint: 128 }).toEqual(out.clusters[0]);
  });

  it('skein-pair: the same two proxies with no identity and plaintext between them', () => {
    const opts = { port: 1, peerPort: 2, originPort: 3, adminPort: 4 };
    const out = parseConfigText(JSON.stringify(skeinMeshOutboundConfig('skein-pair', opts)), 'outbound');
    const inb = parseConfigText(JSON.stringify(skeinMeshInboundConfig('skein-pair', opts)), 'inbound');
    expect(out.mtls).toBeUndefined();
    expect(inb.mtls).toBeUndefined();
    expect(out.clusters[0].mtls.mode).toBe('never');
    expect(inb.listeners[0].mtls).toBe('disabled');
  });

  it('plans skein-mtls as both proxies under one process, its files written and its handshakes read from the inbound admin', async () => {
    const c = await runCerts();
    const dir = tmp();
    expect(needsCerts('skein-mtls') && needsCerts('nginx-tls') && !needsCerts('skein-pair')).toBe(true);
    const plan = planTarget('skein-mtls', ctx(dir, c));
    if (plan.kind !== 'process') throw new Error(JSON.stringify(plan));
    expect(plan.argv.slice(0, 2)).toEqual(['bash', '-c']);
    expect(plan.argv[2]).toMatch(/SKEIN_INBOUND_CONFIG.*&.*SKEIN_OUTBOUND_CONFIG.*&.*wait -n/);
    expect(plan.handshakes).toEqual({ kind: 'skein-mtls', port: 18083, path: '/metrics' });
    for (const side of ['inbound', 'outbound']) {
      const file = join(dir, `skein-mtls-${side}.yaml`);
      expect(plan.env?.[`SKEIN_${side.toUpperCase()}_CONFIG`]).toBe(file);
      expect(parseConfigText(readFileSync(file, 'utf8'), side).mtls?.trustDomain).toBe('cluster.local');
    }
    expect(plan.description).toMatch(/two skein proxies.*both counted in CPU.*mutual TLS/);
    expect(() => planTarget('skein-mtls', ctx(dir))).toThrow(/certificates/);
  });

  it('nginx-tls: a config nginx -t accepts, TLS with the run’s certificate, stub_status for its handshakes', async () => {
    const c = await runCerts();
    const dir = tmp();
    const plan = planTarget('nginx-tls', ctx(dir, c));
    if (plan.kind !== 'process') throw new Error(JSON.stringify(plan));
    expect(plan.tls).toEqual({ caFile: c.bundleFile, servername: 'localhost' });
    expect(plan.handshakes).toEqual({ kind: 'nginx-stub-status', port: 18083, path: '/nginx_status' });
    const conf = readFileSync(join(dir, 'nginx-tls.conf'), 'utf8');
    expect(conf).toContain('listen 127.0.0.1:18080 ssl');
    expect(conf).toContain(`ssl_certificate ${c.nginx.certFile};`);
    const t = spawnSync(plan.argv[0], [...plan.argv.slice(1), '-t'], { encoding: 'utf8' });
    expect(t.status, t.stderr).toBe(0);
  });

  it('the generator trusts the run’s CA on a TLS endpoint; http1-newconn asks for a new connection per request', () => {
    const o = parseRunOptions(['--local-targets', 'nginx-tls', '--scenarios', 'http1-max,http1-newconn']);
    const plan = planRun(o as RunOptions, { nginx: true, haproxy: true, wrk: true, taskset: true }, PROJECT);
    const [max, newconn] = plan.phases[0].scenarios;
    expect(newconn.spec).toMatchObject({ id: 'http1-newconn', mode: 'closed', engine: 'builtin' });
    expect(newconn.spec.newConnectionPerRequest).toBe(true);
    expect(max.spec.newConnectionPerRequest).toBeUndefined();
    const ep = {
      host: '127.0.0.1',
      port: 1,
      h2Port: 1,
      path: '/',
      tls: true,
      caFile: '/ca.pem',
      servername: 'localhost',
    };
    expect(loadSpecFor(newconn, ep, {})).toMatchObject({
      url: 'https://127.0.0.1:1/',
      tls: { caFile: '/ca.pem', servername: 'localhost' },
      newConnectionPerRequest: true,
    });
    expect(loadSpecFor(max, { ...ep, tls: false, caFile: undefined }, {}).tls).toBeUndefined();
  });

  it('reads the handshake counters: the inbound proxy’s mTLS handshakes and nginx’s accepted connections', () => {
    const prom = [
      '# TYPE skein_mtls_handshakes_total counter',
      'skein_mtls_handshakes_total{direction="inbound",result="ok"} 42',
      'skein_mtls_handshakes_total{direction="inbound",result="expired"} 3',
      'skein_mtls_handshakes_total{direction="outbound",result="ok"} 7',
    ].join('\n');
    expect(promCounter(prom, 'skein_mtls_handshakes_total', { direction: 'inbound', result: 'ok' })).toBe(42);
    expect(promCounter('', 'skein_mtls_handshakes_total', {})).toBe(0);
    const stub =
      'Active connections: 1 \nserver accepts handled requests\n 17 17 90 \nReading: 0 Writing: 1 Waiting: 0 \n';
    expect(parseStubStatusAccepts(stub)).toBe(17);
    expect(parseStubStatusAccepts('nothing')).toBeUndefined();
  });
});

describe('a short skein bench run of the TLS targets', () => {
  it('measures skein-pair, skein-mtls, skein-mtls-handshake and nginx-tls with no errors, both proxies’ CPU counted', async () => {
    const out = tmp('skein-bench-mtls-run-');
    const argv = ['bench/cli.ts', 'run', '--local-targets', 'skein-pair,skein-mtls,skein-mtls-handshake,nginx-tls'];
    argv.push('--scenarios', 'http1-max,http1-newconn', '--engine', 'builtin', '--connections', '8');
    argv.push('--rounds', '1', '--duration-s', '1', '--warmup-s', '0.5', '--first-warmup-s', '0');
    argv.push('--no-probes', '--keep-tmp', '--out', out);
    const child = spawn(process.execPath, argv, {
      cwd: PROJECT,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    // A backstop only: the run is sized to take 15–30 s.
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 100_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    expect(code, stderr).toBe(0);
    const runDir = /configs and process logs kept in (\S+)/.exec(stderr)?.[1];
    if (runDir !== undefined) dirs.push(runDir);

    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as BenchReport;
    expect(report.targets.map((t) => [t.name, t.available])).toEqual([
      ['skein-pair', true],
      ['skein-mtls', true],
      ['skein-mtls-handshake', true],
      ['nginx-tls', true],
    ]);
    const round = (target: string, scenario: string) =>
      report.targets.find((t) => t.name === target)!.results.find((r) => r.scenario === scenario)!.rounds[0];
    for (const t of report.targets) {
      expect(t.results.map((x) => x.scenario)).toEqual(['http1-max', 'http1-newconn']);
      for (const x of t.results) {
        expect(x.rounds[0].requests, `${t.name} ${x.scenario}`).toBeGreaterThan(0);
        expect(x.summary.errors, `${t.name} ${x.scenario}`).toEqual({});
        expect(x.rounds[0].cpuSecondsPer1k, `${t.name} ${x.scenario}`).toBeGreaterThan(0);
      }
    }
    // Both proxies are in the target's process tree, each one's share of the CPU named after its config; nginx-tls
    // is one worker under its master, the master idle: no split.
    for (const name of ['skein-pair', 'skein-mtls', 'skein-mtls-handshake']) {
      for (const scenario of ['http1-max', 'http1-newconn']) {
        const r = round(name, scenario);
        const split = r.cpuSecondsPer1kByProcess ?? {};
        expect(split[`${name}-inbound`], `${name} ${scenario} inbound`).toBeGreaterThan(0);
        expect(split[`${name}-outbound`], `${name} ${scenario} outbound`).toBeGreaterThan(0);
        const sum = Object.values(split).reduce((a, b) => a + b, 0);
        expect(sum).toBeCloseTo(r.cpuSecondsPer1k!, 6); // the shares add up to the target's figure
      }
    }
    // Handshakes as the targets count them: kept-alive connections between the proxies make next to none; one per
    // request without reuse; nginx-tls one per generator connection.
    expect(round('skein-pair', 'http1-max').handshakesPerS).toBe(0);
    const hs = round('skein-mtls-handshake', 'http1-max');
    expect(hs.handshakesPerS).toBeGreaterThan(0);
    const mtls = round('skein-mtls', 'http1-max');
    expect(mtls.handshakesPerS).toBeLessThan(hs.handshakesPerS!);
    expect(round('nginx-tls', 'http1-newconn').handshakesPerS).toBeGreaterThan(0);
    expect(report.scenarios.find((s) => s.id === 'http1-newconn')?.newConnectionPerRequest).toBe(true);
    const md = renderMarkdown(report);
    expect(md).toContain('TLS handshakes/s');
    expect(md).toContain('a new connection per request');
  }, 120_000);
});
