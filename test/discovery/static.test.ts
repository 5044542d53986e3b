import { describe, expect, it } from 'vitest';
import { Discovery } from '../../src/config/schema.ts';
import { createStaticSource, type StaticDiscoveryConfig } from '../../src/discovery/static.ts';
import { recordDiscovery } from '../support/discovery-recorder.ts';

function staticConfig(input: unknown): StaticDiscoveryConfig {
  const config = Discovery.parse(input);
  if (config.type !== 'static') throw new Error('expected a static config');
  return config;
}

describe('static discovery', () => {
  it('emits the configured endpoints once, within start(), with defaults applied', () => {
    const source = createStaticSource(
      staticConfig({
        type: 'static',
        endpoints: [{ address: '10.0.0.1:8080' }, { address: '[::1]:9090', weight: 3, labels: { zone: 'b' } }],
      }),
    );
    const events = recordDiscovery();
    source.start(events);
    // No await: the list must already be there when start() returns.
    expect(events.lists).toEqual([
      [
        { host: '10.0.0.1', port: 8080, weight: 1, labels: {} },
        { host: '::1', port: 9090, weight: 3, labels: { zone: 'b' } },
      ],
    ]);
    expect(events.errors).toEqual([]);
    source.close();
  });

  it('emits nothing when closed before start()', () => {
    const source = createStaticSource(staticConfig({ type: 'static', endpoints: [{ address: 'a:1' }] }));
    source.close();
    const events = recordDiscovery();
    source.start(events);
    expect(events.lists).toEqual([]);
  });
});
