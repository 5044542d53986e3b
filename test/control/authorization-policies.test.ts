// Control's authorization policies: the /v1/authorization-policies collection (validated with field paths, in
// the audit log), the overlay of the destination service's proxies, the overlay hash of proxies without
// policies unchanged, and the merge into a proxy's inbound HTTP listeners.
import { mkdtempSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlServer, startControl } from '../../control/server.ts';
import { canonicalJson } from '../../src/config/compile.ts';
import { ConfigError } from '../../src/config/load.ts';
import { applyOverlay, Overlay, overlayHash } from '../../src/config/overlay.ts';
import { Config } from '../../src/config/schema.ts';
import { api, useToken } from '../support/control.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'skein-authz-control-'));
let control: ControlServer;

beforeAll(async () => {
  control = await startControl({ host: '127.0.0.1', port: 0, dataDir, retentionDays: 30, log: () => {} });
  useToken(control.url, control.token.token);
});

afterAll(async () => {
  await control.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const POLICIES = '/v1/authorization-policies';

describe('control authorization policies', () => {
  it('creates, reads with an ETag, replaces, lists and deletes a policy, each write in the audit log', async () => {
    const policy = {
      id: 'shop-reads',
      service: 'payments',
      action: 'allow',
      sources: ['spiffe://cluster.local/ns/shop/sa/*'],
      methods: ['get'],
    };
    const created = await api(control.url, 'POST', POLICIES, policy);
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ ...policy, methods: ['GET'] });
    expect((await api(control.url, 'POST', POLICIES, policy)).status).toBe(409);
    const one = await fetch(`${control.url}${POLICIES}/shop-reads`);
    expect(one.headers.get('etag')).toBe('"1"');
    const replaced = await api(control.url, 'PUT', `${POLICIES}/shop-reads`, { ...policy, paths: ['/v1/*'] });
    expect(replaced.status).toBe(200);
    expect((await api(control.url, 'GET', POLICIES)).body).toEqual([{ ...policy, methods: ['GET'], paths: ['/v1/*'] }]);
    const stale = await fetch(`${control.url}${POLICIES}/shop-reads`, {
      method: 'PUT',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${control.token.token}`,
        'if-match': '"1"',
      },
      body: JSON.stringify(policy),
    });
    expect(stale.status).toBe(409);
    expect((await api(control.url, 'DELETE', `${POLICIES}/shop-reads`)).status).toBe(200);
    expect((await api(control.url, 'GET', `${POLICIES}/shop-reads`)).status).toBe(404);
    const audit = (await api<{ kind: string; action: string; objectId: string }[]>(control.url, 'GET', '/v1/audit'))
      .body;
    expect(audit.slice(0, 3).map((e) => `${e.kind} ${e.action} ${e.objectId}`)).toEqual([
      'authorization-policy delete shop-reads',
      'authorization-policy replace shop-reads',
      'authorization-policy create shop-reads',
    ]);
  });

  it('refuses a bad policy with the path of each field, and writes without the token', async () => {
    const bad = await api<{ error: { problems: string[] } }>(control.url, 'POST', POLICIES, {
      id: '-x',
      service: 'pay ments',
      action: 'permit',
      sources: ['cluster.local/ns/x'],
      paths: ['admin'],
      methods: [],
      extra: 1,
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.problems).toEqual([
      'id: letters, digits, . _ - only (up to 128), starting with a letter or digit',
      'service: letters, digits, _ . - only',
      'action: Invalid option: expected one of "allow"|"deny"',
      'sources[0]: a SPIFFE id pattern: spiffe://<trust-domain>/... or one starting with *',
      'paths[0]: a path pattern: /exact, /prefix/*, *.suffix or *',
      'methods: Too small: expected array to have >=1 items',
      '(root): Unrecognized key: "extra"',
    ]);
    const mismatch = await api<{ error: { problems: string[] } }>(control.url, 'PUT', `${POLICIES}/a`, {
      id: 'b',
      service: 's',
      action: 'deny',
    });
    expect(mismatch.body.error.problems).toEqual(["id: 'b' differs from the path's 'a'"]);
    expect(
      (await api(control.url, 'POST', POLICIES, { id: 'x', service: 's', action: 'deny' }, { token: null })).status,
    ).toBe(401);
  });

  it("puts a service's policies in its proxies' overlay only, and leaves other overlays as they were", async () => {
    const before = (await api<Overlay>(control.url, 'GET', '/v1/config?service=frontend')).body;
    expect(before).not.toHaveProperty('authorization');
    await api(control.url, 'POST', POLICIES, {
      id: 'b-no-admin',
      service: 'payments',
      action: 'deny',
      paths: ['/admin/*'],
    });
    await api(control.url, 'POST', POLICIES, {
      id: 'a-shop',
      service: 'payments',
      action: 'allow',
      sources: ['*/ns/shop/*'],
    });
    await api(control.url, 'POST', POLICIES, { id: 'other', service: 'orders', action: 'deny', methods: ['DELETE'] });
    const payments = (await api<Overlay>(control.url, 'GET', '/v1/config?service=payments')).body;
    expect(payments.authorization).toEqual([
      { name: 'control:a-shop', action: 'allow', sources: ['*/ns/shop/*'] },
      { name: 'control:b-no-admin', action: 'deny', paths: ['/admin/*'] },
    ]);
    const frontend = (await api<Overlay>(control.url, 'GET', '/v1/config?service=frontend')).body;
    expect(frontend).not.toHaveProperty('authorization');
    expect(overlayHash(frontend)).toBe(overlayHash(before));
  });
});

describe('overlays with authorization policies', () => {
  it('hash as before when they carry none', () => {
    const routes = [{ name: 'r', cluster: 'c' }];
    const old = createHash('sha256')
      .update(canonicalJson({ routes, clusters: [] }))
      .digest('hex');
    expect(overlayHash({ routes, clusters: [] })).toBe(old);
    expect(overlayHash({ routes, clusters: [], authorization: [] })).toBe(old);
    expect(overlayHash({ routes, clusters: [], authorization: [{ name: 'x', action: 'deny' }] })).not.toBe(old);
  });

  const base = Config.parse({
    service: 'payments',
    listeners: [
      { name: 'out', address: '127.0.0.1:0', routes: [{ cluster: 'app' }] },
      {
        name: 'in',
        address: '127.0.0.1:0',
        direction: 'inbound',
        routes: [{ cluster: 'app' }],
        stages: { authorization: { policies: [{ name: 'own', action: 'deny', methods: ['TRACE'] }] } },
      },
      { name: 'in2', address: '127.0.0.1:0', direction: 'inbound', routes: [{ cluster: 'app' }] },
      { name: 'tcp', address: '127.0.0.1:0', direction: 'inbound', protocol: 'tcp', cluster: 'app' },
    ],
    clusters: [{ name: 'app', discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:1' }] } }],
  });

  it("add the policies after each inbound HTTP listener's own", () => {
    const policy = { name: 'control:shop', action: 'allow', sources: ['*/ns/shop/*'] };
    const merged = applyOverlay(base, { version: 3, routes: [], clusters: [], authorization: [policy] });
    const byName = new Map(merged.listeners.map((l) => [l.name, l.stages?.authorization]));
    expect(byName.get('in')).toEqual({ policies: [{ name: 'own', action: 'deny', methods: ['TRACE'] }, policy] });
    expect(byName.get('in2')).toEqual({ policies: [policy] });
    expect(byName.get('out')).toBeUndefined();
    expect(byName.get('tcp')).toBeUndefined();
  });

  it('are refused whole, with the field path, when a policy does not fit the listener', () => {
    const bad = {
      version: 3,
      routes: [],
      clusters: [],
      authorization: [{ name: 'own', action: 'deny', paths: ['x'] }],
    };
    let err: unknown;
    try {
      applyOverlay(base, bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      'listeners[1].stages.authorization.policies[1].paths[0]: a path pattern: /exact, /prefix/*, *.suffix or *',
      "listeners[1].stages.authorization.policies[1].name: duplicate policy name 'own'",
      'listeners[2].stages.authorization.policies[0].paths[0]: a path pattern: /exact, /prefix/*, *.suffix or *',
    ]);
  });
});
