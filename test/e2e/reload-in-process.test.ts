// What a reload changes on a listener that keeps its socket: routes, the limits new connections get, and the
// scope of new requests only (one in flight keeps the listener it started with).
import type http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { runCurl } from '../support/curl.ts';
import { httpGet } from '../support/http-client.ts';
import { quickConfig, type RunningProxy, startEchoUpstream, startProxy, type Upstream } from '../support/proxy.ts';
import { waitFor } from '../support/wait-for.ts';

describe('reload of a listener that keeps its socket', () => {
  let proxy: RunningProxy | undefined;
  let upstream: Upstream | undefined;
  afterEach(async () => {
    await proxy?.close();
    await upstream?.close();
  });

  it('applies a new maxHeaderBytes to the next connection', async () => {
    upstream = await startEchoUpstream();
    const config = (maxHeaderBytes: number): ConfigInput => ({
      listeners: [{ name: 'main', address: '127.0.0.1:0', maxHeaderBytes, routes: [{ cluster: 'app' }] }],
      clusters: [{ name: 'app', discovery: { type: 'static', endpoints: [{ address: upstream!.address }] } }],
    });
    proxy = await startProxy(config(64 * 1024));
    const port = proxy.port();
    const big = ['-H', `x-big: ${'a'.repeat(8 * 1024)}`, '-o', '/dev/null', '-w', '%{http_code}'];
    expect((await runCurl([...big, `http://127.0.0.1:${port}/`])).stdout.toString()).toBe('200');

    // Same listener address in the config (port 0 = the port it already has): it keeps its socket.
    const next = parseConfig(config(4 * 1024));
    await proxy.proxy.apply(next);
    expect(proxy.port()).toBe(port);
    expect((await runCurl([...big, `http://127.0.0.1:${port}/`])).stdout.toString()).toBe('431');
  });
});

describe('a request in flight across a reload', () => {
  let proxy: RunningProxy | undefined;
  let upstream: Upstream | undefined;
  afterEach(async () => {
    await proxy?.close();
    await upstream?.close();
  });

  it('is reported with the listener it started on (service and direction), the next one with the new', async () => {
    let hold: (() => void) | null = null;
    const arrived = new Promise<void>((seen) => {
      const handler: http.RequestListener = (req, res) => {
        const answer = () => res.end('ok');
        if (req.url === '/slow') {
          hold = answer;
          seen();
        } else answer();
      };
      void startEchoUpstream('slow', handler).then((u) => (upstream = u));
    });
    await waitFor(() => upstream !== undefined);
    const config = (service: string, direction: 'inbound' | 'outbound'): ConfigInput => ({
      ...quickConfig([upstream!.address], { service }),
      listeners: [{ name: 'main', address: '127.0.0.1:0', direction, routes: [{ cluster: 'upstream' }] }],
    });
    proxy = await startProxy(config('before', 'outbound'));
    const inFlight = httpGet(`${proxy.url()}/slow`);
    await arrived;
    await proxy.proxy.apply(parseConfig(config('after', 'inbound')));
    hold!();
    expect((await inFlight).status).toBe(200);
    expect((await httpGet(`${proxy.url()}/fast`)).status).toBe(200);

    const metrics = (await httpGet(`${proxy.adminUrl()}/metrics`)).body;
    const requests = metrics.split('\n').filter((l) => l.startsWith('service_mesh_requests_total{'));
    // reporter="source": counted by an outbound listener; "destination": by an inbound one.
    expect(requests.filter((l) => /reporter="source",source_service="before"[^}]*\} 1$/.test(l))).toHaveLength(1);
    expect(
      requests.filter((l) => /reporter="destination"[^}]*destination_service="after"[^}]*\} 1$/.test(l)),
    ).toHaveLength(1);
    expect(requests).toHaveLength(2);
  });
});

describe('config of pipeline stages', () => {
  it('refuses a stage block no registered stage takes, with its field path', () => {
    expect(() =>
      parseConfig({
        listeners: [{ name: 'main', address: '127.0.0.1:0', routes: [{ cluster: 'a' }], stages: { bogus: {} } }],
        clusters: [{ name: 'a', discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:1' }] } }],
      }),
    ).toThrow(/listeners\[0\]\.stages: Unrecognized key: "bogus"/);
  });
});
