// The authorization stage without sockets: wildcard patterns, Istio's decision order (deny wins, then allow,
// then the default), requests without a verified peer, path normalization, and the 403 RBAC reply.
import { describe, expect, it } from 'vitest';
import type { CompiledListener } from '../../../src/config/compile.ts';
import { Config } from '../../../src/config/schema.ts';
import { Authorization } from '../../../src/config/authorization-schema.ts';
import { CompiledAuthorization, normalizePath } from '../../../src/identity/authorization.ts';
import { compilePatterns, globMatch } from '../../../src/identity/patterns.ts';
import type { Cluster } from '../../../proxy/cluster.ts';
import type { RequestContext } from '../../../proxy/context.ts';
import type { Stage } from '../../../proxy/pipeline.ts';
import { authorizationStage } from '../../../proxy/stages/authorization.ts';
import { StateStore } from '../../../proxy/stages/state.ts';
import { grpcStatusForHttp } from '../../../proxy/flags.ts';

const SHOP = 'spiffe://cluster.local/ns/shop/sa/cart';
const ADMIN = 'spiffe://cluster.local/ns/ops/sa/admin';

function build(authorization: unknown, listener: Record<string, unknown> = {}): Stage | null {
  const config = Config.parse({
    listeners: [
      {
        name: 'in',
        address: '127.0.0.1:0',
        direction: 'inbound',
        routes: [{ cluster: 'app' }],
        ...(authorization !== undefined && { stages: { authorization } }),
        ...listener,
      },
    ],
    clusters: [{ name: 'app', discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:1' }] } }],
  });
  const l = config.listeners[0];
  const store = new StateStore();
  store.beginCompile();
  const stage = authorizationStage.create({
    listener: { config: l } as unknown as CompiledListener<Cluster>,
    direction: 'inbound',
    protocol: l.protocol,
    config: (l.stages as Record<string, unknown> | undefined)?.authorization,
    state: store.scope('authorization', 'in'),
  });
  store.commit();
  return stage;
}

function request(spiffeId: string | null, method = 'GET', path = '/'): RequestContext {
  return {
    peer: spiffeId === null ? null : { spiffeId, certSha256: 'ab'.repeat(32) },
    method,
    path,
  } as unknown as RequestContext;
}

/** '' = let through, else the reply's flag. */
function verdict(stage: Stage, ctx: RequestContext): string {
  const v = stage.onRequest!(ctx);
  if (v instanceof Promise) throw new Error('authorization never waits');
  return v === null ? '' : v.flag;
}

function decide(config: unknown, source: string | null, method = 'GET', path = '/') {
  return new CompiledAuthorization(Authorization.parse(config)).decide(source, method, path);
}

describe('authorization patterns', () => {
  it('matches exact values, a trailing or leading *, * alone, and * in the middle', () => {
    const t = compilePatterns(['spiffe://cluster.local/ns/shop/sa/*', '*/sa/admin', 'spiffe://x/exact']);
    expect(t(SHOP)).toBe(true);
    expect(t('spiffe://cluster.local/ns/shop/sa/')).toBe(true);
    expect(t(ADMIN)).toBe(true);
    expect(t('spiffe://x/exact')).toBe(true);
    expect(t('spiffe://x/exact/more')).toBe(false);
    expect(t('spiffe://cluster.local/ns/shopping/sa/cart')).toBe(false);
    expect(compilePatterns(['*'])('anything')).toBe(true);
    const mid = compilePatterns(['spiffe://cluster.local/ns/*/sa/cart']);
    expect(mid(SHOP)).toBe(true);
    expect(mid('spiffe://cluster.local/ns/a/b/sa/cart')).toBe(true);
    expect(mid('spiffe://cluster.local/ns/shop/sa/carts')).toBe(false);
    expect(mid('spiffe://cluster.local/ns/sa/cart')).toBe(false);
  });

  it('finds a glob part in order and never lets parts overlap', () => {
    expect(globMatch('abcabc', ['a', 'c', 'c'])).toBe(true);
    expect(globMatch('abc', ['ab', 'bc'])).toBe(false);
    expect(globMatch('/api/v1/users/7/orders', ['/api/', '/users/', '/orders'])).toBe(true);
    expect(globMatch('/api/v1/orders/users/', ['/api/', '/users/', '/orders'])).toBe(false);
    expect(compilePatterns(['/a**b'])('/a-b')).toBe(true);
  });
});

describe('authorization decisions', () => {
  const shopOnly = { policies: [{ name: 'shop', action: 'allow', sources: ['spiffe://cluster.local/ns/shop/sa/*'] }] };

  it('allows everything when there is no policy, and only what an allow policy matches once there is one', () => {
    expect(decide({}, null)).toEqual({ allowed: true, policy: '' });
    expect(decide(shopOnly, SHOP)).toEqual({ allowed: true, policy: 'shop' });
    expect(decide(shopOnly, ADMIN)).toEqual({ allowed: false, policy: '' });
  });

  it('lets a matching deny win over a matching allow', () => {
    const config = {
      policies: [...shopOnly.policies, { name: 'no-admin-path', action: 'deny', paths: ['/admin/*'] }],
    };
    expect(decide(config, SHOP, 'GET', '/items')).toEqual({ allowed: true, policy: 'shop' });
    expect(decide(config, SHOP, 'GET', '/admin/users')).toEqual({ allowed: false, policy: 'no-admin-path' });
  });

  it('ANDs the fields of a policy and ORs the values of a field', () => {
    const config = {
      policies: [
        {
          name: 'writes',
          action: 'deny',
          sources: ['*/sa/cart'],
          methods: ['post', 'DELETE'],
          paths: ['/orders', '/carts/*'],
        },
      ],
    };
    expect(decide(config, SHOP, 'POST', '/orders').allowed).toBe(false);
    expect(decide(config, SHOP, 'DELETE', '/carts/1').allowed).toBe(false);
    expect(decide(config, SHOP, 'GET', '/orders').allowed).toBe(true); // method differs
    expect(decide(config, SHOP, 'POST', '/users').allowed).toBe(true); // path differs
    expect(decide(config, ADMIN, 'POST', '/orders').allowed).toBe(true); // source differs
  });

  it('gives a request without a verified peer no source: no sources pattern matches it, not even *', () => {
    const any = { policies: [{ name: 'mesh', action: 'allow', sources: ['*'] }] };
    expect(decide(any, null).allowed).toBe(false);
    expect(decide(any, '').allowed).toBe(false);
    expect(decide(any, SHOP).allowed).toBe(true);
    // …so a deny on sources does not refuse it, and a policy without sources still applies to it.
    const denyOps = { policies: [{ name: 'ops', action: 'deny', sources: ['*/ns/ops/*'] }] };
    expect(decide(denyOps, null).allowed).toBe(true);
    const healthz = { policies: [{ name: 'health', action: 'allow', paths: ['/healthz'] }] };
    expect(decide(healthz, null, 'GET', '/healthz').allowed).toBe(true);
    expect(decide(healthz, null, 'GET', '/other').allowed).toBe(false);
  });

  it('takes the default when nothing matched: deny with no allow policy refuses everything else', () => {
    const config = { default: 'deny', policies: [{ name: 'x', action: 'deny', methods: ['TRACE'] }] };
    expect(decide(config, SHOP, 'GET', '/')).toEqual({ allowed: false, policy: '' });
    expect(
      decide({ default: 'allow', policies: [{ name: 'x', action: 'deny', methods: ['TRACE'] }] }, SHOP).allowed,
    ).toBe(true);
  });

  it('matches paths after normalizing them, so an escaped or dotted path does not pass a deny', () => {
    const config = { policies: [{ name: 'admin', action: 'deny', paths: ['/admin', '/admin/*'] }] };
    for (const path of ['/admin', '/admin/x', '/%61dmin/x', '/public/../admin/x', '//admin/x', '/./admin', '/admin/./'])
      expect([path, decide(config, SHOP, 'GET', path).allowed]).toEqual([path, false]);
    for (const path of ['/administrator', '/public/admin', '/%2Fadmin/x'])
      expect([path, decide(config, SHOP, 'GET', path).allowed]).toEqual([path, true]);
  });
});

describe('normalizePath', () => {
  it('returns the same string for an ordinary path', () => {
    const p = '/api/v1/users/42';
    expect(normalizePath(p)).toBe(p);
    expect(normalizePath('/')).toBe('/');
  });

  it('decodes unreserved escapes only, resolves dot segments and merges slashes', () => {
    expect(normalizePath('/%41%7e%2f%20')).toBe('/A~%2F%20');
    expect(normalizePath('/a/b/../../../c')).toBe('/c');
    expect(normalizePath('/a//b///c/')).toBe('/a/b/c/');
    expect(normalizePath('/a/.')).toBe('/a/');
    expect(normalizePath('/..')).toBe('/');
    expect(normalizePath('/.well-known/x')).toBe('/.well-known/x');
  });
});

describe('authorization stage', () => {
  it('is left out of a listener without policies, or whose policies let everything through', () => {
    expect(build(undefined)).toBeNull();
    expect(build({})).toBeNull();
    expect(build({ default: 'allow' })).toBeNull();
    expect(build({ policies: [{ name: 'x', action: 'deny', methods: ['TRACE'] }] })).not.toBeNull();
  });

  it('refuses with 403 and flag RBAC, which gRPC callers get as PERMISSION_DENIED', () => {
    const stage = build({
      policies: [{ name: 'shop', action: 'allow', sources: ['spiffe://cluster.local/ns/shop/*'] }],
    })!;
    expect(verdict(stage, request(SHOP))).toBe('');
    expect(verdict(stage, request(null))).toBe('RBAC');
    const reply = stage.onRequest!(request(ADMIN));
    expect(reply).toMatchObject({ status: 403, flag: 'RBAC', message: 'RBAC: access denied', grpcStatus: 7 });
    expect(grpcStatusForHttp(403)).toBe(7);
  });

  it('runs on a tcp listener on the caller alone', () => {
    const stage = build(
      { policies: [{ name: 'shop', action: 'allow', sources: ['*/ns/shop/*'] }] },
      { protocol: 'tcp', cluster: 'app', routes: [] },
    )!;
    expect(verdict(stage, request(SHOP, '', ''))).toBe('');
    expect(verdict(stage, request(ADMIN, '', ''))).toBe('RBAC');
  });
});
