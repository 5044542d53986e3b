// The outlier stage: tells each cluster's outlier detection (cluster-health.ts) what every attempt came back
// with, before the response is committed, and, once the request is over, about a failure after that (a reset
// mid-body). It never asks for a retry. Left out of listeners none of whose clusters detect outliers. On a TCP
// listener it sees each connection once it ends: a connect failure counts against the endpoint, a connection
// that opened for it.
import type { Cluster } from '../cluster.ts';
import { FLAG } from '../flags.ts';
import type { Stage } from '../pipeline.ts';
import type { StageDefinition } from './types.ts';

export const outlierStage: StageDefinition = {
  name: 'outlier',
  protocols: ['http', 'tcp'],
  create({ listener, protocol }): Stage | null {
    const clusters = new Set<Cluster>();
    for (const route of listener.routes.routes) for (const c of route.clusters) clusters.add(c);
    if (listener.tcpCluster !== undefined) clusters.add(listener.tcpCluster);
    if (![...clusters].some((c) => c.health.outlier !== undefined)) return null;
    if (protocol === 'tcp')
      return {
        name: 'outlier',
        onFinish(ctx) {
          if (ctx.endpoint === undefined) return;
          const failed = ctx.flag === FLAG.UpstreamConnectFailure;
          ctx.cluster!.health.observe(ctx.endpoint, failed ? 0 : 200, failed ? 'connect' : null);
        },
      };
    return {
      name: 'outlier',
      onUpstreamResult(ctx, result) {
        const ep = ctx.endpoint;
        if (ep !== undefined) ctx.cluster!.health.observe(ep, result.status, result.error?.source ?? null);
        return 'accept';
      },
      onFinish(ctx) {
        // Only what came after the committed attempt's head, which onUpstreamResult has counted already.
        if (!ctx.committed || ctx.endpoint === undefined) return;
        const flag = ctx.flag;
        if (flag === FLAG.UpstreamConnectionTermination) ctx.cluster!.health.observe(ctx.endpoint, 0, 'upstream-reset');
        else if (flag === FLAG.UpstreamTimeout) ctx.cluster!.health.observe(ctx.endpoint, 0, 'timeout');
      },
    };
  },
};
