// The mirror stage's pieces that need no sockets: the shadow's Host/authority, and that a listener whose routes
// mirror nothing gets no mirror stage at all (its requests pay nothing for the feature).
import { describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../../src/config/compile.ts';
import { parseConfig } from '../../../src/config/load.ts';
import { mirrorStage, shadowAuthority } from '../../../proxy/stages/mirror.ts';
import type { Cluster } from '../../../proxy/cluster.ts';
import type { StageState } from '../../../proxy/stages/state.ts';

describe('shadowAuthority', () => {
  it('puts -shadow before the port, as Envoy does', () => {
    expect(shadowAuthority('api.internal:8080')).toBe('api.internal-shadow:8080');
    expect(shadowAuthority('api')).toBe('api-shadow');
    expect(shadowAuthority('[::1]:8080')).toBe('[::1]-shadow:8080');
    expect(shadowAuthority('[::1]')).toBe('[::1]-shadow');
  });
});

describe('mirror stage', () => {
  const build = (routes: unknown[]) => {
    const config = parseConfig({
      listeners: [{ name: 'out', address: '127.0.0.1:0', routes }],
      clusters: ['a', 'b'].map((name) => ({
        name,
        discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:1' }] },
      })),
    });
    const snapshot = compileSnapshot(config, 1, (c) => ({ name: c.name }) as unknown as Cluster);
    return mirrorStage.create({
      listener: snapshot.listeners.get('out')!,
      direction: 'outbound',
      protocol: 'http',
      config: undefined,
      state: {} as StageState,
    });
  };

  it('is left out of a listener whose routes mirror nothing', () => {
    expect(build([{ cluster: 'a' }, { match: { path: '/x' }, cluster: 'b' }])).toBeNull();
  });

  it('is built where any route mirrors', () => {
    expect(build([{ cluster: 'a' }, { cluster: 'a', mirror: { cluster: 'b', percentage: 5 } }])?.name).toBe('mirror');
  });
});
