// A global rate limit through a real redis-server, with the built proxy: two proxy processes share one limit
// (over a bounded run at a known rate the combined accepted count stays within 5% of burst + rate × time),
// Redis stopped mid-run follows the policy's failureMode (open: everything passes; closed: 429 RL) without a
// crash, and the limit holds again once Redis is back.
import http from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { httpGet } from '../support/http-client.ts';
import { freePort, processTestFixture, type RunningSkein, startSkeinProxy } from '../support/process.ts';
import { type RunningRedis, startRedis } from '../support/redis.ts';
import { sleep, waitForAsync } from '../support/wait-for.ts';

const fixture = processTestFixture('skein-rl-global-');
let redis: RunningRedis | null = null;
afterEach(async () => {
  await redis?.stop();
  redis = null;
});

const RATE = 100;
// 200 ms of credit: a client that stalls that long on a busy machine loses none of the limit.
const BURST = 20;

async function proxyWithGlobalLimit(
  upstream: string,
  failureMode: 'open' | 'closed',
  n: number,
): Promise<RunningSkein> {
  const adminPort = await freePort();
  const file = join(fixture.dir(), `skein-${n}.yaml`);
  const config = {
    service: `replica-${n}`,
    admin: { address: `127.0.0.1:${adminPort}` },
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1:0',
        routes: [
          {
            name: 'api',
            cluster: 'app',
            rateLimit: {
              requestsPerSecond: RATE,
              burstSize: BURST,
              keyExtractor: 'route',
              global: { redis: redis!.url, failureMode, name: 'shared-api' },
            },
          },
        ],
      },
    ],
    clusters: [{ name: 'app', discovery: { type: 'static', endpoints: [{ address: upstream }] } }],
  };
  await writeFile(file, stringify(config));
  return startSkeinProxy(['--config', file], { adminPort });
}

/** `count` GETs one after another on a keep-alive connection, the i-th not before start + i × interval. */
async function paced(url: string, count: number, intervalMs: number): Promise<Map<number, number>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const statuses = new Map<number, number>();
  const start = performance.now();
  try {
    for (let i = 0; i < count; i++) {
      const wait = start + i * intervalMs - performance.now();
      if (wait > 1) await sleep(wait);
      const status = await new Promise<number>((resolve) => {
        const req = http.get(url, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', () => resolve(-1));
        });
        req.setTimeout(5_000, () => req.destroy());
        req.on('error', () => resolve(-1));
      });
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  } finally {
    agent.destroy();
  }
  return statuses;
}

function sum(...maps: Map<number, number>[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of maps) for (const [k, v] of m) out.set(k, (out.get(k) ?? 0) + v);
  return out;
}

async function metric(proxy: RunningSkein, prefix: string): Promise<number> {
  const body = (await httpGet(`${proxy.adminUrl}/metrics`)).body;
  return body
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('global rate limit through Redis', () => {
  it('two proxies share one limit, fail open while Redis is down, and hold the limit again when it returns', async () => {
    redis = await startRedis();
    const app = await fixture.upstream('app');
    const a = await proxyWithGlobalLimit(app.address, 'open', 1);
    const b = await proxyWithGlobalLimit(app.address, 'open', 2);

    // Both have their Redis connection up (until then they fail open), and the burst is full again.
    for (const p of [a, b])
      await waitForAsync(
        async () => {
          await httpGet(`${p.url()}/`);
          return (await metric(p, 'skein_ratelimit_redis_seconds_count{result="allowed"}')) > 0;
        },
        15_000,
        50,
      );
    await sleep(300);

    // Each client asks at 1.5 × the limit (3 × together) for about 3 s.
    const t0 = performance.now();
    const [sa, sb] = await Promise.all([paced(`${a.url()}/`, 450, 1000 / 150), paced(`${b.url()}/`, 450, 1000 / 150)]);
    const seconds = (performance.now() - t0) / 1000;
    const all = sum(sa, sb);
    expect([...all.keys()].sort()).toEqual([200, 429]);
    const expected = BURST + RATE * seconds;
    const accepted = all.get(200)!;
    expect(Math.abs(accepted - expected) / expected).toBeLessThan(0.05);
    // Both replicas were served and refused: the limit was shared, not split.
    expect(sa.get(200)! > 0 && sb.get(200)! > 0 && sa.get(429)! > 0 && sb.get(429)! > 0).toBe(true);

    // Redis goes away: fail open, nothing refused, no crash.
    await redis.stop();
    await sleep(50); // a key blocked locally stays so for at most one interval (10 ms)
    const down = sum(await paced(`${a.url()}/`, 30, 1), await paced(`${b.url()}/`, 30, 1));
    expect(down.get(200)).toBe(60);
    expect(a.exitStatus).toBeNull();
    expect(b.exitStatus).toBeNull();
    expect(await metric(a, 'skein_ratelimit_redis_seconds_count{result="error"}')).toBeGreaterThan(0);

    // Redis returns (empty): the proxies reconnect and the limit holds again.
    await redis.start();
    await waitForAsync(async () => ((await paced(`${a.url()}/`, 30, 1)).get(429) ?? 0) > 0, 15_000, 100);
    await sleep(300); // let the burst credit come back (20 × 10 ms)
    const t1 = performance.now();
    const back = sum(...(await Promise.all([paced(`${a.url()}/`, 150, 4), paced(`${b.url()}/`, 150, 4)])));
    const limit = BURST + (RATE * (performance.now() - t1)) / 1000;
    expect(back.get(200)!).toBeLessThanOrEqual(Math.ceil(limit * 1.05));
    expect(back.get(429)!).toBeGreaterThan(0);
    expect(a.exitStatus).toBeNull();
    expect(b.exitStatus).toBeNull();
  }, 60_000);

  it('fails closed when the policy says so: 429 RL while Redis is down, served again once it returns', async () => {
    redis = await startRedis();
    const app = await fixture.upstream('app');
    const p = await proxyWithGlobalLimit(app.address, 'closed', 1);
    // Until its connection to Redis is up (just after start) the proxy fails closed too.
    await waitForAsync(async () => (await httpGet(`${p.url()}/`)).status === 200, 15_000, 50);
    await redis.stop();
    for (let i = 0; i < 10; i++) {
      const res = await httpGet(`${p.url()}/`);
      expect(res.status).toBe(429);
      expect(res.headers['x-skein-flags']).toBe('RL');
      expect(res.headers['retry-after']).toBe('1');
    }
    expect(p.exitStatus).toBeNull();
    await redis.start();
    await waitForAsync(async () => (await httpGet(`${p.url()}/`)).status === 200, 15_000, 100);
    expect(p.exitStatus).toBeNull();
  }, 60_000);
});
