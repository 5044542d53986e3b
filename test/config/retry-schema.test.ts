// Retry policies and retry budgets in the config: Istio's defaults, off with maxRetries 0, and a bad or unknown
// field refused with its path.
import { describe, expect, it } from 'vitest';
import { Config } from '../../src/config/schema.ts';

function parse(retries: unknown, where: 'route' | 'listener' = 'route', cluster: Record<string, unknown> = {}) {
  return Config.safeParse({
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1:0',
        ...(where === 'listener' ? { stages: { retry: retries } } : {}),
        routes: [{ cluster: 'app', ...(where === 'route' && retries !== undefined ? { retries } : {}) }],
      },
    ],
    clusters: [{ name: 'app', discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:1' }] }, ...cluster }],
  });
}

function issues(r: ReturnType<typeof parse>): string[] {
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('retries config', () => {
  it("fills in Istio's defaults around what a route sets", () => {
    const r = parse({ perTryTimeoutMs: 500 });
    expect(r.success).toBe(true);
    expect(r.data!.listeners[0].routes[0].retries).toEqual({
      maxRetries: 2,
      perTryTimeoutMs: 500,
      retryOn: ['connect-failure', 'refused-stream', 'reset', 'retriable-status-codes', 'unavailable'],
      retriableStatusCodes: [503],
      bufferLimitBytes: 65536,
      backoff: { baseIntervalMs: 25, maxIntervalMs: 250 },
    });
    // Every cluster has Linkerd's budget.
    expect(r.data!.clusters[0].retryBudget).toEqual({ retryRatio: 0.2, minRetriesPerSecond: 10, ttlMs: 10_000 });
  });

  it('takes a listener default under stages.retry, and maxRetries 0 to turn retries off', () => {
    expect(parse({ maxRetries: 0 }, 'listener').success).toBe(true);
    expect(parse({ maxRetries: 0 }).data!.listeners[0].routes[0].retries!.maxRetries).toBe(0);
  });

  it('refuses an unknown or bad field with its path', () => {
    expect(issues(parse({ attempts: 3 }))).toEqual(['listeners.0.routes.0.retries: Unrecognized key: "attempts"']);
    expect(issues(parse({ retryOn: ['5xx', 'sometimes'] }, 'listener'))[0]).toMatch(
      /^listeners\.0\.stages\.retry\.retryOn\.1: /,
    );
    expect(issues(parse({ maxRetries: 11 }))[0]).toMatch(/^listeners\.0\.routes\.0\.retries\.maxRetries: /);
    expect(issues(parse({ backoff: { baseIntervalMs: 100, maxIntervalMs: 50 } }))).toEqual([
      'listeners.0.routes.0.retries.backoff.maxIntervalMs: maxIntervalMs must be at least baseIntervalMs',
    ]);
    expect(issues(parse(undefined, 'route', { retryBudget: { retryPercent: 20 } }))).toEqual([
      'clusters.0.retryBudget: Unrecognized key: "retryPercent"',
    ]);
  });
});
