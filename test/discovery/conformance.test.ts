// The cases every discovery source must pass, whatever it reads from: one suite run against each source.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Discovery } from '../../src/config/schema.ts';
import { createDiscoverySource } from '../../src/discovery/registry.ts';
import type { DiscoverySource } from '../../src/discovery/types.ts';
import { recordDiscovery } from '../support/discovery-recorder.ts';
import { startDnsServer } from '../support/dns-server.ts';
import { sleep, waitFor } from '../support/wait-for.ts';

interface Fixture {
  source: DiscoverySource;
  /** What the first list must be, as "host:port/weight". */
  expected: string[];
  /** Changes what the source reads, so a live source would emit again soon (within ~100 ms). */
  change(): Promise<void>;
  cleanup(): Promise<void>;
}

const cases: [string, () => Promise<Fixture>][] = [
  [
    'static',
    async () => ({
      source: createDiscoverySource(Discovery.parse({ type: 'static', endpoints: [{ address: '10.0.0.1:80' }] })),
      expected: ['10.0.0.1:80/1'],
      change: async () => {},
      cleanup: async () => {},
    }),
  ],
  [
    'file',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'skein-conformance-'));
      await writeFile(join(dir, 'eps.yaml'), '- address: 10.0.0.1:80\n');
      return {
        source: createDiscoverySource({ type: 'file', path: 'eps.yaml' }, { baseDir: dir }),
        expected: ['10.0.0.1:80/1'],
        change: () => writeFile(join(dir, 'eps.yaml'), '- address: 10.0.0.2:80\n'),
        cleanup: () => rm(dir, { recursive: true, force: true }),
      };
    },
  ],
  [
    'dns',
    async () => {
      const server = await startDnsServer();
      server.setRecords('api.test', [{ type: 'A', address: '10.0.0.1', ttlS: 0 }]);
      const config = { type: 'dns', name: 'api.test', port: 80, minRefreshMs: 20, servers: [server.address] };
      return {
        source: createDiscoverySource(Discovery.parse(config)),
        expected: ['10.0.0.1:80/1'],
        change: async () => server.setRecords('api.test', [{ type: 'A', address: '10.0.0.2', ttlS: 0 }]),
        cleanup: () => server.close(),
      };
    },
  ],
];

describe.each(cases)('discovery source conformance: %s', (_name, setUp) => {
  let fixture: Fixture | undefined;

  afterEach(async () => {
    fixture?.source.close();
    await fixture?.cleanup();
    fixture = undefined;
  });

  it('reports the complete list after start()', async () => {
    fixture = await setUp();
    const events = recordDiscovery();
    fixture.source.start(events);
    expect(await waitFor(() => events.latest())).toEqual(fixture.expected);
    expect(events.errors).toEqual([]);
  });

  it('throws when started twice', async () => {
    fixture = await setUp();
    fixture.source.start(recordDiscovery());
    expect(() => fixture?.source.start(recordDiscovery())).toThrow(/already started/);
  });

  it('reports nothing after close(), and close() twice is harmless', async () => {
    fixture = await setUp();
    const events = recordDiscovery();
    fixture.source.start(events);
    await waitFor(() => events.latest());
    fixture.source.close();
    fixture.source.close();
    await fixture.change();
    await sleep(250); // a live source would have emitted the change well within this
    expect(events.lists).toHaveLength(1);
    expect(events.errors).toEqual([]);
  });
});
