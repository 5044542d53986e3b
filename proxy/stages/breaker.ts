// The breaker stage: a cluster's circuit-breaking thresholds admit each request (maxRequests; maxConnections and
// maxPendingRequests are the pools'), and each attempt's outcome goes to its endpoint's breaker, which the LB pick
// consults (Cluster.pick skips open endpoints). Over a threshold, or with every endpoint's breaker open, the
// request fails at once: 503 UO (gRPC UNAVAILABLE). State lives on the Cluster and its Endpoints.
import { NOT_A_PROBE, type Outcome } from '../../src/resilience/breaker.ts';
import type { RequestContext } from '../context.ts';
import { FLAG, GRPC_STATUS, localReply } from '../flags.ts';
import type { Stage } from '../pipeline.ts';
import type { StageDefinition } from './types.ts';

/** ctx.breakerMarks: the request holds one of its cluster's maxRequests slots. */
const HOLDS_SLOT = 1;
/** ctx.breakerMarks: an attempt was let through whose outcome its endpoint's breaker has not heard yet. */
const ATTEMPT_OPEN = 2;

/** gRPC statuses that say the server failed (as Envoy maps them to 5xx), not the call. */
function grpcServerFailure(status: number): boolean {
  return (
    status === 2 /* UNKNOWN */ || status === GRPC_STATUS.INTERNAL || status === GRPC_STATUS.UNAVAILABLE || status === 15
  ); /* DATA_LOSS */
}

/** What the finished request says about the endpoint of its last attempt. */
function outcomeOf(ctx: RequestContext): Outcome {
  switch (ctx.flag) {
    case '':
      if (ctx.status >= 500 || (ctx.isGrpc && grpcServerFailure(ctx.grpcStatus))) return 'failure';
      return 'success';
    case FLAG.UpstreamConnectFailure:
    case FLAG.UpstreamConnectionTermination:
    case FLAG.UpstreamTimeout:
    case FLAG.UpstreamProtocolError:
    case FLAG.RetryLimit:
      return 'failure';
    case 'UF,URX':
    case 'UC,URX':
    case 'UT,URX':
    case 'UPE,URX':
      return 'failure';
    default:
      // The client went away (DC), an overflow in the pool (UO), the proxy's own error (IE): not the endpoint's.
      return 'neutral';
  }
}

/** The attempt's outcome to its endpoint's breaker (the outcome is only worked out when there is one). */
function report(ctx: RequestContext, outcome: Outcome | null): void {
  const ep = ctx.endpoint;
  const probe = ctx.breakerProbe;
  ctx.breakerProbe = NOT_A_PROBE;
  if (ep !== undefined && ep.breaker !== null) ep.breaker.record(performance.now(), outcome ?? outcomeOf(ctx), probe);
}

export const breakerStage: StageDefinition = {
  name: 'breaker',
  protocols: ['http', 'tcp'],
  create(): Stage {
    const overflow = localReply(FLAG.Overflow);
    return {
      name: 'breaker',
      perAttempt: true,
      onRequest(ctx) {
        const cluster = ctx.cluster!;
        const marks = ctx.breakerMarks;
        // A further attempt: the runner retries only after the last one failed (before lb-pick gives its
        // endpoint back, so ctx.endpoint is still that one).
        if ((marks & ATTEMPT_OPEN) !== 0) report(ctx, 'failure');
        if (cluster.breakersNotClosed !== 0 && !cluster.admitsAny()) {
          ctx.breakerMarks = marks & ~ATTEMPT_OPEN;
          return overflow;
        }
        if ((marks & HOLDS_SLOT) === 0 && !cluster.limits.tryStartRequest()) return overflow;
        ctx.breakerMarks = HOLDS_SLOT | ATTEMPT_OPEN;
        return null;
      },
      onFinish(ctx) {
        const marks = ctx.breakerMarks;
        if (marks === 0) return;
        ctx.breakerMarks = 0;
        if ((marks & ATTEMPT_OPEN) !== 0) report(ctx, null);
        if ((marks & HOLDS_SLOT) !== 0) ctx.cluster!.limits.endRequest();
      },
    };
  },
};
