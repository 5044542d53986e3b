import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Discovery } from '../../src/config/schema.ts';
import { addressLookupFor, createDnsSource, type DnsDiscoveryConfig, refreshDelayMs } from '../../src/discovery/dns.ts';
import type { DiscoverySource } from '../../src/discovery/types.ts';
import { type DiscoveryRecorder, recordDiscovery } from '../support/discovery-recorder.ts';
import { type DnsRecord, startDnsServer, type TestDnsServer } from '../support/dns-server.ts';
import { sleep, waitFor } from '../support/wait-for.ts';

const a = (address: string, ttlS = 1): DnsRecord => ({ type: 'A', address, ttlS });

describe('dns discovery', () => {
  let server: TestDnsServer;
  let sources: DiscoverySource[];

  beforeEach(async () => {
    server = await startDnsServer();
    sources = [];
  });

  afterEach(async () => {
    for (const source of sources) source.close();
    await server.close();
  });

  function dnsConfig(input: Record<string, unknown>): DnsDiscoveryConfig {
    const config = Discovery.parse({ type: 'dns', servers: [server.address], minRefreshMs: 100, ...input });
    if (config.type !== 'dns') throw new Error('expected a dns config');
    return config;
  }

  function start(input: Record<string, unknown>): DiscoveryRecorder {
    const source = createDnsSource(dnsConfig(input));
    sources.push(source);
    const events = recordDiscovery();
    source.start(events);
    return events;
  }

  it('turns A records into endpoints on the configured port', async () => {
    server.setRecords('api.test', [a('10.0.0.2'), a('10.0.0.1')]);
    const events = start({ name: 'api.test', port: 8080 });
    await waitFor(() => events.latest());
    expect(events.lists[0]).toEqual([
      { host: '10.0.0.1', port: 8080, weight: 1, labels: {} },
      { host: '10.0.0.2', port: 8080, weight: 1, labels: {} },
    ]);
    expect(events.errors).toEqual([]);
  });

  it('turns AAAA records into endpoints', async () => {
    server.setRecords('api.test', [{ type: 'AAAA', address: 'fd00::1', ttlS: 1 }, a('10.0.0.1')]);
    const events = start({ name: 'api.test', port: 8080, recordType: 'AAAA' });
    await waitFor(() => events.latest());
    expect(events.latest()).toEqual(['[fd00::1]:8080/1']);
  });

  it('re-resolves when the TTL runs out and emits the changed answer', async () => {
    server.setRecords('api.test', [a('10.0.0.1', 1)]);
    const events = start({ name: 'api.test', port: 80, minRefreshMs: 100 });
    await waitFor(() => events.latest());
    server.setRecords('api.test', [a('10.0.0.1', 1), a('10.0.0.2', 1)]);
    const changedAtMs = Date.now();
    await waitFor(() => events.lists.length === 2, 3_000);
    // The 1 s TTL, not the 100 ms minimum, decided when to ask again.
    expect(Date.now() - changedAtMs).toBeGreaterThanOrEqual(900);
    expect(server.queryCount('api.test', 'A')).toBe(2);
    expect(events.latest()).toEqual(['10.0.0.1:80/1', '10.0.0.2:80/1']);
  });

  it('caps a long TTL at maxRefreshMs', async () => {
    server.setRecords('api.test', [a('10.0.0.1', 3600)]);
    const events = start({ name: 'api.test', port: 80, minRefreshMs: 50, maxRefreshMs: 150 });
    await waitFor(() => events.latest());
    server.setRecords('api.test', [a('10.0.0.7', 3600)]);
    await waitFor(() => events.latest()?.[0] === '10.0.0.7:80/1', 2_000);
  });

  it('does not re-emit an unchanged answer, even when the server rotates its order', async () => {
    server.setRecords('api.test', [a('10.0.0.1', 0), a('10.0.0.2', 0)]);
    const events = start({ name: 'api.test', port: 80, minRefreshMs: 50 });
    await waitFor(() => events.latest());
    server.setRecords('api.test', [a('10.0.0.2', 0), a('10.0.0.1', 0)]);
    const asked = server.queryCount('api.test');
    await waitFor(() => server.queryCount('api.test') >= asked + 3);
    expect(events.lists).toHaveLength(1);
  });

  it('resolves SRV targets to addresses, with ports and weights from the SRV records', async () => {
    server.setRecords('_http._tcp.svc.test', [
      { type: 'SRV', priority: 10, weight: 5, port: 9001, target: 'a.svc.test', ttlS: 1 },
      { type: 'SRV', priority: 10, weight: 0, port: 9002, target: 'b.svc.test', ttlS: 1 },
      // A higher priority value is a backup (RFC 2782), not part of the set in use.
      { type: 'SRV', priority: 20, weight: 1, port: 9003, target: 'c.svc.test', ttlS: 1 },
    ]);
    server.setRecords('a.svc.test', [a('10.0.1.1'), a('10.0.1.2')]);
    server.setRecords('b.svc.test', [a('10.0.2.1')]);
    server.setRecords('c.svc.test', [a('10.0.3.1')]);
    const events = start({ name: '_http._tcp.svc.test', recordType: 'SRV' });
    await waitFor(() => events.latest());
    // SRV weight 0 becomes 1: every endpoint must be pickable.
    expect(events.latest()).toEqual(['10.0.1.1:9001/5', '10.0.1.2:9001/5', '10.0.2.1:9002/1']);
    expect(server.queryCount('c.svc.test')).toBe(0);
  });

  it('keeps a failing SRV target at its last addresses while the others update', async () => {
    server.setRecords('_http._tcp.svc.test', [
      { type: 'SRV', priority: 0, weight: 1, port: 9001, target: 'a.svc.test', ttlS: 1 },
      { type: 'SRV', priority: 0, weight: 1, port: 9002, target: 'b.svc.test', ttlS: 1 },
    ]);
    server.setRecords('a.svc.test', [a('10.0.1.1')]);
    server.setRecords('b.svc.test', [a('10.0.2.1')]);
    const events = start({ name: '_http._tcp.svc.test', recordType: 'SRV', minRefreshMs: 50 });
    await waitFor(() => events.latest());
    server.setError('b.svc.test', 'SERVFAIL');
    server.setRecords('a.svc.test', [a('10.0.1.9')]);
    await waitFor(() => events.latest()?.[0] === '10.0.1.9:9001/1');
    expect(events.latest()).toEqual(['10.0.1.9:9001/1', '10.0.2.1:9002/1']);
    expect(events.errors[0].message).toMatch(/A lookup of 'b\.svc\.test' failed: server failure \(SERVFAIL\)/);
  });

  it.each([
    ['SERVFAIL', /A lookup of 'api\.test' failed: server failure \(SERVFAIL\)/],
    ['NXDOMAIN', /A lookup of 'api\.test' failed: no such name \(NXDOMAIN\)/],
  ] as const)('on %s reports onError, keeps the previous endpoints, retries and recovers', async (rcode, message) => {
    server.setRecords('api.test', [a('10.0.0.1', 0)]);
    const events = start({ name: 'api.test', port: 80, minRefreshMs: 50 });
    await waitFor(() => events.latest());

    server.setError('api.test', rcode);
    await waitFor(() => events.errors.length >= 2); // a second error: it retried after minRefreshMs
    expect(events.errors[0].message).toMatch(message);
    expect(events.lists).toHaveLength(1);

    server.setRecords('api.test', [a('10.0.0.2', 0)]);
    await waitFor(() => events.latest()?.[0] === '10.0.0.2:80/1');
    expect(events.lists).toHaveLength(2);
  });

  it('reports a name with no records and emits nothing until it has some', async () => {
    server.setRecords('api.test', []);
    const events = start({ name: 'api.test', port: 80, minRefreshMs: 50 });
    const err = await waitFor(() => events.errors[0]);
    expect(err.message).toMatch(/no records of that type/);
    expect(events.lists).toEqual([]);
    server.setRecords('api.test', [a('10.0.0.1')]);
    await waitFor(() => events.latest());
  });

  it('stays silent after close() while a query is in flight', async () => {
    server.setRecords('api.test', [a('10.0.0.1')]);
    server.setReplyDelayMs(200);
    const source = createDnsSource(dnsConfig({ name: 'api.test', port: 80 }));
    const events = recordDiscovery();
    source.start(events);
    await waitFor(() => server.queryCount('api.test') === 1);
    source.close();
    await sleep(300); // past the delayed reply
    expect(events.lists).toEqual([]);
    expect(events.errors).toEqual([]);
  });

  it('asks the configured servers, not /etc/hosts, when servers is set', async () => {
    const events = start({ name: 'localhost', port: 80, minRefreshMs: 50 });
    const err = await waitFor(() => events.errors[0]);
    expect(err.message).toMatch(/A lookup of 'localhost' failed: no such name \(NXDOMAIN\)/);
    expect(server.queryCount('localhost', 'A')).toBeGreaterThanOrEqual(1);
    expect(events.lists).toEqual([]);
  });

  it('rejects an A or AAAA config without a port, and bad servers', () => {
    expect(() => createDnsSource(dnsConfig({ name: 'api.test' }))).toThrow(
      "dns discovery of A records for 'api.test' needs a port",
    );
    expect(() => createDnsSource(dnsConfig({ name: 'api.test', port: 1, servers: ['not an ip'] }))).toThrow(
      "dns discovery 'api.test': bad servers",
    );
  });
});

describe('refreshDelayMs', () => {
  it('uses the TTL within [minRefreshMs, maxRefreshMs]', () => {
    expect(refreshDelayMs(30, 5_000, 60_000)).toBe(30_000);
    expect(refreshDelayMs(0, 5_000, 60_000)).toBe(5_000);
    expect(refreshDelayMs(3_600, 5_000, 60_000)).toBe(60_000);
    expect(refreshDelayMs(30, 10_000, 1_000)).toBe(10_000);
  });
});

describe('dns discovery without servers', () => {
  it('resolves through the system resolver, /etc/hosts first: localhost is 127.0.0.1', async () => {
    const config = Discovery.parse({ type: 'dns', name: 'localhost', port: 8080 });
    if (config.type !== 'dns') throw new Error('expected a dns config');
    const source = createDnsSource(config);
    const events = recordDiscovery();
    try {
      source.start(events);
      await waitFor(() => events.latest() ?? events.errors[0]);
      expect(events.errors).toEqual([]);
      expect(events.lists[0]).toEqual([{ host: '127.0.0.1', port: 8080, weight: 1, labels: {} }]);
    } finally {
      source.close();
    }
  });
});

describe('addressLookupFor', () => {
  it('uses the system resolver unless servers names at least one server', () => {
    expect(addressLookupFor({})).toBe('system');
    expect(addressLookupFor({ servers: [] })).toBe('system');
    expect(addressLookupFor({ servers: ['10.96.0.10:53'] })).toBe('servers');
  });
});
