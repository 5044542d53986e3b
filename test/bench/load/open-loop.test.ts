// The built-in generator's scheduling against real HTTP/1.1 servers: a stall shows in open-loop percentiles
// (every request it delayed, timed from its intended send) but only once per connection in a closed loop;
// the timetable's rate and ramps reach the server; the generator's own stalls are reported as lag.
import { afterEach, describe, expect, it } from 'vitest';
import { Generator } from '../../../bench/load/generator.ts';
import { runLoad } from '../../../bench/load/index.ts';
import type { LoadSpec } from '../../../bench/load/types.ts';
import { answerOk, startHttp1Server, stallOnce, type TestServer } from './support/servers.ts';

const STALL_MS = 300;
let servers: TestServer[] = [];

afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function server(...args: Parameters<typeof startHttp1Server>): Promise<TestServer> {
  const s = await startHttp1Server(...args);
  servers.push(s);
  return s;
}

function spec(url: string, over: Partial<LoadSpec>): LoadSpec {
  return { url, protocol: 'http1', mode: 'open', engine: 'builtin', connections: 4, durationS: 2, ...over };
}

/** Requests whose latency is at least `us`, read off the percentile curve (a lower bound). */
function atLeast(curve: readonly (readonly [number, number])[], us: number, requests: number): number {
  const point = curve.find(([, v]) => v >= us);
  return point === undefined ? 0 : Math.floor(((100 - point[0]) / 100) * requests);
}

describe('open loop vs closed loop on a target that stalls once for 300 ms', () => {
  it('open loop: the stall reaches the tail and delays many requests, timed from their intended send', async () => {
    const s = await server(stallOnce(800, STALL_MS));
    const r = await runLoad(spec(s.url, { ratePerS: 200 }));
    expect(r.errors).toEqual({});
    expect(r.requests).toBe(400);
    // The request due when the stall began waited the whole stall; the 60 due during it queued behind it.
    expect(r.latencyUs.max).toBeGreaterThanOrEqual(0.9 * STALL_MS * 1000);
    expect(r.latencyUs.p99).toBeGreaterThanOrEqual(0.5 * STALL_MS * 1000);
    expect(atLeast(r.percentileCurve, 100_000, r.requests)).toBeGreaterThanOrEqual(20);
    expect(r.queued).toBeGreaterThan(20);
  });

  it('closed loop: the same stall costs each connection one slow request, and the percentiles hide it', async () => {
    const s = await server(stallOnce(800, STALL_MS));
    const r = await runLoad(spec(s.url, { mode: 'closed' }));
    expect(r.errors).toEqual({});
    expect(r.requests).toBeGreaterThan(1000);
    expect(r.latencyUs.max).toBeGreaterThanOrEqual(0.9 * STALL_MS * 1000);
    expect(r.latencyUs.p99).toBeLessThan(STALL_MS * 1000 * 0.3);
    expect(atLeast(r.percentileCurve, 100_000, r.requests)).toBeLessThanOrEqual(4);
    expect(r.lag).toBeUndefined();
  });
});

describe('open-loop rate', () => {
  it('sends exactly rate × (warm-up + duration) requests, spread over the run, and counts only the window', async () => {
    const s = await server();
    const r = await runLoad(spec(s.url, { ratePerS: 300, durationS: 2, warmupS: 0.5 }));
    expect(r).toMatchObject({ requests: 600, ok: 600, errors: {}, targetRatePerS: 300, durationS: 2 });
    expect(r.throughputPerS).toBe(300);
    expect(s.arrivals).toHaveLength(750);
    // Spread, not bursty: about half the requests arrive in each half of the run.
    const first = s.arrivals[0].at;
    const firstHalf = s.arrivals.filter((a) => a.at - first < 1250).length;
    expect(firstHalf).toBeGreaterThan(750 * 0.3);
    expect(firstHalf).toBeLessThan(750 * 0.7);
    // Spread over the connections, round robin when all are free.
    expect(new Set(s.arrivals.map((a) => a.conn)).size).toBe(4);
    expect(r.lag).toMatchObject({ trustworthy: r.lag!.p99Us < 1000 });
    expect(r.lag!.maxUs).toBeGreaterThanOrEqual(r.lag!.p99Us);
  });

  it('follows ramp stages: 50/s held for a second, then a ramp to 250/s', async () => {
    const s = await server();
    const r = await runLoad(
      spec(s.url, {
        rampStart: 50,
        stages: [
          { durationS: 1, target: 50 },
          { durationS: 1, target: 250 },
        ],
      }),
    );
    expect(r).toMatchObject({ requests: 200, ok: 200, durationS: 2, targetRatePerS: 100 });
    const first = s.arrivals[0].at;
    const inFirstSecond = s.arrivals.filter((a) => a.at - first < 1000).length;
    expect(inFirstSecond).toBeGreaterThanOrEqual(25);
    expect(inFirstSecond).toBeLessThanOrEqual(100);
    expect(s.arrivals.length - inFirstSecond).toBeGreaterThanOrEqual(2 * inFirstSecond);
  });

  it('closed loop follows ramp stages with the number of connections sending', async () => {
    const s = await server();
    const r = await runLoad(
      spec(s.url, {
        mode: 'closed',
        rampStart: 1,
        stages: [
          { durationS: 1, target: 1 },
          { durationS: 1, target: 3 },
        ],
      }),
    );
    expect(r.errors).toEqual({});
    const first = s.arrivals[0].at;
    const others = s.arrivals.filter((a) => a.conn !== s.arrivals[0].conn);
    // Only one connection sends during the first second (the ramp reaches 1.5 → 2 connections at 1.25 s).
    expect(others.length).toBeGreaterThan(0);
    expect(Math.min(...others.map((a) => a.at - first))).toBeGreaterThanOrEqual(1000);
    expect(new Set(s.arrivals.map((a) => a.conn)).size).toBe(3);
  });
});

describe('generator lag', () => {
  it('reports its own event-loop stall as lag and calls the run untrustworthy', async () => {
    const s = await server(answerOk);
    // In this process (not the engine's child) so the test can block the generator's event loop for 150 ms.
    const generator = new Generator(spec(s.url, { ratePerS: 200, durationS: 1.5 }));
    const blocker = setTimeout(() => {
      const until = performance.now() + 150;
      while (performance.now() < until);
    }, 600);
    const r = await generator.run();
    clearTimeout(blocker);
    expect(r.requests).toBe(300);
    expect(r.lag!.maxUs).toBeGreaterThanOrEqual(140_000);
    expect(r.lag!.p99Us).toBeGreaterThanOrEqual(1000);
    expect(r.lag!.trustworthy).toBe(false);
    // The late slots left in a burst and were timed from their intended send: the stall is in the latencies too.
    expect(r.latencyUs.max).toBeGreaterThanOrEqual(140_000);
  });
});
