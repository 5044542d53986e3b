import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, parseConfig, parseConfigText } from '../../src/config/load.ts';

const minimal = {
  listeners: [{ name: 'out', address: '127.0.0.1:15001', routes: [{ cluster: 'web' }] }],
  clusters: [{ name: 'web', discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:8080' }] } }],
};

function problemsOf(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('expected the config to be rejected');
}

describe('config validation', () => {
  it('applies documented defaults to a minimal config', () => {
    const cfg = parseConfig(minimal);
    expect(cfg.listeners[0].direction).toBe('outbound');
    expect(cfg.listeners[0].maxHeaderBytes).toBe(16 * 1024);
    expect(cfg.clusters[0].lb.policy).toBe('round-robin');
    expect(cfg.clusters[0].timeouts).toEqual({ connectMs: 1000, requestMs: 15000, idleMs: 4000 });
    expect(cfg.clusters[0].discovery).toMatchObject({ endpoints: [{ address: '127.0.0.1:8080', weight: 1 }] });
  });

  it('names the field path of an invalid header regex', () => {
    const raw = structuredClone(minimal) as Record<string, unknown> & typeof minimal;
    (raw.listeners[0].routes[0] as Record<string, unknown>).match = { headers: [{ name: 'x-v', regex: '([a-z' }] };
    expect(problemsOf(raw)).toEqual(['listeners[0].routes[0].match.headers[0].regex: invalid regular expression']);
  });

  it('rejects a route that would set a connection field or one the proxy writes, naming each', () => {
    const raw = structuredClone(minimal) as Record<string, unknown> & typeof minimal;
    (raw.listeners[0].routes[0] as Record<string, unknown>).requestHeaders = {
      set: { Upgrade: 'h2c', 'content-length': '5', 'x-route': 'ok' },
    };
    expect(problemsOf(raw)).toEqual([
      'listeners[0].routes[0].requestHeaders.set.Upgrade: Upgrade describes one connection: the proxy never forwards it',
      'listeners[0].routes[0].requestHeaders.set.content-length: content-length is written by the proxy from the request itself',
    ]);
  });

  it('rejects duplicate cluster names', () => {
    const raw = structuredClone(minimal);
    raw.clusters.push(structuredClone(raw.clusters[0]));
    expect(problemsOf(raw)).toEqual(["clusters[1].name: duplicate cluster name 'web'"]);
  });

  it('rejects a route pointing at an unknown cluster, naming where', () => {
    const raw = structuredClone(minimal);
    raw.listeners[0].routes[0].cluster = 'nope';
    expect(problemsOf(raw)).toEqual(["listeners[0].routes[0].cluster: unknown cluster 'nope'"]);
  });

  it('rejects an address without a port with one clear message', () => {
    const raw = structuredClone(minimal);
    raw.clusters[0].discovery.endpoints[0].address = '127.0.0.1';
    expect(problemsOf(raw)).toEqual([
      'clusters[0].discovery.endpoints[0].address: expected host:port, e.g. 127.0.0.1:8080 or [::1]:8080',
    ]);
  });

  it('rejects unknown fields instead of ignoring a typo', () => {
    const raw = structuredClone(minimal) as unknown as { clusters: Record<string, unknown>[] };
    raw.clusters[0].timeout = { connectMs: 5 };
    expect(problemsOf(raw)[0]).toMatch(/^clusters\[0\]: Unrecognized key/);
  });

  it('requires a hash source for consistent-hash', () => {
    const raw = structuredClone(minimal) as unknown as { clusters: Record<string, unknown>[] };
    raw.clusters[0].lb = { policy: 'consistent-hash' };
    expect(problemsOf(raw)).toEqual([
      'clusters[0].lb.hash: consistent-hash needs hash: { header | cookie | sourceIp }',
    ]);
  });

  it('reports every problem at once, not just the first', () => {
    const raw = structuredClone(minimal) as unknown as {
      listeners: Record<string, unknown>[];
      clusters: Record<string, unknown>[];
    };
    raw.listeners[0].address = 'nowhere';
    raw.clusters[0].maxIdlePerEndpoint = -1;
    const problems = problemsOf(raw);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^listeners\[0\]\.address: expected host:port/);
    expect(problems[1]).toMatch(/^clusters\[0\]\.maxIdlePerEndpoint: /);
  });

  it('rejects two listeners on the same address, naming the second and the first', () => {
    const raw = structuredClone(minimal);
    raw.listeners.push({ name: 'out2', address: '127.0.0.1:15001', routes: [{ cluster: 'web' }] });
    expect(problemsOf(raw)).toEqual(["listeners[1].address: 127.0.0.1:15001 is already used by listeners[0] ('out')"]);
  });

  it('rejects an admin address a listener already uses', () => {
    const raw = { ...structuredClone(minimal), admin: { address: '127.0.0.1:15001' } };
    expect(problemsOf(raw)).toEqual(["admin.address: 127.0.0.1:15001 is already used by listeners[0] ('out')"]);
  });

  it.each([
    ['0.0.0.0:15001', '127.0.0.1:15001'],
    ['127.0.0.1:15001', '[::]:15001'],
    ['[::]:15001', '0.0.0.0:15001'],
  ])('rejects %s beside %s: a wildcard address takes the port on every interface', (first, second) => {
    const raw = structuredClone(minimal);
    raw.listeners[0].address = first;
    raw.listeners.push({ name: 'out2', address: second, routes: [{ cluster: 'web' }] });
    expect(problemsOf(raw)).toEqual([
      `listeners[1].address: ${second} conflicts with ${first} of listeners[0] ('out') (a wildcard address takes the port on every interface)`,
    ]);
  });

  it('accepts port 0 twice, the same port on two specific addresses, and different ports', () => {
    const raw = structuredClone(minimal);
    raw.listeners[0].address = '127.0.0.1:0';
    raw.listeners.push(
      { name: 'b', address: '127.0.0.1:0', routes: [{ cluster: 'web' }] },
      { name: 'c', address: '127.0.0.2:15002', routes: [{ cluster: 'web' }] },
      { name: 'd', address: '[::1]:15002', routes: [{ cluster: 'web' }] },
      { name: 'e', address: '0.0.0.0:15003', routes: [{ cluster: 'web' }] },
    );
    expect(() => parseConfig({ ...raw, admin: { address: '0.0.0.0:0' } })).not.toThrow();
  });

  it('reports YAML syntax errors with a position', () => {
    expect(() => parseConfigText('listeners: [\n  - name: x\n', 'bad.yaml')).toThrow(
      /bad\.yaml: invalid configuration:\n {2}\(syntax\): .*line/s,
    );
  });
});

describe('config files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skein-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads YAML and JSON alike', () => {
    writeFileSync(join(dir, 'a.json'), JSON.stringify(minimal));
    writeFileSync(
      join(dir, 'a.yaml'),
      'listeners:\n  - name: out\n    address: 127.0.0.1:15001\n    routes: [{ cluster: web }]\nclusters:\n  - name: web\n    discovery: { type: static, endpoints: [{ address: 127.0.0.1:8080 }] }\n',
    );
    expect(loadConfigFile(join(dir, 'a.yaml'))).toEqual(loadConfigFile(join(dir, 'a.json')));
  });

  it('names the file when it cannot be read', () => {
    expect(() => loadConfigFile(join(dir, 'missing.yaml'))).toThrow(
      /missing\.yaml: invalid configuration:\n {2}\(file\): ENOENT/,
    );
  });
});
