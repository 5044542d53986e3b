// The external engines behind the same runLoad: wrk (closed-loop HTTP/1.1) and h2load (HTTP/2, closed or paced),
// against the bench origin, when installed; engineAvailable says what is missing or what an engine cannot run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { h2loadErrors, parseH2loadCounts } from '../../../bench/load/h2load.ts';
import { engineAvailable, type Origin, runLoad, startOrigin } from '../../../bench/load/index.ts';
import type { LoadSpec } from '../../../bench/load/types.ts';
import { parseWrkCurve } from '../../../bench/load/wrk.ts';
import { closedPort, startHttp1Server } from './support/servers.ts';

const wrk = engineAvailable('wrk');
const h2load = engineAvailable('h2load');

let origin: Origin;
beforeAll(async () => {
  origin = await startOrigin({ port: 0 });
});
afterAll(() => origin.close());

function spec(over: Partial<LoadSpec>): LoadSpec {
  return {
    url: `http://127.0.0.1:${origin.port}/`,
    protocol: 'http1',
    mode: 'closed',
    engine: 'wrk',
    connections: 2,
    durationS: 1,
    ...over,
  };
}

describe('engineAvailable', () => {
  it('says the built-in engine is always there', () => {
    expect(engineAvailable('builtin')).toEqual({ available: true });
  });

  it('names the package to install when a tool is missing', () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      expect(engineAvailable('wrk')).toEqual({ available: false, reason: 'wrk not installed: apt-get install wrk' });
      expect(engineAvailable('h2load')).toEqual({
        available: false,
        reason: 'h2load not installed: apt-get install nghttp2-client',
      });
    } finally {
      process.env.PATH = path;
    }
  });

  it.skipIf(!wrk.available || !h2load.available)('says which specs an installed engine cannot run', () => {
    expect(engineAvailable('wrk', spec({ mode: 'open', ratePerS: 100 }))).toMatchObject({
      available: false,
      reason: expect.stringMatching(/closed loop only/),
    });
    expect(engineAvailable('wrk', spec({ protocol: 'http2' }))).toMatchObject({ available: false });
    expect(engineAvailable('h2load', spec({ engine: 'h2load', protocol: 'websocket' }))).toMatchObject({
      available: false,
    });
    expect(
      engineAvailable('h2load', spec({ engine: 'h2load', protocol: 'http2', mode: 'open', ratePerS: 10 })),
    ).toEqual({ available: true });
    expect(engineAvailable('h2load', spec({ engine: 'h2load', protocol: 'http2', connections: 0 }))).toMatchObject({
      available: false,
      reason: expect.stringMatching(/^connections/),
    });
  });
});

describe.skipIf(!wrk.available)(`wrk engine${wrk.available ? '' : ` (skipped: ${wrk.reason})`}`, () => {
  it('runs closed-loop HTTP/1.1 and reports wrk’s own counts and percentiles', async () => {
    const r = await runLoad(spec({}));
    expect(r.engine).toBe('wrk');
    expect(r.requests).toBeGreaterThan(100);
    expect(r).toMatchObject({ ok: r.requests, errors: {} });
    expect(r.durationS).toBeGreaterThan(0.9);
    expect(r.latencyUs.p50).toBeGreaterThan(0);
    expect(r.latencyUs.p99).toBeGreaterThanOrEqual(r.latencyUs.p50);
    expect(r.percentileCurve.length).toBeGreaterThanOrEqual(20);
    expect(r.percentileCurve.at(-1)).toEqual([100, r.latencyUs.max]);
    expect(r.lag).toBeUndefined();
  });

  it('POSTs payloadBytes and counts error statuses', async () => {
    const s = await startHttp1Server((_req, res) => res.writeHead(503, { 'content-length': 0 }).end());
    try {
      const r = await runLoad(spec({ url: s.url, payloadBytes: 512 }));
      expect(s.arrivals.length).toBeGreaterThanOrEqual(r.requests);
      expect(new Set(s.arrivals.map((a) => `${a.method} ${a.bodyBytes}`))).toEqual(new Set(['POST 512']));
      expect(r.ok).toBe(0);
      expect(r.errors).toEqual({ status_4xx_5xx: r.requests });
    } finally {
      await s.close();
    }
  });

  it('counts refused connections as "connect" errors', async () => {
    const r = await runLoad(spec({ url: `http://127.0.0.1:${await closedPort()}/` }));
    expect(r.ok).toBe(0);
    expect(Object.keys(r.errors)).toEqual(['connect']);
    expect(r.requests).toBe(r.errors.connect);
  });

  it('refuses what wrk cannot do instead of measuring something else', async () => {
    await expect(runLoad(spec({ mode: 'open', ratePerS: 100 }))).rejects.toThrow(/closed loop only/);
  });

  it('reads the curve line our Lua script prints', () => {
    expect(parseWrkCurve('Running 1s test\nWRK_CURVE [[50,120],[99,900],[100,1500]]\n')).toEqual([
      [50, 120],
      [99, 900],
      [100, 1500],
    ]);
    expect(parseWrkCurve('no curve here')).toEqual([]);
  });
});

describe.skipIf(!h2load.available)(`h2load engine${h2load.available ? '' : ` (skipped: ${h2load.reason})`}`, () => {
  const h2 = (over: Partial<LoadSpec>) => spec({ engine: 'h2load', protocol: 'http2', ...over });

  it('runs closed-loop HTTP/2 with streams per connection; latencies come from its request log', async () => {
    const r = await runLoad(h2({ streamsPerConnection: 4, payloadBytes: 100 }));
    expect(r.engine).toBe('h2load');
    expect(r.requests).toBeGreaterThan(100);
    expect(r).toMatchObject({ ok: r.requests, errors: {} });
    expect(r.percentileCurve.length).toBeGreaterThanOrEqual(20);
    expect(r.latencyUs.max).toBeGreaterThanOrEqual(r.latencyUs.p99);
  });

  it('paces with --rps (rate ÷ connections per connection) and says it does not correct coordinated omission', async () => {
    const r = await runLoad(h2({ mode: 'open', ratePerS: 200, durationS: 2, warmupS: 0.5 }));
    expect(r.targetRatePerS).toBe(200);
    // h2load paces per second per connection; its count is close to, not exactly, rate × duration.
    expect(r.requests).toBeGreaterThan(300);
    expect(r.requests).toBeLessThan(500);
    expect(r.ok).toBe(r.requests);
    expect(r.lag).toBeUndefined();
    expect(r.notes?.join(' ')).toMatch(/coordinated omission/);
  });

  it('counts refused connections as "connect" errors', async () => {
    const r = await runLoad(h2({ url: `http://127.0.0.1:${await closedPort()}/` }));
    expect(r).toMatchObject({ ok: 0, errors: { connect: 2 } });
  });

  it('turns its counters into error kinds', () => {
    const out =
      'requests: 30 total, 28 started, 28 done, 10 succeeded, 20 failed, 10 errored, 1 timeout\n' +
      'status codes: 10 2xx, 0 3xx, 4 4xx, 5 5xx\n';
    const counts = parseH2loadCounts(out);
    expect(h2loadErrors(counts, 2)).toEqual({ status_4xx: 4, status_5xx: 5, reset: 9, timeout: 1 });
    const refused = parseH2loadCounts(
      'requests: 0 total, 0 started, 0 done, 0 succeeded, 0 failed, 0 errored, 0 timeout\nstatus codes: 0 2xx, 0 3xx, 0 4xx, 0 5xx\n',
    );
    expect(h2loadErrors(refused, 2)).toEqual({ connect: 2 });
  });
});
