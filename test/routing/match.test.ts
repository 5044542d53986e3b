import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../src/config/schema.ts';
import { Route } from '../../src/config/schema.ts';
import { compileRoutes, type RoutableRequest } from '../../src/routing/match.ts';

function req(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; grpc?: boolean; source?: string } = {},
): RoutableRequest {
  const q = url.indexOf('?');
  return {
    method: opts.method ?? 'GET',
    path: q < 0 ? url : url.slice(0, q),
    query: q < 0 ? '' : url.slice(q + 1),
    isGrpc: opts.grpc ?? false,
    sourceService: opts.source ?? 'unknown',
    header: (n) => opts.headers?.[n],
    parsedCookies: null,
    parsedQuery: null,
  };
}

const routes = (list: unknown[]): RouteConfig[] => list.map((r) => Route.parse(r));
const table = (list: unknown[]) => compileRoutes(routes(list), (name) => name);
const pick = (t: ReturnType<typeof table>, r: RoutableRequest) => t.match(r)?.pickCluster(0);

describe('route matching', () => {
  it('tries higher priority first and keeps file order among equals', () => {
    const t = table([
      { name: 'catch-all', cluster: 'default' },
      { name: 'api', match: { pathPrefix: '/api' }, cluster: 'api' },
      { name: 'api-v2', priority: 10, match: { pathPrefix: '/api/v2' }, cluster: 'v2' },
    ]);
    expect(pick(t, req('/api/v2/users'))).toBe('v2');
    expect(pick(t, req('/api/v1/users'))).toBe('default'); // catch-all comes first in the file at equal priority
    expect(t.routes.map((r) => r.name)).toEqual(['api-v2', 'catch-all', 'api']);
  });

  it('matches exact paths, prefixes and anchored regexes', () => {
    const t = table([
      { match: { path: '/health' }, cluster: 'exact' },
      { match: { pathRegex: '/users/[0-9]+' }, cluster: 'regex' },
      { match: { pathPrefix: '/static/' }, cluster: 'prefix' },
    ]);
    expect(pick(t, req('/health'))).toBe('exact');
    expect(pick(t, req('/health/x'))).toBeUndefined();
    expect(pick(t, req('/users/42'))).toBe('regex');
    expect(pick(t, req('/users/42/posts'))).toBeUndefined(); // the regex is anchored at both ends
    expect(pick(t, req('/static/app.js'))).toBe('prefix');
  });

  it('matches methods and every header rule kind', () => {
    const t = table([
      { match: { methods: ['post'], headers: [{ name: 'X-Canary', exact: 'true' }] }, cluster: 'canary-post' },
      { match: { headers: [{ name: 'user-agent', prefix: 'curl/' }] }, cluster: 'curl' },
      { match: { headers: [{ name: 'x-tenant', regex: 'team-[a-c]' }] }, cluster: 'tenant' },
      { match: { headers: [{ name: 'x-debug', present: true }] }, cluster: 'debug' },
      { match: { headers: [{ name: 'x-region', exact: 'eu', invert: true }] }, cluster: 'not-eu' },
      { cluster: 'eu' },
    ]);
    expect(pick(t, req('/', { method: 'POST', headers: { 'x-canary': 'true' } }))).toBe('canary-post');
    expect(pick(t, req('/', { method: 'GET', headers: { 'x-canary': 'true', 'x-region': 'eu' } }))).toBe('eu');
    expect(pick(t, req('/', { headers: { 'user-agent': 'curl/8', 'x-region': 'eu' } }))).toBe('curl');
    expect(pick(t, req('/', { headers: { 'x-tenant': 'team-b', 'x-region': 'eu' } }))).toBe('tenant');
    expect(pick(t, req('/', { headers: { 'x-tenant': 'team-z', 'x-region': 'eu' } }))).toBe('eu');
    expect(pick(t, req('/', { headers: { 'x-debug': '', 'x-region': 'eu' } }))).toBe('debug');
    expect(pick(t, req('/', { headers: { 'x-region': 'us' } }))).toBe('not-eu');
  });

  it('matches gRPC requests separately when asked', () => {
    const t = table([{ match: { grpc: true }, cluster: 'grpc' }, { cluster: 'http' }]);
    expect(pick(t, req('/pkg.Svc/Method', { grpc: true }))).toBe('grpc');
    expect(pick(t, req('/pkg.Svc/Method'))).toBe('http');
  });

  it('returns no route when nothing matches', () => {
    expect(table([{ match: { path: '/only' }, cluster: 'x' }]).match(req('/other'))).toBeUndefined();
  });
});

describe('weighted splits', () => {
  it('sends traffic in proportion to the weights and never to a zero weight', () => {
    const t = table([
      {
        weightedClusters: [
          { cluster: 'stable', weight: 90 },
          { cluster: 'canary', weight: 10 },
          { cluster: 'off', weight: 0 },
        ],
      },
    ]);
    const route = t.match(req('/'))!;
    const counts: Record<string, number> = {};
    const n = 10_000;
    // Evenly spaced r values: the split must be exact up to rounding, independent of chance.
    for (let i = 0; i < n; i++) {
      const c = route.pickCluster((i + 0.5) / n);
      counts[c] = (counts[c] ?? 0) + 1;
    }
    expect(counts).toEqual({ stable: 9000, canary: 1000 });
  });
});
