// The rate limiters' arithmetic without sockets: the local token bucket (burst, refill, the ms to wait, the
// bounded key set) and GCRA as the Redis script computes it.
import { describe, expect, it } from 'vitest';
import { gcra, TokenBuckets } from '../../src/resilience/rate-limit.ts';

describe('token buckets', () => {
  it('lets a burst through at once, then one request per 1/rate', () => {
    const b = new TokenBuckets(10, 3, 100); // 10/s: a token every 100 ms
    expect([b.take('a', 0), b.take('a', 0), b.take('a', 0)]).toEqual([0, 0, 0]);
    expect(b.take('a', 0)).toBeCloseTo(100);
    expect(b.take('a', 40)).toBeCloseTo(60);
    expect(b.take('a', 100)).toBe(0);
    expect(b.take('a', 100)).toBeCloseTo(100);
  });

  it('never holds more than the burst, however long a key was idle', () => {
    const b = new TokenBuckets(100, 2, 100);
    b.take('a', 0);
    let allowed = 0;
    for (let i = 0; i < 10; i++) if (b.take('a', 1_000_000) === 0) allowed++;
    expect(allowed).toBe(2);
  });

  it('counts each key on its own', () => {
    const b = new TokenBuckets(1, 1, 100);
    expect(b.take('a', 0)).toBe(0);
    expect(b.take('a', 0)).toBeGreaterThan(0);
    expect(b.take('b', 0)).toBe(0);
  });

  it('accepts burst + rate × time over a long run of requests faster than the rate', () => {
    const b = new TokenBuckets(50, 5, 10);
    let allowed = 0;
    for (let t = 0; t <= 10_000; t += 5) if (b.take('k', t) === 0) allowed++; // 200/s for 10 s
    expect(allowed).toBe(5 + 500);
  });

  it('keeps at most maxKeys buckets, dropping the least recently used', () => {
    const b = new TokenBuckets(1, 1, 3);
    b.take('a', 0);
    b.take('b', 0);
    b.take('c', 0);
    b.take('a', 1); // a is the most recent now
    for (let i = 0; i < 1000; i++) b.take(`random-${i}`, 2);
    expect(b.size).toBe(3);
    const c = new TokenBuckets(1, 1, 3);
    c.take('a', 0);
    c.take('b', 0);
    c.take('c', 0);
    c.take('a', 0); // refused, but touched: b is now the oldest
    c.take('d', 0);
    expect(c.take('a', 0)).toBeGreaterThan(0); // a kept its empty bucket
    expect(c.take('b', 0)).toBe(0); // b was dropped, and starts afresh
  });
});

describe('GCRA', () => {
  const T = 100; // 10/s

  it('allows a burst at once, then one per interval, and says how long to wait', () => {
    let tat = 0;
    for (let i = 0; i < 3; i++) {
      const r = gcra(tat, 1000, T, 3);
      expect(r.allowed).toBe(true);
      tat = r.tatMs;
    }
    const refused = gcra(tat, 1000, T, 3);
    expect(refused).toEqual({ allowed: false, tatMs: tat, retryAfterMs: T });
    expect(gcra(tat, 1000 + T - 1, T, 3).allowed).toBe(false);
    expect(gcra(tat, 1000 + T, T, 3).allowed).toBe(true);
  });

  it('accepts burst + rate × time over a long run of requests faster than the rate', () => {
    let tat = 0;
    let allowed = 0;
    for (let t = 0; t <= 10_000; t += 3) {
      const r = gcra(tat, t, T, 4);
      if (r.allowed) allowed++;
      tat = r.tatMs;
    }
    // 4 at t=0, then one per 100 ms from when the burst's credit runs out: 4 + 100 (± the last interval).
    expect(allowed).toBeGreaterThanOrEqual(103);
    expect(allowed).toBeLessThanOrEqual(104);
  });

  it('forgets an idle key: after burst × interval the full burst is back', () => {
    let tat = 0;
    for (let i = 0; i < 5; i++) tat = gcra(tat, 0, T, 5).tatMs;
    expect(gcra(tat, 0, T, 5).allowed).toBe(false);
    let allowed = 0;
    for (let i = 0; i < 10; i++) {
      const r = gcra(tat, 5 * T, T, 5);
      if (r.allowed) allowed++;
      tat = r.tatMs;
    }
    expect(allowed).toBe(5);
  });
});
