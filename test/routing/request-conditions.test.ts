// Route conditions on cookies, query parameters and the calling service: each kind, invert, absent fields, and
// the parsing rules users rely on (cookie values holding '=', percent-decoded query values, the first of a
// repeated parameter). Also: a request's Cookie header and query are parsed at most once, and only when a
// condition reads them.
import { describe, expect, it } from 'vitest';
import { Route, type RouteConfig } from '../../src/config/schema.ts';
import { compileRoutes, type RoutableRequest } from '../../src/routing/match.ts';
import { parseCookies, parseQuery } from '../../src/routing/request-values.ts';

interface TestRequest extends RoutableRequest {
  /** How many times the matcher read the Cookie header. */
  cookieReads: number;
  queryReads: number;
}

function req(url: string, opts: { cookie?: string; source?: string } = {}): TestRequest {
  const q = url.indexOf('?');
  const r: TestRequest = {
    method: 'GET',
    path: q < 0 ? url : url.slice(0, q),
    get query() {
      r.queryReads++;
      return q < 0 ? '' : url.slice(q + 1);
    },
    isGrpc: false,
    sourceService: opts.source ?? 'unknown',
    header(name) {
      if (name === 'cookie') r.cookieReads++;
      return name === 'cookie' ? opts.cookie : undefined;
    },
    parsedCookies: null,
    parsedQuery: null,
    cookieReads: 0,
    queryReads: 0,
  };
  return r;
}

const table = (list: unknown[]) =>
  compileRoutes(
    list.map((r): RouteConfig => Route.parse(r)),
    (name) => name,
  );
const pick = (t: ReturnType<typeof table>, r: RoutableRequest) => t.match(r)?.pickCluster(0);

describe('cookie conditions', () => {
  it('matches exact, prefix, regex and present, and falls through otherwise', () => {
    const t = table([
      { match: { cookies: [{ name: 'canary', exact: '1' }] }, cluster: 'exact' },
      { match: { cookies: [{ name: 'user', prefix: 'beta-' }] }, cluster: 'prefix' },
      { match: { cookies: [{ name: 'team', regex: 't[0-9]+' }] }, cluster: 'regex' },
      { match: { cookies: [{ name: 'debug', present: true }] }, cluster: 'present' },
      { cluster: 'default' },
    ]);
    expect(pick(t, req('/', { cookie: 'canary=1' }))).toBe('exact');
    expect(pick(t, req('/', { cookie: 'canary=10' }))).toBe('default');
    expect(pick(t, req('/', { cookie: 'a=b; user=beta-7' }))).toBe('prefix');
    expect(pick(t, req('/', { cookie: 'team=t42' }))).toBe('regex');
    expect(pick(t, req('/', { cookie: 'team=t42x' }))).toBe('default'); // anchored
    expect(pick(t, req('/', { cookie: 'debug=' }))).toBe('present');
    expect(pick(t, req('/'))).toBe('default');
  });

  it('treats a request without a Cookie header as having no cookies (present: false and invert match it)', () => {
    const t = table([
      { match: { cookies: [{ name: 'session', present: false }] }, cluster: 'anonymous' },
      { cluster: 'default' },
    ]);
    expect(pick(t, req('/'))).toBe('anonymous');
    expect(pick(t, req('/', { cookie: 'other=1' }))).toBe('anonymous');
    expect(pick(t, req('/', { cookie: 'session=abc' }))).toBe('default');
    const inverted = table([
      { match: { cookies: [{ name: 'canary', exact: '1', invert: true }] }, cluster: 'stable' },
      { cluster: 'canary' },
    ]);
    expect(pick(inverted, req('/'))).toBe('stable');
    expect(pick(inverted, req('/', { cookie: 'canary=0' }))).toBe('stable');
    expect(pick(inverted, req('/', { cookie: 'canary=1' }))).toBe('canary');
  });

  it("keeps '=' inside cookie values, drops quotes and spaces, and takes the first of a repeated name", () => {
    const t = table([
      { match: { cookies: [{ name: 'token', exact: 'a=b==' }] }, cluster: 'token' },
      { match: { cookies: [{ name: 'q', exact: 'hello world' }] }, cluster: 'quoted' },
      { match: { cookies: [{ name: 'v', exact: '1' }] }, cluster: 'v1' },
      { cluster: 'default' },
    ]);
    expect(pick(t, req('/', { cookie: 'x=1;token=a=b==' }))).toBe('token');
    expect(pick(t, req('/', { cookie: 'q="hello world"' }))).toBe('quoted');
    expect(pick(t, req('/', { cookie: 'v=1; v=2' }))).toBe('v1');
    expect(pick(t, req('/', { cookie: 'v=2; v=1' }))).toBe('default');
    expect([...parseCookies('  a = 1 ;b=2;; noequals; =x; c="3"')]).toEqual([
      ['a', '1'],
      ['b', '2'],
      ['c', '3'],
    ]);
  });

  it('names are case-sensitive', () => {
    const t = table([{ match: { cookies: [{ name: 'Canary', exact: '1' }] }, cluster: 'c' }, { cluster: 'd' }]);
    expect(pick(t, req('/', { cookie: 'canary=1' }))).toBe('d');
    expect(pick(t, req('/', { cookie: 'Canary=1' }))).toBe('c');
  });
});

describe('query parameter conditions', () => {
  it('matches every value test kind and invert', () => {
    const t = table([
      { match: { queryParams: [{ name: 'beta', exact: 'true' }] }, cluster: 'exact' },
      { match: { queryParams: [{ name: 'lang', prefix: 'en' }] }, cluster: 'prefix' },
      { match: { queryParams: [{ name: 'id', regex: '[0-9]+' }] }, cluster: 'regex' },
      { match: { queryParams: [{ name: 'debug', present: true }] }, cluster: 'present' },
      { match: { queryParams: [{ name: 'mode', exact: 'fast', invert: true }], path: '/inv' }, cluster: 'inverted' },
      { cluster: 'default' },
    ]);
    expect(pick(t, req('/?beta=true'))).toBe('exact');
    expect(pick(t, req('/?beta=false'))).toBe('default');
    expect(pick(t, req('/x?a=1&lang=en-GB'))).toBe('prefix');
    expect(pick(t, req('/?id=123'))).toBe('regex');
    expect(pick(t, req('/?id=12a'))).toBe('default');
    expect(pick(t, req('/?debug'))).toBe('present');
    expect(pick(t, req('/?debug='))).toBe('present');
    expect(pick(t, req('/inv'))).toBe('inverted'); // absent: not "fast"
    expect(pick(t, req('/inv?mode=slow'))).toBe('inverted');
    expect(pick(t, req('/inv?mode=fast'))).toBe('default');
  });

  it('percent-decodes names and values (+ is a space) and keeps malformed escapes as sent', () => {
    const t = table([
      { match: { queryParams: [{ name: 'q', exact: 'café au lait' }] }, cluster: 'decoded' },
      { match: { queryParams: [{ name: 'user id', exact: 'a&b' }] }, cluster: 'name' },
      { match: { queryParams: [{ name: 'bad', exact: '%zz' }] }, cluster: 'malformed' },
      { cluster: 'default' },
    ]);
    expect(pick(t, req('/?q=caf%C3%A9+au%20lait'))).toBe('decoded');
    expect(pick(t, req('/?user%20id=a%26b'))).toBe('name');
    expect(pick(t, req('/?bad=%zz'))).toBe('malformed');
  });

  it('takes the first value of a repeated parameter', () => {
    const t = table([{ match: { queryParams: [{ name: 'v', exact: '2' }] }, cluster: 'v2' }, { cluster: 'v1' }]);
    expect(pick(t, req('/?v=2&v=1'))).toBe('v2');
    expect(pick(t, req('/?v=1&v=2'))).toBe('v1');
    expect([...parseQuery('a=1&&b=x=y&a=3&=skip&c')]).toEqual([
      ['a', '1'],
      ['b', 'x=y'],
      ['c', ''],
    ]);
  });
});

describe('source service conditions', () => {
  it('matches the calling service against the listed ones', () => {
    const t = table([{ match: { sourceServices: ['checkout', 'cart'] }, cluster: 'trusted' }, { cluster: 'default' }]);
    expect(pick(t, req('/', { source: 'cart' }))).toBe('trusted');
    expect(pick(t, req('/', { source: 'checkout' }))).toBe('trusted');
    expect(pick(t, req('/', { source: 'frontend' }))).toBe('default');
    expect(pick(t, req('/'))).toBe('default');
  });
});

describe('lazy parsing', () => {
  it('never reads the Cookie header or the query when no route has such a condition', () => {
    const t = table([
      { match: { pathPrefix: '/api', headers: [{ name: 'x-a', present: false }] }, cluster: 'api' },
      { cluster: 'default' },
    ]);
    const r = req('/api?beta=true', { cookie: 'canary=1' });
    expect(pick(t, r)).toBe('api');
    expect([r.cookieReads, r.queryReads, r.parsedCookies, r.parsedQuery]).toEqual([0, 0, null, null]);
  });

  it('parses each at most once per request, however many conditions read them', () => {
    const t = table([
      { match: { cookies: [{ name: 'a', exact: 'x' }], queryParams: [{ name: 'p', exact: 'x' }] }, cluster: 'one' },
      { match: { cookies: [{ name: 'b', exact: 'x' }], queryParams: [{ name: 'q', exact: 'x' }] }, cluster: 'two' },
      {
        match: {
          cookies: [
            { name: 'a', exact: '1' },
            { name: 'b', exact: '2' },
          ],
          queryParams: [
            { name: 'p', exact: '1' },
            { name: 'q', exact: '2' },
          ],
        },
        cluster: 'three',
      },
    ]);
    const r = req('/?p=1&q=2', { cookie: 'a=1; b=2' });
    expect(pick(t, r)).toBe('three');
    expect([r.cookieReads, r.queryReads]).toEqual([1, 1]);
  });

  it('does not parse the query when an earlier condition of the route already failed', () => {
    const t = table([{ match: { path: '/only', queryParams: [{ name: 'p', present: true }] }, cluster: 'x' }]);
    const r = req('/other?p=1');
    expect(t.match(r)).toBeUndefined();
    expect(r.queryReads).toBe(0);
  });
});

describe('schema', () => {
  it('refuses two value tests in one condition, with the field path', () => {
    const r = Route.safeParse({
      match: { cookies: [{ name: 'a', exact: '1', prefix: '1' }] },
      cluster: 'x',
    });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0].path).toEqual(['match', 'cookies', 0]);
    const bad = Route.safeParse({ match: { queryParams: [{ name: 'a', regex: '(' }] }, cluster: 'x' });
    expect(bad.error!.issues[0]).toMatchObject({
      path: ['match', 'queryParams', 0, 'regex'],
      message: 'invalid regular expression',
    });
  });
});
