// Two control replicas over one real Redis, a proxy on each: a rule written through one replica reaches the
// proxy connected to the other (the store's change notifications), both replicas serve the same rules and
// config version, and two writers racing on one rule with the same If-Match get one success and one 409 —
// never a silent overwrite. Every process is started here and stopped by PID.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, type RunningControl, startSkeinControl } from '../support/control.ts';
import { httpGet } from '../support/http-client.ts';
import { freePort, killAllSkein, startSkeinProxy } from '../support/process.ts';
import { startEchoUpstream, type Upstream } from '../support/proxy.ts';
import { type RunningRedis, startRedis } from '../support/redis.ts';
import { waitForAsync } from '../support/wait-for.ts';

let redis: RunningRedis;
let dir: string;
const upstreams: Upstream[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis.stop();
});

afterEach(async () => {
  await killAllSkein();
  for (const u of upstreams.splice(0)) await u.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

async function replica(name: string, prefix: string): Promise<RunningControl> {
  return startSkeinControl(join(dir, name), ['--store', redis.url, '--store-prefix', prefix]);
}

async function proxyOn(control: RunningControl, node: string, v1: Upstream) {
  const adminPort = await freePort();
  return startSkeinProxy(
    [
      ...['--listen', '127.0.0.1:0', '--upstream', v1.address, '--service', 'frontend'],
      ...['--admin', `127.0.0.1:${adminPort}`, '--control', control.url, '--node-id', node],
      ...['--state-dir', join(dir, node)],
    ],
    { adminPort },
  );
}

describe('control replicas sharing one Redis', () => {
  it('a write on one replica reaches the proxies of the other; racing writers get one success and one 409', async () => {
    dir = mkdtempSync(join(tmpdir(), 'skein-replicas-'));
    const prefix = `r${Date.now()}`;
    const [v1, v2] = [await startEchoUpstream('v1'), await startEchoUpstream('v2')];
    upstreams.push(v1, v2);
    const a = await replica('a', prefix);
    const b = await replica('b', prefix);
    const pa = await proxyOn(a, 'pa', v1);
    const pb = await proxyOn(b, 'pb', v1);

    const service = {
      id: 'app',
      endpoints: [
        { address: v1.address, version: 'v1' },
        { address: v2.address, version: 'v2' },
      ],
    };
    expect((await api(a.url, 'POST', '/v1/services', service)).status).toBe(201);
    const rule = {
      id: 'alice',
      priority: 100,
      conditions: [{ type: 'header', field: 'x-canary-user', value: 'alice' }],
      destinations: [{ service: 'app', version: 'v2' }],
    };
    expect((await api(a.url, 'POST', '/v1/rules', rule)).status).toBe(201);
    // Creating it again on the other replica is a conflict there too.
    expect((await api(b.url, 'POST', '/v1/rules', rule)).status).toBe(409);

    const via = async (p: typeof pa) =>
      String((await httpGet(`${p.url()}/x`, { headers: { 'x-canary-user': 'alice' } })).headers['x-served-by']);
    await waitForAsync(async () => ((await via(pa)) === 'v2' ? true : undefined), 10_000);
    await waitForAsync(async () => ((await via(pb)) === 'v2' ? true : undefined), 10_000); // through replica b
    expect((await api<{ id: string }[]>(b.url, 'GET', '/v1/rules')).body.map((r) => r.id)).toEqual(['alice']);

    // Both read the same ETag, then both write over it: exactly one lands.
    const etag = (await fetch(`${b.url}/v1/rules/alice`)).headers.get('etag')!;
    expect(etag).toMatch(/^"\d+"$/);
    const write = (c: RunningControl, to: string) =>
      fetch(`${c.url}/v1/rules/alice`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json', 'if-match': etag },
        body: JSON.stringify({ ...rule, destinations: [{ service: 'app', version: to }] }),
      });
    const [ra, rb] = await Promise.all([write(a, 'v1'), write(b, 'v2')]);
    expect([ra.status, rb.status].sort()).toEqual([200, 409]);
    const winner = ra.status === 200 ? 'v1' : 'v2';
    // Every proxy ends up on the winner's destination, whichever replica it is connected to.
    await waitForAsync(
      async () => ((await via(pa)) === winner && (await via(pb)) === winner ? true : undefined),
      10_000,
    );
    const loser = ra.status === 409 ? ra : rb;
    expect(((await loser.json()) as { error: { code: string } }).error.code).toBe('SKEIN_CONFLICT');
  });
});
