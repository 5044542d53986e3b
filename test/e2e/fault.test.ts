// Fault injection through a running proxy: aborts with the route's status (flag FI; a gRPC status for gRPC),
// delays that let the request go on (flag DI), header-gated faults, and shares that hold over many requests.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { echoClient, grpcError, startGrpcUpstream, unary } from '../support/grpc-echo.ts';
import { httpGet } from '../support/http-client.ts';
import { quickConfig, type RunningProxy, startEchoUpstream, startProxy, type Upstream } from '../support/proxy.ts';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A proxy whose one route carries `fault`, in front of a counting HTTP/1.1 upstream. */
async function faulted(fault: unknown): Promise<{ proxy: RunningProxy; served: () => number }> {
  let served = 0;
  const upstream: Upstream = await startEchoUpstream('app', (_req, res) => {
    served++;
    res.end('ok');
  });
  cleanups.push(() => upstream.close());
  const config: ConfigInput = {
    ...quickConfig([upstream.address]),
    listeners: [{ name: 'main', address: '127.0.0.1:0', routes: [{ name: 'chaos', cluster: 'upstream', fault }] }],
  } as ConfigInput;
  const proxy = await startProxy(config);
  cleanups.push(() => proxy.close());
  return { proxy, served: () => served };
}

async function flagCount(proxy: RunningProxy, flag: string): Promise<number> {
  const metrics = (await httpGet(`${proxy.adminUrl()}/metrics`)).body;
  let n = 0;
  for (const line of metrics.split('\n')) {
    if (line.startsWith('service_mesh_requests_total{') && line.includes(`response_flag="${flag}"`))
      n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}

describe('fault injection', () => {
  it('aborts with the policy status and FI, and the upstream never sees the request', async () => {
    const { proxy, served } = await faulted({ abort: { percentage: 100, httpStatus: 418 } });
    const res = await httpGet(`${proxy.url()}/`);
    expect(res.status).toBe(418);
    expect(res.headers['x-skein-flags']).toBe('FI');
    expect(res.body).toBe('fault injected\n');
    expect(served()).toBe(0);
    expect(await flagCount(proxy, 'FI')).toBe(1);
  });

  it('faults only the requests that carry the named header', async () => {
    const { proxy, served } = await faulted({
      abort: { percentage: 100, httpStatus: 503 },
      headers: [{ name: 'x-chaos', exact: 'on' }],
    });
    expect((await httpGet(`${proxy.url()}/`, { headers: { 'x-chaos': 'on' } })).status).toBe(503);
    expect((await httpGet(`${proxy.url()}/`, { headers: { 'x-chaos': 'off' } })).status).toBe(200);
    expect((await httpGet(`${proxy.url()}/`)).status).toBe(200);
    expect(served()).toBe(2);
  });

  it('aborts about the given share of many requests', async () => {
    const { proxy, served } = await faulted({ abort: { percentage: 30, httpStatus: 503 } });
    let aborted = 0;
    for (let i = 0; i < 400; i++) if ((await httpGet(`${proxy.url()}/`)).status === 503) aborted++;
    // 400 draws at 30%: the standard deviation is ~9 requests; ±45 is five of them.
    expect(aborted).toBeGreaterThan(120 - 45);
    expect(aborted).toBeLessThan(120 + 45);
    expect(served()).toBe(400 - aborted);
  });

  it('lets a delayed request go on to the upstream, flagged DI', async () => {
    const { proxy, served } = await faulted({ delay: { percentage: 100, fixedDelay: 30 } });
    const res = await httpGet(`${proxy.url()}/`);
    expect(res.status).toBe(200);
    expect(res.body).toBe('ok');
    expect(served()).toBe(1);
    expect(await flagCount(proxy, 'DI')).toBe(1);
  });

  it('gives a gRPC client the gRPC status the policy names, or the one its HTTP status maps to', async () => {
    const upstream = await startGrpcUpstream();
    cleanups.push(() => upstream.close());
    for (const [abort, code] of [
      [{ percentage: 100, grpcStatus: grpc.status.RESOURCE_EXHAUSTED }, grpc.status.RESOURCE_EXHAUSTED],
      [{ percentage: 100, httpStatus: 503 }, grpc.status.UNAVAILABLE],
    ] as const) {
      const proxy = await startProxy({
        ...quickConfig([upstream.address]),
        listeners: [{ name: 'main', address: '127.0.0.1:0', routes: [{ cluster: 'upstream', fault: { abort } }] }],
      } as ConfigInput);
      cleanups.push(() => proxy.close());
      const client = echoClient(`127.0.0.1:${proxy.port()}`);
      cleanups.push(() => client.close());
      const err = await grpcError(unary(client, { message: 'x' }));
      expect(err.code).toBe(code);
      expect(err.metadata.get('x-skein-flags')).toEqual(['FI']);
    }
  });
});
