import { describe, expect, it } from 'vitest';
import { canonicalJson, compileSnapshot, configHash } from '../../src/config/compile.ts';
import { parseConfig } from '../../src/config/load.ts';

const config = parseConfig({
  listeners: [
    { name: 'http', address: '127.0.0.1:0', routes: [{ cluster: 'a' }] },
    { name: 'db', address: '127.0.0.1:0', protocol: 'tcp', cluster: 'b' },
  ],
  clusters: [
    { name: 'a', discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:1' }] } },
    { name: 'b', discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:2' }] } },
  ],
});

describe('compileSnapshot', () => {
  it('creates each cluster once and wires listeners to the same objects', () => {
    const made: string[] = [];
    const snap = compileSnapshot(config, 7, (c) => {
      made.push(c.name);
      return { name: c.name };
    });
    expect(made).toEqual(['a', 'b']);
    expect(snap.version).toBe(7);
    expect(snap.listeners.get('http')!.routes.routes[0].clusters[0]).toBe(snap.clusters.get('a'));
    expect(snap.listeners.get('db')!.tcpCluster).toBe(snap.clusters.get('b'));
  });

  it('produces a frozen snapshot that a reload replaces rather than mutates', () => {
    const snap = compileSnapshot(config, 1, (c) => c.name);
    expect(Object.isFrozen(snap)).toBe(true);
    expect(Object.isFrozen(snap.listeners.get('http'))).toBe(true);
  });
});

describe('the Snapshot as control will push it', () => {
  const input = {
    service: 'web',
    listeners: [{ name: 'http', address: '127.0.0.1:0', routes: [{ cluster: 'a', match: { pathPrefix: '/api' } }] }],
    clusters: [{ name: 'a', discovery: { type: 'static' as const, endpoints: [{ address: '127.0.0.1:1' }] } }],
  };

  it('is rebuilt from its config JSON alone, with the same hash', () => {
    const snap = compileSnapshot(parseConfig(input), 1, (c) => c.name);
    expect(snap.hash).toMatch(/^[0-9a-f]{64}$/);
    const again = compileSnapshot(parseConfig(JSON.parse(JSON.stringify(snap.config))), 2, (c) => c.name);
    expect(again.config).toEqual(snap.config);
    expect(again.hash).toBe(snap.hash);
    expect(again.version).toBe(2);
    expect([...again.listeners.keys()]).toEqual([...snap.listeners.keys()]);
  });

  it('hashes content, not key order: equal configs match, a changed field does not', () => {
    const reordered = {
      clusters: [{ discovery: { endpoints: [{ address: '127.0.0.1:1' }], type: 'static' as const }, name: 'a' }],
      listeners: [{ routes: [{ match: { pathPrefix: '/api' }, cluster: 'a' }], address: '127.0.0.1:0', name: 'http' }],
      service: 'web',
    };
    expect(configHash(parseConfig(reordered))).toBe(configHash(parseConfig(input)));
    const changed = structuredClone(input);
    changed.listeners[0].routes[0].match.pathPrefix = '/apis';
    expect(configHash(parseConfig(changed))).not.toBe(configHash(parseConfig(input)));
    const timeout = { ...input, drainTimeoutMs: 1234 };
    expect(configHash(parseConfig(timeout))).not.toBe(configHash(parseConfig(input)));
  });

  it('writes canonical JSON with keys sorted at every depth, arrays in order, undefined left out', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: undefined, x: 0 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[2,{"x":0,"z":1}]},"b":1}',
    );
  });
});
