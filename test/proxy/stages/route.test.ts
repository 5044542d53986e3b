// The route stage on a capture listener (`originalDst: true`), without sockets: its own routes first, then the
// cluster whose serviceAddresses hold the original destination, then the listener's fallback cluster; a TCP
// connection (a tcp listener, or a captured http listener's non-HTTP one) always goes by original destination.
import { describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../../src/config/compile.ts';
import { parseConfig } from '../../../src/config/load.ts';
import type { RequestContext } from '../../../proxy/context.ts';
import { parseOriginalDstKey } from '../../../proxy/original-dst.ts';
import { routeStage } from '../../../proxy/stages/route.ts';
import type { StageProtocol } from '../../../proxy/stages/types.ts';

const config = parseConfig({
  listeners: [
    {
      name: 'outbound-capture',
      address: '0.0.0.0:15001',
      originalDst: true,
      cluster: 'passthrough',
      routes: [{ name: 'by-host', match: { headers: [{ name: 'host', exact: 'api.internal' }] }, cluster: 'api' }],
    },
  ],
  clusters: [
    { name: 'passthrough', discovery: { type: 'original-dst' } },
    { name: 'api', discovery: { type: 'static', endpoints: [{ address: '10.0.0.5:8080' }] } },
    {
      name: 'reviews',
      serviceAddresses: ['10.96.0.10:9080'],
      timeouts: { requestMs: 2000 },
      discovery: { type: 'static', endpoints: [{ address: '10.0.0.6:9080' }] },
    },
  ],
});
const snapshot = compileSnapshot(config, 1, (c) => ({ name: c.name, requestTimeoutMs: c.timeouts.requestMs }));
const listener = snapshot.listeners.get('outbound-capture')!;

function stage(protocol: StageProtocol) {
  return routeStage.create({
    listener: listener as never,
    direction: 'outbound',
    protocol,
    config: undefined,
    state: { get: (_k, create) => create() },
  })!;
}

function request(host: string, dst: string | null) {
  const headers: Record<string, string> = { host };
  return {
    method: 'GET',
    path: '/',
    query: '',
    isGrpc: false,
    sourceService: 'app',
    header: (name: string) => headers[name],
    parsedCookies: null,
    parsedQuery: null,
    originalDst: dst === null ? null : parseOriginalDstKey(dst),
    timeoutMs: 0,
    route: undefined as { name: string } | undefined,
    cluster: undefined as { name: string } | undefined,
  };
}

function routed(protocol: StageProtocol, host: string, dst: string | null) {
  const ctx = request(host, dst);
  expect(stage(protocol).onRequest!(ctx as unknown as RequestContext)).toBeNull();
  return { route: ctx.route?.name, cluster: ctx.cluster?.name, timeoutMs: ctx.timeoutMs };
}

describe('route stage on a capture listener', () => {
  it('takes a matching route first, whatever the original destination', () => {
    expect(routed('http', 'api.internal', '10.96.0.10:9080')).toMatchObject({ route: 'by-host', cluster: 'api' });
  });

  it("then the cluster whose serviceAddresses hold the original destination, with that cluster's timeout", () => {
    expect(routed('http', '10.96.0.10:9080', '10.96.0.10:9080')).toEqual({
      route: 'original-dst:reviews',
      cluster: 'reviews',
      timeoutMs: 2000,
    });
  });

  it('then the fallback cluster: an unknown destination, or a connection that was not redirected', () => {
    expect(routed('http', 'example.com', '93.184.216.34:80')).toMatchObject({
      route: 'original-dst:passthrough',
      cluster: 'passthrough',
    });
    expect(routed('http', 'example.com', null)).toMatchObject({ cluster: 'passthrough' });
  });

  it('routes a TCP connection by original destination only (no routes, no headers)', () => {
    expect(routed('tcp', 'api.internal', '10.96.0.10:9080')).toMatchObject({ cluster: 'reviews' });
    expect(routed('tcp', 'api.internal', '10.1.2.3:5432')).toMatchObject({ cluster: 'passthrough' });
  });
});
