import { describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../src/config/compile.ts';
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
