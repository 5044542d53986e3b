// Control and proxies as real processes: rules written through control's API reach the proxies over the push
// stream and change their routing; bad rules are refused by the API; a snapshot a proxy cannot apply is NACKed
// (and shown in /proxies) while the old config keeps serving; a weighted split holds over 10,000 requests;
// control restarted keeps every rule and audit entry and pushes nothing the proxies already run; a proxy
// restarted while control is down serves the snapshot it kept on disk. Processes are killed by PID.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { api, type RunningControl, startSkeinControl } from '../support/control.ts';
import { httpGet } from '../support/http-client.ts';
import { freePort, killAllSkein, type RunningSkein, startSkeinProxy } from '../support/process.ts';
import { startEchoUpstream, type Upstream } from '../support/proxy.ts';
import { waitForAsync } from '../support/wait-for.ts';

let dir: string;
let upstreams: Upstream[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'skein-push-'));
  upstreams = [];
});

afterEach(async () => {
  await killAllSkein();
  await Promise.all(upstreams.map((u) => u.close()));
  rmSync(dir, { recursive: true, force: true });
});

async function upstream(name: string): Promise<Upstream> {
  const u = await startEchoUpstream(name);
  upstreams.push(u);
  return u;
}

async function proxy(service: string, control: string, v1: Upstream, stateDir = join(dir, `state-${service}`)) {
  const adminPort = await freePort();
  return startSkeinProxy(
    [
      '--listen',
      '127.0.0.1:0',
      '--upstream',
      v1.address,
      '--service',
      service,
      '--admin',
      `127.0.0.1:${adminPort}`,
      '--control',
      control,
      '--state-dir',
      stateDir,
      '--node-id',
      `${service}-1`, // stable across a restart (the default names the admin port, which a test picks anew)
    ],
    { adminPort },
  );
}

/** Which upstream answered a GET through `p` with `headers`. */
async function servedBy(p: RunningSkein, headers: Record<string, string> = {}): Promise<string> {
  const r = await httpGet(`${p.url()}/hello`, { headers });
  return String(r.headers['x-served-by'] ?? `status ${r.status}`);
}

interface ProxyRow {
  node: string;
  service: string;
  connected: boolean;
  running: { version: number | null; hash: string } | null;
  lastAck: { version: number } | null;
  lastNack: { version: number; problems: string[] } | null;
}

async function proxies(control: RunningControl): Promise<ProxyRow[]> {
  return (await api<ProxyRow[]>(control.url, 'GET', '/proxies')).body;
}

const canaryRule = {
  id: 'canary-alice',
  name: 'alice sees v2',
  priority: 100,
  conditions: [{ type: 'header', field: 'x-canary-user', operator: 'equals', value: 'alice' }],
  destinations: [{ service: 'app', version: 'v2' }],
};

async function registerApp(control: RunningControl, v1: Upstream, v2: Upstream): Promise<void> {
  const r = await api(control.url, 'POST', '/v1/services', {
    id: 'app',
    endpoints: [
      { address: v1.address, version: 'v1' },
      { address: v2.address, version: 'v2' },
    ],
  });
  expect(r.status).toBe(201);
}

describe('config push from control to proxies', () => {
  it('a rule written through the API changes routing at every proxy it applies to; bad rules are refused', async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')];
    const control = await startSkeinControl(join(dir, 'control'));
    const a = await proxy('frontend', control.url, v1);
    const b = await proxy('billing', control.url, v1);
    await waitForAsync(async () =>
      (await proxies(control)).filter((p) => p.connected).length === 2 ? true : undefined,
    );
    expect(await servedBy(a, { 'x-canary-user': 'alice' })).toBe('v1');

    // Writes need the token; a malformed rule is refused with field paths.
    expect((await api(control.url, 'POST', '/v1/rules', canaryRule, { token: null })).status).toBe(401);
    const bad = await api<{ error: { problems: string[] } }>(control.url, 'POST', '/v1/rules', {
      id: 'bad',
      conditions: [{ type: 'header', operator: 'regex', value: '(' }],
      destinations: [],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.problems).toEqual(
      expect.arrayContaining([
        'conditions[0].field: a header condition needs a field name',
        'conditions[0].value: invalid regular expression',
        expect.stringMatching(/^destinations: /),
      ]),
    );

    await registerApp(control, v1, v2);
    expect((await api(control.url, 'POST', '/v1/rules', canaryRule)).status).toBe(201);
    // Within a second (polled; the bound is generous for a loaded machine).
    await waitForAsync(
      async () => ((await servedBy(a, { 'x-canary-user': 'alice' })) === 'v2' ? true : undefined),
      5_000,
    );
    await waitForAsync(
      async () => ((await servedBy(b, { 'x-canary-user': 'alice' })) === 'v2' ? true : undefined),
      5_000,
    );
    expect(await servedBy(a, { 'x-canary-user': 'bob' })).toBe('v1');
    expect(await servedBy(a)).toBe('v1');

    // Cookie and query conditions reach the proxy's matcher the same way.
    const cookieRule = {
      id: 'cookie-canary',
      priority: 90,
      conditions: [{ type: 'cookie', field: 'canary', value: '1' }],
      destinations: [{ service: 'app', version: 'v2' }],
    };
    expect((await api(control.url, 'POST', '/v1/rules', cookieRule)).status).toBe(201);
    await waitForAsync(
      async () => ((await servedBy(a, { cookie: 'session=x; canary=1' })) === 'v2' ? true : undefined),
      5_000,
    );
    expect(await servedBy(a, { cookie: 'canary=0' })).toBe('v1');
    expect((await api(control.url, 'DELETE', '/v1/rules/cookie-canary')).status).toBe(200);
    const frontendVersion = (await api<{ version: number }>(control.url, 'GET', '/v1/config')).body.version;

    // Only the proxies of the source service a rule names get it.
    const onlyBilling = {
      id: 'billing-beta',
      priority: 50,
      conditions: [
        { type: 'header', field: 'x-beta', value: '1' },
        { type: 'sourceService', value: 'billing' },
      ],
      destinations: [{ service: 'app', version: 'v2' }],
    };
    expect((await api(control.url, 'POST', '/v1/rules', onlyBilling)).status).toBe(201);
    await waitForAsync(async () => ((await servedBy(b, { 'x-beta': '1' })) === 'v2' ? true : undefined), 5_000);
    expect(await servedBy(a, { 'x-beta': '1' })).toBe('v1');
    const overlayA = (await api<{ routes: { name: string }[] }>(control.url, 'GET', '/v1/config?service=frontend'))
      .body;
    expect(overlayA.routes.map((r) => r.name)).toEqual(['rule:canary-alice']);

    // /proxies: both connected, each running (ACKed) the version at which its own snapshot last changed:
    // frontend's did not change with the billing-only rule, so it was not sent anything.
    const version = (await api<{ version: number }>(control.url, 'GET', '/v1/config')).body.version;
    const rows = await waitForAsync(async () => {
      const all = await proxies(control);
      const by = new Map(all.map((p) => [p.service, p]));
      return by.get('billing')?.lastAck?.version === version && by.get('frontend')?.lastAck?.version === frontendVersion
        ? all
        : undefined;
    });
    expect(rows.map((p) => `${p.service} ${p.connected}`)).toEqual(['billing true', 'frontend true']);

    // The audit log has every write, newest first, with who made it and the versions.
    const audit = (
      await api<{ kind: string; objectId: string; action: string; versionAfter: number }[]>(
        control.url,
        'GET',
        '/v1/audit',
      )
    ).body;
    expect(audit.map((e) => `${e.action} ${e.kind} ${e.objectId}`)).toEqual([
      'create rule billing-beta',
      'delete rule cookie-canary',
      'create rule cookie-canary',
      'create rule canary-alice',
      'create service app',
    ]);
    expect(audit[0].versionAfter).toBe(version);
  });

  it('a snapshot a proxy cannot apply is NACKed with the reason; the old config keeps serving', async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')];
    const control = await startSkeinControl(join(dir, 'control'));
    const a = await proxy('frontend', control.url, v1);
    await registerApp(control, v1, v2);
    await api(control.url, 'POST', '/v1/rules', canaryRule);
    await waitForAsync(
      async () => ((await servedBy(a, { 'x-canary-user': 'alice' })) === 'v2' ? true : undefined),
      5_000,
    );

    // A cluster no proxy has: valid for control, refused by the proxy.
    const r = await api(control.url, 'POST', '/v1/rules', {
      id: 'to-nowhere',
      conditions: [{ type: 'path', operator: 'prefix', value: '/nowhere' }],
      destinations: [{ cluster: 'no-such-cluster' }],
    });
    expect(r.status).toBe(201);
    const row = await waitForAsync(async () => (await proxies(control)).find((p) => p.lastNack !== null));
    expect(row.lastNack!.problems.join('\n')).toMatch(/unknown cluster 'no-such-cluster'/);
    expect(row.running?.version).toBeLessThan(row.lastNack!.version);
    expect(await servedBy(a, { 'x-canary-user': 'alice' })).toBe('v2'); // the old snapshot still serves
    const metrics = (await api<string>(control.url, 'GET', '/metrics')).body;
    expect(metrics).toMatch(/^skein_control_push_nacks_total 1$/m);
    expect(metrics).toMatch(/^skein_control_connected_proxies 1$/m);

    // Fixed: the next write reaches it and it is ACKed again.
    expect((await api(control.url, 'DELETE', '/v1/rules/to-nowhere')).status).toBe(200);
    const version = (await api<{ version: number }>(control.url, 'GET', '/v1/config')).body.version;
    await waitForAsync(async () => ((await proxies(control))[0].lastAck?.version === version ? true : undefined));
  });

  it('pushes do not fail or cut requests in flight: 20 rule changes under steady load, every request answered', async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')];
    const control = await startSkeinControl(join(dir, 'control'));
    const a = await proxy('frontend', control.url, v1);
    await registerApp(control, v1, v2);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const statuses = new Map<number, number>();
    let running = true;
    const loop = async () => {
      while (running)
        await new Promise<void>((resolve) => {
          http
            .get(`${a.url()}/load`, { agent, headers: { 'x-canary-user': 'alice' } }, (res) => {
              statuses.set(res.statusCode!, (statuses.get(res.statusCode!) ?? 0) + 1);
              res.resume().on('end', resolve);
            })
            .on('error', () => {
              statuses.set(0, (statuses.get(0) ?? 0) + 1);
              resolve();
            });
        });
    };
    const loops = Array.from({ length: 8 }, loop);
    for (let i = 0; i < 20; i++) {
      const to = i % 2 === 0 ? 'v2' : 'v1';
      await api(control.url, 'PUT', '/v1/rules/flip', {
        id: 'flip',
        conditions: [{ type: 'header', field: 'x-canary-user', value: 'alice' }],
        destinations: [{ service: 'app', version: to }],
      });
      await new Promise((r) => setTimeout(r, 50));
    }
    running = false;
    await Promise.all(loops);
    agent.destroy();
    const total = [...statuses.values()].reduce((x, y) => x + y, 0);
    expect(total).toBeGreaterThan(100);
    expect(Object.fromEntries(statuses)).toEqual({ 200: total });
  });

  it("a rule can carry the proxy's policies: a rate limit on its requests answers 429 RL past its burst", async () => {
    const [v1] = [await upstream('v1')];
    const control = await startSkeinControl(join(dir, 'control'));
    const a = await proxy('frontend', control.url, v1);
    const r = await api(control.url, 'POST', '/v1/rules', {
      id: 'limited',
      conditions: [{ type: 'path', operator: 'prefix', value: '/limited' }],
      destinations: [{ cluster: 'upstream' }],
      actions: { rateLimit: { requestsPerSecond: 0.01, burstSize: 2 }, timeoutMs: 2000 },
    });
    expect(r.status).toBe(201);
    const version = (await api<{ version: number }>(control.url, 'GET', '/v1/config')).body.version;
    await waitForAsync(async () => ((await proxies(control))[0]?.lastAck?.version === version ? true : undefined));
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await httpGet(`${a.url()}/limited/x`)).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
    const limited = await httpGet(`${a.url()}/limited/x`);
    expect(limited.headers['x-skein-flags']).toBe('RL');
    expect((await httpGet(`${a.url()}/other`)).status).toBe(200); // other routes are not limited
  });

  it('a 30/70 weighted split lands within 2 points over 10,000 requests', async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')];
    const control = await startSkeinControl(join(dir, 'control'));
    const a = await proxy('frontend', control.url, v1);
    await registerApp(control, v1, v2);
    await api(control.url, 'POST', '/v1/rules', {
      id: 'split',
      conditions: [{ type: 'path', operator: 'prefix', value: '/split' }],
      destinations: [
        { service: 'app', version: 'v1', weight: 70 },
        { service: 'app', version: 'v2', weight: 30 },
      ],
    });
    const version = (await api<{ version: number }>(control.url, 'GET', '/v1/config')).body.version;
    await waitForAsync(async () => ((await proxies(control))[0]?.lastAck?.version === version ? true : undefined));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const counts = new Map<string, number>();
    const one = () =>
      new Promise<void>((resolve, reject) => {
        http
          .get(`${a.url()}/split/x`, { agent }, (res) => {
            const who = String(res.headers['x-served-by']);
            counts.set(who, (counts.get(who) ?? 0) + 1);
            res.resume().on('end', resolve);
          })
          .on('error', reject);
      });
    for (let i = 0; i < 10_000; i += 100) await Promise.all(Array.from({ length: 100 }, one));
    agent.destroy();
    expect((counts.get('v1') ?? 0) + (counts.get('v2') ?? 0)).toBe(10_000);
    expect(Math.abs((counts.get('v2') ?? 0) / 10_000 - 0.3)).toBeLessThan(0.02);
  });

  it('control restarted keeps rules and audit and re-pushes nothing; a proxy restarted while control is down serves its kept snapshot', async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')];
    const controlDir = join(dir, 'control');
    let control = await startSkeinControl(controlDir);
    const stateDir = join(dir, 'state-a');
    let a = await proxy('frontend', control.url, v1, stateDir);
    await registerApp(control, v1, v2);
    await api(control.url, 'POST', '/v1/rules', canaryRule);
    await waitForAsync(
      async () => ((await servedBy(a, { 'x-canary-user': 'alice' })) === 'v2' ? true : undefined),
      5_000,
    );
    const port = new URL(control.url).port;

    await control.kill();
    // Control down: the proxy keeps serving; restarted, it serves what it kept on disk.
    expect(await servedBy(a, { 'x-canary-user': 'alice' })).toBe('v2');
    await a.kill();
    a = await proxy('frontend', control.url, v1, stateDir);
    expect(await servedBy(a, { 'x-canary-user': 'alice' })).toBe('v2');
    expect(a.stderr).toMatch(/serving the kept control snapshot/);

    // Control back on the same port: nothing lost, and the proxy (reconnected) is not sent what it runs.
    control = await startSkeinControl(controlDir, ['--listen', `127.0.0.1:${port}`]);
    expect((await api<{ id: string }[]>(control.url, 'GET', '/v1/rules')).body.map((r) => r.id)).toEqual([
      'canary-alice',
    ]);
    expect((await api<unknown[]>(control.url, 'GET', '/v1/audit')).body).toHaveLength(2);
    const row = await waitForAsync(async () => (await proxies(control)).find((p) => p.connected), 20_000);
    expect(row.lastAck).toBeNull(); // it said which snapshot it had: nothing to send, nothing to ACK
    expect(row.running?.hash).toMatch(/^[0-9a-f]{64}$/);
    // A write after the restart reaches it.
    await api(control.url, 'DELETE', '/v1/rules/canary-alice');
    await waitForAsync(
      async () => ((await servedBy(a, { 'x-canary-user': 'alice' })) === 'v1' ? true : undefined),
      5_000,
    );
  });
});
