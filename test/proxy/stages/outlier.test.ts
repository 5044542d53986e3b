// The outlier stage as a shell: what it hands the cluster's outlier detection per attempt and at the end of a
// request (only a failure after the committed head, which it has counted already), and that it is left out
// where no cluster detects outliers. The detection itself: test/resilience/outlier.test.ts, e2e/outlier.test.ts.
import { describe, expect, it } from 'vitest';
import type { CompiledListener } from '../../../src/config/compile.ts';
import type { Cluster, Endpoint } from '../../../proxy/cluster.ts';
import type { RequestContext } from '../../../proxy/context.ts';
import { UpstreamError } from '../../../proxy/flags.ts';
import { outlierStage } from '../../../proxy/stages/outlier.ts';
import type { StageBuild } from '../../../proxy/stages/registry.ts';

function fakeCluster(detects: boolean) {
  const seen: [string, number, string | null][] = [];
  const cluster = {
    health: {
      outlier: detects ? {} : undefined,
      observe: (ep: Endpoint, status: number, source: string | null) => seen.push([ep.id, status, source]),
    },
  } as unknown as Cluster;
  return { cluster, seen };
}

function build(clusters: Cluster[]): StageBuild {
  const listener = { routes: { routes: [{ clusters }] } } as unknown as CompiledListener<Cluster>;
  return { listener, direction: 'outbound', protocol: 'http', config: undefined, state: { get: (_k, c) => c() } };
}

function buildTcp(cluster: Cluster): StageBuild {
  const listener = { routes: { routes: [] }, tcpCluster: cluster } as unknown as CompiledListener<Cluster>;
  return { listener, direction: 'outbound', protocol: 'tcp', config: undefined, state: { get: (_k, c) => c() } };
}

function ctx(cluster: Cluster, extra: Partial<RequestContext> = {}): RequestContext {
  return { cluster, endpoint: { id: 'a:1' }, committed: false, flag: '', ...extra } as unknown as RequestContext;
}

describe('outlier stage', () => {
  it('is left out when no cluster of the listener detects outliers', () => {
    expect(outlierStage.create(build([fakeCluster(false).cluster]))).toBeNull();
  });

  it("hands every attempt's status or error source on and never asks for a retry", () => {
    const { cluster, seen } = fakeCluster(true);
    const stage = outlierStage.create(build([fakeCluster(false).cluster, cluster]))!;
    const c = ctx(cluster);
    expect(stage.onUpstreamResult!(c, { status: 503, headers: [], error: null })).toBe('accept');
    const reset = new UpstreamError('UC', 'upstream-reset', 'reset', true);
    expect(stage.onUpstreamResult!(c, { status: 0, headers: null, error: reset })).toBe('accept');
    expect(seen).toEqual([
      ['a:1', 503, null],
      ['a:1', 0, 'upstream-reset'],
    ]);
  });

  it('counts at the end only a failure after the response was committed', () => {
    const { cluster, seen } = fakeCluster(true);
    const stage = outlierStage.create(build([cluster]))!;
    stage.onFinish!(ctx(cluster, { committed: true, flag: '' }));
    stage.onFinish!(ctx(cluster, { committed: false, flag: 'UC' })); // seen by onUpstreamResult already
    stage.onFinish!(ctx(cluster, { committed: true, flag: 'DC' })); // the client went away: not the endpoint
    stage.onFinish!(ctx(cluster, { committed: true, flag: 'UC' }));
    stage.onFinish!(ctx(cluster, { committed: true, flag: 'UT' }));
    expect(seen).toEqual([
      ['a:1', 0, 'upstream-reset'],
      ['a:1', 0, 'timeout'],
    ]);
  });

  it('on a TCP listener counts a connect failure against the endpoint and a connection that opened for it', () => {
    const { cluster, seen } = fakeCluster(true);
    const stage = outlierStage.create(buildTcp(cluster))!;
    expect(stage.onUpstreamResult).toBeUndefined();
    stage.onFinish!(ctx(cluster, { flag: 'UF' }));
    stage.onFinish!(ctx(cluster, { flag: '' }));
    stage.onFinish!(ctx(cluster, { flag: 'UF', endpoint: undefined }));
    expect(seen).toEqual([
      ['a:1', 0, 'connect'],
      ['a:1', 200, null],
    ]);
    expect(outlierStage.create(buildTcp(fakeCluster(false).cluster))).toBeNull();
  });
});
