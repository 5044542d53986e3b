// Rate limit policies in the config: defaults, and a bad policy refused with the field's path.
import { describe, expect, it } from 'vitest';
import { Config } from '../../src/config/schema.ts';

function parse(rateLimit: unknown, where: 'route' | 'listener' = 'route') {
  return Config.safeParse({
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1:0',
        ...(where === 'listener' ? { stages: { 'rate-limit': rateLimit } } : {}),
        routes: [{ cluster: 'app', ...(where === 'route' ? { rateLimit } : {}) }],
      },
    ],
    clusters: [{ name: 'app', discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:1' }] } }],
  });
}

function issues(r: ReturnType<typeof parse>): string[] {
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('rateLimit config', () => {
  it('takes the seed names with their defaults', () => {
    const r = parse({ requestsPerSecond: 100, global: { redis: 'redis://127.0.0.1:6379' } });
    expect(r.success).toBe(true);
    expect(r.data!.listeners[0].routes[0].rateLimit).toEqual({
      requestsPerSecond: 100,
      keyExtractor: 'source_service',
      maxKeys: 10_000,
      global: { redis: 'redis://127.0.0.1:6379', failureMode: 'open', timeoutMs: 100 },
    });
  });

  it('refuses a bad policy with the path of the field', () => {
    expect(issues(parse({ requestsPerSecond: 10, keyExtractor: 'header' }))).toEqual([
      'listeners.0.routes.0.rateLimit.header: keyExtractor header needs header: <name>',
    ]);
    expect(issues(parse({ requestsPerSecond: 10, global: { redis: '127.0.0.1:6379' } }, 'listener'))).toEqual([
      'listeners.0.stages.rate-limit.global.redis: expected redis://host:port (or rediss://)',
    ]);
    expect(issues(parse({ requestsPerSecond: 0 }))[0]).toMatch(
      /^listeners\.0\.routes\.0\.rateLimit\.requestsPerSecond: /,
    );
    expect(issues(parse({ requestsPerSecond: 1, global: { redis: 'redis://x:1', failureMode: 'maybe' } }))[0]).toMatch(
      /rateLimit\.global\.failureMode/,
    );
  });
});
