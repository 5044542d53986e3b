// Authorization policies in the config: accepted shapes, and each bad one refused with its field path.
import { describe, expect, it } from 'vitest';
import { Config } from '../../src/config/schema.ts';

function parse(authorization: unknown, listener: Record<string, unknown> = {}) {
  return Config.safeParse({
    listeners: [
      {
        name: 'in',
        address: '127.0.0.1:0',
        direction: 'inbound',
        routes: [{ cluster: 'app' }],
        stages: { authorization },
        ...listener,
      },
    ],
    clusters: [{ name: 'app', discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:1' }] } }],
  });
}

function issues(r: ReturnType<typeof parse>): string[] {
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

const AT = 'listeners.0.stages.authorization';

describe('authorization config', () => {
  it('takes policies with sources, paths and methods (methods uppercased)', () => {
    const r = parse({
      policies: [
        { name: 'shop', action: 'allow', sources: ['spiffe://cluster.local/ns/shop/sa/*'], methods: ['get'] },
        { name: 'no-admin', action: 'deny', paths: ['/admin/*', '*.php', '*'] },
      ],
    });
    expect(issues(r)).toEqual([]);
    expect(r.data!.listeners[0].stages!.authorization).toEqual({
      policies: [
        { name: 'shop', action: 'allow', sources: ['spiffe://cluster.local/ns/shop/sa/*'], methods: ['GET'] },
        { name: 'no-admin', action: 'deny', paths: ['/admin/*', '*.php', '*'] },
      ],
    });
  });

  it('refuses bad patterns, names and actions with the path of the field', () => {
    expect(
      issues(
        parse({
          policies: [
            { name: 'a b', action: 'permit', sources: ['cluster.local/ns/x'], paths: ['admin'], methods: ['G T'] },
            { name: 'empty', action: 'deny', sources: [] },
          ],
        }),
      ),
    ).toEqual([
      `${AT}.policies.0.name: letters, digits, _ . : - only`,
      `${AT}.policies.0.action: Invalid option: expected one of "allow"|"deny"`,
      `${AT}.policies.0.sources.0: a SPIFFE id pattern: spiffe://<trust-domain>/... or one starting with *`,
      `${AT}.policies.0.paths.0: a path pattern: /exact, /prefix/*, *.suffix or *`,
      `${AT}.policies.0.methods.0: an HTTP method (GET, POST, …) or *`,
      `${AT}.policies.1.sources: Too small: expected array to have >=1 items`,
    ]);
  });

  it('refuses a duplicate policy name, and default allow beside an allow policy', () => {
    expect(
      issues(
        parse({
          default: 'allow',
          policies: [
            { name: 'p', action: 'allow', methods: ['GET'] },
            { name: 'p', action: 'deny', methods: ['POST'] },
          ],
        }),
      ),
    ).toEqual([
      `${AT}.policies.1.name: duplicate policy name 'p'`,
      `${AT}.default: default allow beside allow policies would let every request through; leave default out`,
    ]);
  });

  it('refuses authorization on an outbound listener, and paths or methods on a tcp listener', () => {
    expect(issues(parse({ policies: [] }, { direction: 'outbound' }))).toEqual([
      `${AT}: authorization applies to inbound listeners only`,
    ]);
    expect(
      issues(
        parse(
          { policies: [{ name: 'p', action: 'allow', sources: ['*'], paths: ['/x'], methods: ['GET'] }] },
          { protocol: 'tcp', cluster: 'app', routes: [] },
        ),
      ),
    ).toEqual([
      `${AT}.policies.0.paths: a tcp listener has no requests to match paths on; only sources apply`,
      `${AT}.policies.0.methods: a tcp listener has no requests to match methods on; only sources apply`,
    ]);
  });

  it('refuses a route that sets a header the inbound proxy writes from the caller certificate', () => {
    const r = parse(undefined, {
      routes: [{ cluster: 'app', requestHeaders: { set: { 'X-Forwarded-Client-Cert': 'By=forged' } } }],
    });
    expect(issues(r)).toEqual([
      "listeners.0.routes.0.requestHeaders.set.X-Forwarded-Client-Cert: X-Forwarded-Client-Cert is written by the inbound proxy from the caller's certificate",
    ]);
  });
});
