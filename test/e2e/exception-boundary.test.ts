// The request path's exception boundary: a throw inside the pipeline ends that one request with 500 IE, logged
// with its request id and counted under IE, and the proxy goes on serving. Nothing a client, an upstream or a
// config can send makes a stage throw today (the config refuses the one route edit that did), so the test puts a
// throwing stage at the front of a running listener's pipeline: it reaches into the server's listener table,
// which is what an in-process test is for.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListenerRuntime } from '../../proxy/listener.ts';
import type { Stage } from '../../proxy/pipeline.ts';
import { h2Get } from '../support/h2-client.ts';
import { httpGet } from '../support/http-client.ts';
import { quickConfig, type RunningProxy, startEchoUpstream, startProxy, type Upstream } from '../support/proxy.ts';

let upstream: Upstream;
let proxy: RunningProxy;

beforeAll(async () => {
  upstream = await startEchoUpstream();
  proxy = await startProxy(quickConfig([upstream.address]));
  const listeners = (proxy.proxy as unknown as { listeners: Map<string, ListenerRuntime> }).listeners;
  const boom: Stage = {
    name: 'boom',
    onRequest(ctx) {
      if (ctx.path.startsWith('/boom')) throw new Error('stage exploded');
      return null;
    },
  };
  listeners.get('main')!.scope.chain.request.unshift(boom);
});

afterAll(async () => {
  await proxy?.close();
  await upstream?.close();
});

describe('a stage that throws', () => {
  it.each([
    ['HTTP/1.1', async (path: string) => httpGet(`${proxy.url()}${path}`)],
    ['h2c', async (path: string) => h2Get(proxy.url(), path)],
  ])('ends that request with 500 IE for an %s client, logged and counted, and the proxy serves on', async (_, get) => {
    const seen = await get('/boom');
    expect(seen.status).toBe(500);
    expect(seen.headers['x-skein-flags']).toBe('IE');
    const requestId = String(seen.headers['x-request-id']);
    expect(requestId).not.toBe('');
    const line = proxy.logs
      .map((l) => JSON.parse(l))
      .find((l) => l.msg === 'request failed' && l.requestId === requestId);
    expect(line).toMatchObject({ level: 'error', flag: 'IE', error: 'stage exploded' });
    const metrics = (await httpGet(`${proxy.adminUrl()}/metrics`)).body;
    expect(metrics).toMatch(
      /service_mesh_requests_total\{[^}]*response_code="500"[^}]*response_flag="IE"[^}]*\} [1-9]/,
    );

    const next = await get('/fine');
    expect(next.status).toBe(200);
  });
});
