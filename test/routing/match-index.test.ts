// Runs of routes that all require an exact value of one header are matched through an index. The index must
// pick exactly the route the one-by-one scan picks, in priority and file order, whatever else the routes test:
// checked against that scan over many generated tables and requests (fixed seed).
import { describe, expect, it } from 'vitest';
import { Route, type RouteConfig } from '../../src/config/schema.ts';
import { compileRoute, compileRoutes, type RoutableRequest } from '../../src/routing/match.ts';

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function request(path: string, method: string, headers: Record<string, string>): RoutableRequest {
  return {
    method,
    path,
    query: '',
    isGrpc: false,
    sourceService: 'unknown',
    header: (n) => headers[n],
    parsedCookies: null,
    parsedQuery: null,
  };
}

/** The reference: every route tested one by one, in priority then file order. */
function scan(routes: RouteConfig[], req: RoutableRequest): string | undefined {
  const order = routes.map((r, i) => ({ r, i })).sort((a, b) => b.r.priority - a.r.priority || a.i - b.i);
  for (const { r, i } of order) if (compileRoute(r, i, (c) => c).matches(req)) return r.name;
  return undefined;
}

describe('indexed header runs', () => {
  it('match exactly what the one-by-one scan matches, over 200 generated tables', () => {
    const rand = prng(42);
    const pickOf = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
    const users = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'];
    for (let t = 0; t < 200; t++) {
      const list: unknown[] = [];
      const n = 5 + Math.floor(rand() * 40);
      for (let i = 0; i < n; i++) {
        const kind = rand();
        const headers: unknown[] = [];
        if (kind < 0.7) headers.push({ name: pickOf(['x-user', 'x-user', 'x-tenant']), exact: pickOf(users) });
        else if (kind < 0.8) headers.push({ name: 'x-user', exact: pickOf(users), invert: true });
        if (rand() < 0.3) headers.push({ name: 'x-beta', present: true });
        list.push({
          name: `r${i}`,
          priority: pickOf([0, 0, 0, 10, 5]),
          match: {
            headers,
            ...(rand() < 0.3 && { pathPrefix: pickOf(['/a', '/b']) }),
            ...(rand() < 0.2 && { methods: [pickOf(['GET', 'POST'])] }),
          },
          cluster: `c${i}`,
        });
      }
      if (rand() < 0.5) list.push({ name: 'default', priority: -1, cluster: 'default' });
      const routes = list.map((r) => Route.parse(r));
      const table = compileRoutes(routes, (c) => c);
      for (let q = 0; q < 50; q++) {
        const headers: Record<string, string> = {};
        if (rand() < 0.8) headers['x-user'] = pickOf([...users, 'u9']);
        if (rand() < 0.5) headers['x-tenant'] = pickOf(users);
        if (rand() < 0.3) headers['x-beta'] = '1';
        const req = request(pickOf(['/a/1', '/b', '/c']), pickOf(['GET', 'POST']), headers);
        expect(`table ${t}, ${JSON.stringify(headers)}: ${table.match(req)?.name}`).toBe(
          `table ${t}, ${JSON.stringify(headers)}: ${scan(routes, req)}`,
        );
      }
    }
  });

  it('reads the header once for a run of 100 per-user rules (and once more in the route it picks), not 100 times', () => {
    const list: unknown[] = Array.from({ length: 100 }, (_, i) => ({
      name: `user-${i}`,
      priority: 10,
      match: { headers: [{ name: 'x-user', exact: `user-${i}` }] },
      cluster: `c${i}`,
    }));
    list.push({ name: 'default', cluster: 'default' });
    const table = compileRoutes(
      list.map((r) => Route.parse(r)),
      (c) => c,
    );
    let reads = 0;
    const counting = (headers: Record<string, string>): RoutableRequest => ({
      ...request('/', 'GET', headers),
      header: (n) => {
        reads++;
        return headers[n];
      },
    });
    expect(table.match(counting({ 'x-user': 'user-73' }))?.name).toBe('user-73');
    expect(reads).toBe(2);
    expect(table.match(counting({}))?.name).toBe('default');
    expect(reads).toBe(3);
  });
});
