// The mTLS fields of the config: what a listener or cluster may ask for, and the errors (with field paths) for
// the combinations that cannot work.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.ts';

const base = {
  listeners: [{ name: 'in', address: '127.0.0.1:0', direction: 'inbound', routes: [{ cluster: 'app' }] }],
  clusters: [{ name: 'app', discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:8080' }] } }],
};

function problems(input: unknown): string[] {
  try {
    parseConfig(input, 'test');
    return [];
  } catch (err) {
    return [...(err as ConfigError).problems];
  }
}

describe('mtls config', () => {
  it('defaults: listeners disabled, clusters auto, TLS 1.2+ with the seed’s suites first', () => {
    const c = parseConfig({ ...base, mtls: {} }, 'test');
    expect(c.listeners[0]!.mtls).toBe('disabled');
    expect(c.clusters[0]!.mtls).toEqual({ mode: 'auto' });
    expect(c.mtls).toMatchObject({ trustDomain: 'cluster.local', minVersion: 'TLSv1.2' });
    expect(c.mtls!.ciphers.slice(0, 2)).toEqual(['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']);
  });

  it('names the field of each impossible combination', () => {
    expect(problems({ ...base, listeners: [{ ...base.listeners[0], mtls: 'strict' }] })).toEqual([
      'listeners[0].mtls: mtls strict needs the top-level mtls block (the mesh identity)',
    ]);
    expect(
      problems({
        ...base,
        mtls: {},
        listeners: [{ ...base.listeners[0], mtls: 'permissive', tls: { certFile: 'a', keyFile: 'b' } }],
      }),
    ).toEqual([
      'listeners[0].mtls: a listener takes either tls (its own certificate) or mtls (the mesh identity), not both',
    ]);
    expect(problems({ ...base, clusters: [{ ...base.clusters[0], mtls: { mode: 'always' } }] })).toEqual([
      'clusters[0].mtls.mode: mode always needs the top-level mtls block (the mesh identity)',
    ]);
    expect(problems({ ...base, mtls: { certFile: 'a.crt' } })).toEqual([
      'mtls.keyFile: certFile and keyFile go together',
    ]);
    expect(problems({ ...base, mtls: { minVersion: 'TLSv1.1' } })[0]).toMatch(/^mtls\.minVersion: /);
    expect(problems({ ...base, mtls: { trustDomain: 'Bad Domain' } })[0]).toMatch(/^mtls\.trustDomain: /);
    expect(
      problems({ ...base, clusters: [{ ...base.clusters[0], mtls: { mode: 'always', serverIds: ['web'] } }] })[0],
    ).toMatch(/^clusters\[0\]\.mtls\.serverIds\[0\]: /);
  });
});
