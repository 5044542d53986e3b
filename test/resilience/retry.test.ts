// The retry policy's decisions without sockets: which outcomes each retryOn condition retries, the backoff's
// bounds, and the retry budget's arithmetic over its window.
import { describe, expect, it } from 'vitest';
import { RetryPolicy } from '../../src/config/retry-schema.ts';
import {
  backoffMs,
  compileRetryPolicy,
  RetryBudget,
  retriableFailure,
  retriableGrpcStatus,
  retriableStatus,
} from '../../src/resilience/retry.ts';

const policy = (cfg: Record<string, unknown> = {}) => compileRetryPolicy(RetryPolicy.parse(cfg))!;

describe('retry policy', () => {
  it("defaults to Istio's: 2 retries on connect failure, refused stream, reset, 503 and gRPC UNAVAILABLE", () => {
    const p = policy();
    expect(p.maxRetries).toBe(2);
    expect(p.perTryTimeoutMs).toBe(0);
    expect(p.bufferLimitBytes).toBe(64 * 1024);
    expect(retriableStatus(p, 503)).toBe(true);
    for (const status of [200, 404, 409, 500, 502, 504]) expect(retriableStatus(p, status), String(status)).toBe(false);
    for (const f of ['connect-failure', 'refused-stream', 'reset', 'per-try-timeout'] as const)
      expect(retriableFailure(p, f), f).toBe(true);
    expect(retriableGrpcStatus(p, 14)).toBe(true);
    for (const g of [0, 1, 2, 4, 8, 13]) expect(retriableGrpcStatus(p, g), String(g)).toBe(false);
  });

  it('is off with maxRetries 0', () => {
    expect(compileRetryPolicy(RetryPolicy.parse({ maxRetries: 0 }))).toBeNull();
  });

  it('retries every 5xx and every failure with 5xx, only 502-504 with gateway-error', () => {
    const all = policy({ retryOn: ['5xx'] });
    for (const status of [500, 501, 502, 503, 504, 599]) expect(retriableStatus(all, status)).toBe(true);
    expect(retriableStatus(all, 499)).toBe(false);
    const gw = policy({ retryOn: ['gateway-error'] });
    expect([500, 502, 503, 504].map((s) => retriableStatus(gw, s))).toEqual([false, true, true, true]);
    for (const p of [all, gw])
      for (const f of ['connect-failure', 'refused-stream', 'reset', 'per-try-timeout'] as const)
        expect(retriableFailure(p, f)).toBe(true);
  });

  it('retries only its own failure with connect-failure or refused-stream', () => {
    const connect = policy({ retryOn: ['connect-failure'] });
    expect(retriableFailure(connect, 'connect-failure')).toBe(true);
    expect(retriableFailure(connect, 'refused-stream')).toBe(false);
    expect(retriableFailure(connect, 'reset')).toBe(false);
    expect(retriableFailure(connect, 'per-try-timeout')).toBe(false);
    expect(retriableStatus(connect, 503)).toBe(false);
    const refused = policy({ retryOn: ['refused-stream'] });
    expect(retriableFailure(refused, 'refused-stream')).toBe(true);
    expect(retriableFailure(refused, 'connect-failure')).toBe(false);
  });

  it('retries 409 with retriable-4xx and the listed statuses with retriable-status-codes', () => {
    expect(retriableStatus(policy({ retryOn: ['retriable-4xx'] }), 409)).toBe(true);
    expect(retriableStatus(policy({ retryOn: ['retriable-4xx'] }), 429)).toBe(false);
    const codes = policy({ retryOn: ['retriable-status-codes'], retriableStatusCodes: [429, 500] });
    expect([429, 500, 503].map((s) => retriableStatus(codes, s))).toEqual([true, true, false]);
    // The list without its condition retries nothing.
    expect(retriableStatus(policy({ retryOn: ['reset'], retriableStatusCodes: [429] }), 429)).toBe(false);
  });

  it('retries the gRPC statuses it names', () => {
    const p = policy({ retryOn: ['cancelled', 'deadline-exceeded', 'resource-exhausted', 'internal'] });
    expect([1, 4, 8, 13, 14].map((g) => retriableGrpcStatus(p, g))).toEqual([true, true, true, true, false]);
    expect(retriableGrpcStatus(p, 99)).toBe(false);
  });

  it('waits with full jitter under base × (2^n − 1), at most maxIntervalMs', () => {
    const p = policy();
    expect(backoffMs(p, 1, 0)).toBe(0);
    expect(backoffMs(p, 1, 0.999)).toBe(24);
    expect(backoffMs(p, 2, 0.999)).toBe(74);
    expect(backoffMs(p, 3, 0.999)).toBe(174);
    expect(backoffMs(p, 4, 0.999)).toBe(249);
    expect(backoffMs(p, 40, 0.999)).toBe(249);
    expect(backoffMs(policy({ backoff: { baseIntervalMs: 100, maxIntervalMs: 150 } }), 1, 0.5)).toBe(50);
  });
});

describe('retry budget', () => {
  const budget = (cfg: Partial<{ retryRatio: number; minRetriesPerSecond: number; ttlMs: number }>) =>
    new RetryBudget({ retryRatio: 0.2, minRetriesPerSecond: 10, ttlMs: 10_000, ...cfg });

  it('allows retries up to 20% of the requests in the window', () => {
    const b = budget({ minRetriesPerSecond: 0 });
    for (let i = 0; i < 100; i++) b.deposit(1000 + i);
    let allowed = 0;
    for (let i = 0; i < 50; i++) if (b.tryWithdraw(1200)) allowed++;
    expect(allowed).toBe(20);
    expect(b.refused).toBe(30);
  });

  it('allows the floor of minRetriesPerSecond × ttl with no requests at all', () => {
    const b = budget({ minRetriesPerSecond: 2 });
    let allowed = 0;
    for (let i = 0; i < 50; i++) if (b.tryWithdraw(500)) allowed++;
    expect(allowed).toBe(20);
  });

  it('forgets requests and retries once they leave the window', () => {
    const b = budget({ minRetriesPerSecond: 0 });
    for (let i = 0; i < 10; i++) b.deposit(0);
    expect(b.tryWithdraw(100)).toBe(true);
    expect(b.tryWithdraw(100)).toBe(true);
    expect(b.tryWithdraw(100)).toBe(false);
    // 11 s later the window holds nothing: no room, until new requests come.
    expect(b.tryWithdraw(11_000)).toBe(false);
    for (let i = 0; i < 5; i++) b.deposit(11_000);
    expect(b.tryWithdraw(11_000)).toBe(true);
    expect(b.describe(11_000)).toMatchObject({ requests: 5, retries: 1, available: 0, refused: 2 });
  });

  it('keeps the requests of the window while older buckets rotate out', () => {
    const b = budget({ minRetriesPerSecond: 0, ttlMs: 10_000 });
    for (let s = 0; s < 20; s++) for (let i = 0; i < 10; i++) b.deposit(s * 1000 + 1);
    // At 19.5 s the window (10 buckets of 1 s) holds seconds 10..19: 100 requests.
    expect(b.describe(19_500)).toMatchObject({ requests: 100, available: 20 });
  });
});
