import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Discovery, type DiscoveryConfig } from '../../src/config/schema.ts';
import { createDiscoverySource, registerDiscoverySource } from '../../src/discovery/registry.ts';
import type { DiscoverySource } from '../../src/discovery/types.ts';
import { recordDiscovery } from '../support/discovery-recorder.ts';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.ts';
import { waitFor } from '../support/wait-for.ts';

describe('discovery registry', () => {
  const cleanups: (() => Promise<void> | void)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function firstList(config: DiscoveryConfig, baseDir?: string): Promise<string[]> {
    const source: DiscoverySource = createDiscoverySource(config, { baseDir });
    cleanups.push(() => source.close());
    const events = recordDiscovery();
    source.start(events);
    return waitFor(() => events.latest());
  }

  it('rejects an unknown type, listing the registered ones', () => {
    const config = { type: 'consul', service: 'api' } as unknown as DiscoveryConfig;
    expect(() => createDiscoverySource(config)).toThrow(
      "unknown discovery type 'consul' (registered: static, file, dns, original-dst)",
    );
  });

  it('refuses to register a type twice', () => {
    expect(() => registerDiscoverySource('static', () => ({ start() {}, close() {} }))).toThrow(
      "discovery source 'static' is already registered",
    );
  });

  it('creates a static source', async () => {
    const config = Discovery.parse({ type: 'static', endpoints: [{ address: '10.0.0.1:80' }] });
    expect(await firstList(config)).toEqual(['10.0.0.1:80/1']);
  });

  it('creates a file source whose relative path resolves against baseDir', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'skein-registry-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'eps.yaml'), '- address: 10.0.0.2:80\n');
    expect(await firstList({ type: 'file', path: 'eps.yaml' }, dir)).toEqual(['10.0.0.2:80/1']);
  });

  it('creates a dns source', async () => {
    const server: TestDnsServer = await startDnsServer();
    cleanups.push(() => server.close());
    server.setRecords('api.test', [{ type: 'A', address: '10.0.0.3', ttlS: 1 }]);
    const config = Discovery.parse({ type: 'dns', name: 'api.test', port: 80, servers: [server.address] });
    expect(await firstList(config)).toEqual(['10.0.0.3:80/1']);
  });
});
