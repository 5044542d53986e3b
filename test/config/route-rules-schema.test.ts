// The config side of traffic rules and mirroring: what `skein config check` refuses (with the field path), the
// defaults a user gets, and `skein config schema` (the JSON Schema generated from the same zod schema) showing
// the new fields.
import { describe, expect, it } from 'vitest';
import { configJsonSchema } from '../../src/config/cli.ts';
import { ConfigError, parseConfig } from '../../src/config/load.ts';

const base = (route: Record<string, unknown>, clusters = ['web', 'web-shadow']) => ({
  listeners: [{ name: 'out', address: '127.0.0.1:15001', routes: [{ cluster: 'web', ...route }] }],
  clusters: clusters.map((name) => ({
    name,
    discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:8080' }] },
  })),
});

function problemsOf(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('expected the config to be rejected');
}

describe('route rules and mirror in the config', () => {
  it('accepts cookie, query and source-service conditions and a mirror, with percentage 100 by default', () => {
    const cfg = parseConfig(
      base({
        match: {
          cookies: [{ name: 'canary', exact: '1' }],
          queryParams: [{ name: 'beta', present: true, invert: true }],
          sourceServices: ['checkout'],
        },
        mirror: { cluster: 'web-shadow' },
      }),
    );
    const route = cfg.listeners[0].routes[0];
    expect(route.match.cookies).toEqual([{ name: 'canary', exact: '1', invert: false }]);
    expect(route.match.queryParams).toEqual([{ name: 'beta', present: true, invert: true }]);
    expect(route.mirror).toEqual({ cluster: 'web-shadow', percentage: 100 });
  });

  it('refuses a mirror to an unknown cluster, naming the field', () => {
    expect(problemsOf(base({ mirror: { cluster: 'nope' } }))).toEqual([
      "listeners[0].routes[0].mirror.cluster: unknown cluster 'nope'",
    ]);
  });

  it('refuses a percentage outside 0–100 and a condition with two value tests', () => {
    expect(problemsOf(base({ mirror: { cluster: 'web-shadow', percentage: 150 } }))[0]).toMatch(
      /^listeners\[0\]\.routes\[0\]\.mirror\.percentage: /,
    );
    expect(problemsOf(base({ match: { queryParams: [{ name: 'a', exact: 'x', regex: 'x' }] } }))).toEqual([
      'listeners[0].routes[0].match.queryParams[0]: use at most one of exact, prefix, regex, present',
    ]);
    expect(problemsOf(base({ match: { sourceServices: [] } }))[0]).toMatch(
      /^listeners\[0\]\.routes\[0\]\.match\.sourceServices: /,
    );
  });

  it('shows the new fields in `skein config schema`', () => {
    const text = JSON.stringify(configJsonSchema());
    for (const field of ['"cookies"', '"queryParams"', '"sourceServices"', '"mirror"', '"percentage"'])
      expect(text).toContain(field);
  });
});
