// Fault injection through a running proxy: aborts with the route's status (flag FI; a gRPC status for gRPC),
// delays that let the request go on (flag DI), header-gated faults, and shares that hold over many requests.
import http from 'node:http';
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

  it('aborts and delays about the given shares of 10,000 requests', async () => {
    const { proxy, served } = await faulted({
      abort: { percentage: 30, httpStatus: 503 },
      delay: { percentage: 10, fixedDelay: 1 },
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    let aborted = 0;
    const one = () =>
      new Promise<void>((resolve, reject) => {
        http
          .get(`${proxy.url()}/`, { agent }, (res) => {
            if (res.statusCode === 503) aborted++;
            res.resume().on('end', resolve);
          })
          .on('error', reject);
      });
    for (let i = 0; i < 10_000; i += 100) await Promise.all(Array.from({ length: 100 }, one));
    agent.destroy();
    // 10,000 draws at 30%: the standard deviation is ~46 requests; ±230 is five of them.
    expect(Math.abs(aborted - 3_000)).toBeLessThan(230);
    expect(served()).toBe(10_000 - aborted);
    // Delay and abort are drawn independently; a request both delayed and aborted is flagged FI, so DI counts
    // the delayed requests that went on: 10% of the 70%, ±5 standard deviations.
    const delayed = await flagCount(proxy, 'DI');
    expect(Math.abs(delayed - 700)).toBeLessThan(5 * Math.sqrt(10_000 * 0.07 * 0.93));
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
