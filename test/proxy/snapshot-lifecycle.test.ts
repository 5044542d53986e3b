// Compiling a config does no I/O: clusters are built without starting discovery or health checks, the server
// starts the ones a new Snapshot created just before swapping to it, and a config that fails after compiling
// (a listener that cannot bind) leaves the last good Snapshot serving without ever having started its clusters.
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { ClusterConfig, ConfigInput } from '../../src/config/schema.ts';
import { createLogger } from '../../src/log.ts';
import { Cluster } from '../../proxy/cluster.ts';
import { type RunningProxy, startEchoUpstream, startProxy, type Upstream } from '../support/proxy.ts';

/** A UDP socket standing in for a DNS server: it only counts the queries it receives (and never answers). */
async function dnsCounter(): Promise<{ address: string; queries: () => number; close: () => void }> {
  const sock = dgram.createSocket('udp4');
  let n = 0;
  sock.on('message', () => n++);
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return { address: `127.0.0.1:${sock.address().port}`, queries: () => n, close: () => sock.close() };
}

/** A TCP server that counts connections (health checks' connects). */
async function connectCounter(): Promise<{ address: string; connects: () => number; close: () => void }> {
  let n = 0;
  const server = net.createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return { address: `127.0.0.1:${port}`, connects: () => n, close: () => server.close() };
}

const log = createLogger('error', () => {});
const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
};
const settle = () => new Promise((r) => setTimeout(r, 100));

describe('compiling a config does no I/O', () => {
  let dir: string;
  let dns: Awaited<ReturnType<typeof dnsCounter>>;
  let target: Awaited<ReturnType<typeof connectCounter>>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'skein-snapshot-'));
    dns = await dnsCounter();
    target = await connectCounter();
  });
  afterAll(() => {
    dns.close();
    target.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function clusters(): ClusterConfig[] {
    const file = join(dir, 'endpoints.json');
    writeFileSync(file, JSON.stringify([{ address: target.address }]));
    const healthChecks = { type: 'tcp', intervalMs: 10, jitterPercent: 0 };
    return parseConfig({
      listeners: [{ name: 'l', address: '127.0.0.1:0', routes: [{ cluster: 'by-file' }, { cluster: 'by-dns' }] }],
      clusters: [
        { name: 'by-file', discovery: { type: 'file', path: file }, healthChecks, outlierDetection: {} },
        {
          name: 'by-dns',
          discovery: { type: 'dns', name: 'app.test', port: 80, servers: [dns.address] },
          healthChecks,
        },
      ],
    }).clusters;
  }

  it('a new Cluster starts no discovery, no health check and no timer until start()', async () => {
    const before = process.getActiveResourcesInfo().length;
    const built = clusters().map((c) => new Cluster(c, 'k', { baseDir: dir, log }));
    await settle();
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(before);
    expect(dns.queries()).toBe(0);
    expect(target.connects()).toBe(0);
    for (const c of built) {
      expect(c.started).toBe(false);
      expect(c.warmed).toBe(false);
      expect((c.describe() as { endpoints: unknown[] }).endpoints).toEqual([]);
    }

    for (const c of built) c.start();
    // The file is read, its endpoint health-checked, the DNS server asked: start() is where the I/O begins.
    await until(() => built[0].warmed && target.connects() > 0 && dns.queries() > 0);
    expect(built[0].warmed).toBe(true);
    expect(target.connects()).toBeGreaterThan(0);
    expect(dns.queries()).toBeGreaterThan(0);
    for (const c of built) c.close();
    expect(built[0].started).toBe(false);
  });

  describe('a reload that fails after compiling', () => {
    let up: Upstream;
    let proxy: RunningProxy;
    let blocker: net.Server;
    afterEach(async () => {
      await proxy?.close();
      await up?.close();
      blocker?.close();
    });

    it('starts none of the new clusters and leaves the last good Snapshot serving', async () => {
      up = await startEchoUpstream();
      const good: ConfigInput = {
        listeners: [{ name: 'main', address: '127.0.0.1:0', routes: [{ cluster: 'up' }] }],
        clusters: [{ name: 'up', discovery: { type: 'static', endpoints: [{ address: up.address }] } }],
      };
      proxy = await startProxy(good);
      const serving = proxy.proxy.snapshot;
      // A port someone else holds: the new listener cannot bind, so the whole config is rejected.
      blocker = net.createServer();
      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
      const taken = `127.0.0.1:${(blocker.address() as net.AddressInfo).port}`;
      const dnsBefore = dns.queries();
      const connectsBefore = target.connects();
      const bad = {
        listeners: [
          ...good.listeners,
          { name: 'extra', address: taken, routes: [{ cluster: 'by-file' }, { cluster: 'by-dns' }] },
        ],
        clusters: [...(good.clusters ?? []), ...clusters()],
      };
      await expect(proxy.proxy.apply(parseConfig(bad))).rejects.toThrow(/EADDRINUSE/);
      await settle();
      expect(proxy.proxy.snapshot).toBe(serving);
      expect(dns.queries()).toBe(dnsBefore);
      expect(target.connects()).toBe(connectsBefore);
      const res = await fetch(`${proxy.url()}/still`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    });
  });
});
