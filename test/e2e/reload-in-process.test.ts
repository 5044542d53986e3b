// What a reload changes on a listener that keeps its socket: routes, and the limits new connections get.
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { runCurl } from '../support/curl.ts';
import { type RunningProxy, startEchoUpstream, startProxy, type Upstream } from '../support/proxy.ts';

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
