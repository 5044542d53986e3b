// The load balancer's pick among the cluster's endpoints, once per attempt (a further attempt avoids the
// endpoints already tried: Cluster.pick), and the endpoint's bookkeeping (active requests, totals, failures)
// that /clusters and least-request read: taken at the pick, given back when the attempt is replaced or the
// request finishes.
import type { Endpoint } from '../cluster.ts';
import type { RequestContext } from '../context.ts';
import { FLAG, localReply } from '../flags.ts';
import type { StageDefinition } from './types.ts';

function release(ep: Endpoint, failed: boolean): void {
  ep.active--;
  if (failed) ep.failuresTotal++;
}

export const lbPickStage: StageDefinition = {
  name: 'lb-pick',
  protocols: ['http', 'tcp'],
  create() {
    const noHealthy = localReply(FLAG.NoHealthyUpstream);
    return {
      name: 'lb-pick',
      perAttempt: true,
      onRequest(ctx: RequestContext) {
        // A further attempt: the endpoint that failed the last one is given back, counted as a failure, and
        // noted as tried, so the pick goes elsewhere when it can.
        const previous = ctx.endpoint;
        if (previous !== undefined) {
          ctx.endpoint = undefined;
          release(previous, true);
          if (ctx.triedEndpoints === null) ctx.triedEndpoints = [previous];
          else ctx.triedEndpoints.push(previous);
        }
        const ep = ctx.cluster!.pick(ctx);
        if (ep === undefined) return noHealthy;
        ctx.endpoint = ep;
        ep.active++;
        ep.requestsTotal++;
        return null;
      },
      onFinish(ctx: RequestContext) {
        const ep = ctx.endpoint;
        if (ep !== undefined) release(ep, (ctx.flag !== '' && ctx.flag !== FLAG.DelayInjected) || ctx.status >= 500);
      },
    };
  },
};
