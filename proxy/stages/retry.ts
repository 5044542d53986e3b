// The retry stage: each route's retry policy (its `retries`, else the listener's `stages.retry`, else Istio's
// default on outbound listeners; none on inbound ones) decides whether an attempt's outcome is worth another
// attempt (src/resilience/retry.ts). It sets what the runner needs before the first attempt (body bytes to keep,
// a per-try timeout), asks for a retry within the cluster's retry budget and maxRetries slots, and waits out a
// jittered backoff before the next attempt, which lb-pick sends to an endpoint not yet tried when there is one.
// Out of retries, the last outcome stands and the request is flagged URX. Left out where no route retries.
import http2 from 'node:http2';
import { RetryPolicy, type RetryPolicyConfig } from '../../src/config/retry-schema.ts';
import { fastRandom } from '../../src/lb/fast-random.ts';
import {
  backoffMs,
  type CompiledRetryPolicy,
  compileRetryPolicy,
  retriableFailure,
  retriableGrpcStatus,
  retriableStatus,
} from '../../src/resilience/retry.ts';
import type { RequestContext } from '../context.ts';
import { FLAG } from '../flags.ts';
import { canAttemptAgain, type RequestVerdict, type Stage, type UpstreamResult } from '../pipeline.ts';
import type { FlatHeaders } from '../upstream/types.ts';
import type { StageDefinition } from './types.ts';

const { NGHTTP2_REFUSED_STREAM } = http2.constants;

/** The grpc-status of a trailers-only answer's head; -1 when it has none. */
function grpcStatusOf(headers: FlatHeaders): number {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i].length === 11 && headers[i].toLowerCase() === 'grpc-status') {
      const n = Number(headers[i + 1]);
      return Number.isInteger(n) ? n : -1;
    }
  }
  return -1;
}

/** The policy says this outcome may be retried. Never an overflow (UO), a forwarding error or a protocol error,
 *  nor the request's own timeout (only a per-try one). */
function retriable(ctx: RequestContext, p: CompiledRetryPolicy, result: UpstreamResult): boolean {
  const err = result.error;
  if (err === null) {
    if (retriableStatus(p, result.status)) return true;
    return (
      p.grpcOn !== 0 && ctx.isGrpc && result.headers !== null && retriableGrpcStatus(p, grpcStatusOf(result.headers))
    );
  }
  switch (err.source) {
    case 'connect':
      return retriableFailure(p, err.http2Code === NGHTTP2_REFUSED_STREAM ? 'refused-stream' : 'connect-failure');
    case 'upstream-reset':
      return retriableFailure(p, 'reset');
    case 'timeout':
      return ctx.perTryTimerArmed && retriableFailure(p, 'per-try-timeout');
    default:
      return false;
  }
}

/** Gives back the maxRetries slot the request holds for its retry in flight, if it holds one. */
function endRetry(ctx: RequestContext): void {
  if (!ctx.holdsRetrySlot) return;
  ctx.holdsRetrySlot = false;
  ctx.cluster!.limits.endRetry();
}

export const retryStage: StageDefinition = {
  name: 'retry',
  protocols: ['http'],
  create({ listener, direction, config }): Stage | null {
    const fallback: RetryPolicyConfig | undefined =
      (config as RetryPolicyConfig | undefined) ?? (direction === 'outbound' ? RetryPolicy.parse({}) : undefined);
    // By the route's index in the config (CompiledRoute.index): one array read per request.
    const policies: (CompiledRetryPolicy | null)[] = listener.config.routes.map((r) => {
      const cfg = r.retries ?? fallback;
      return cfg === undefined ? null : compileRetryPolicy(cfg);
    });
    if (policies.every((p) => p === null)) return null;
    return {
      name: 'retry',
      perAttempt: true,
      onRequest(ctx): RequestVerdict | Promise<RequestVerdict> {
        if (ctx.attemptNumber === 0) {
          const p = policies[ctx.route!.index];
          if (p === null) return null;
          ctx.retryPolicy = p;
          ctx.bodyBufferBytes = p.bufferLimitBytes;
          ctx.perTryTimeoutMs = p.perTryTimeoutMs;
          ctx.cluster!.retryBudget.deposit(ctx.startMs);
          return null;
        }
        // A retry: wait out the backoff first, but never past the request's deadline.
        const p = ctx.retryPolicy;
        if (p === null) return null;
        let waitMs = backoffMs(p, ctx.attemptNumber, fastRandom());
        if (ctx.deadlineMs !== 0) waitMs = Math.min(waitMs, ctx.deadlineMs - performance.now() - 1);
        if (waitMs < 1) return null;
        return new Promise<RequestVerdict>((resolve) => setTimeout(resolve, waitMs, null));
      },
      onUpstreamResult(ctx, result) {
        const p = ctx.retryPolicy;
        if (p === null || !retriable(ctx, p, result)) return 'accept';
        if (ctx.attemptNumber > p.maxRetries) {
          // The last attempt the policy allows: its outcome is the reply, flagged (flags.ts failureFlag).
          ctx.flag = FLAG.RetryLimit;
          return 'accept';
        }
        const now = performance.now();
        if (!canAttemptAgain(ctx) || (ctx.deadlineMs !== 0 && now >= ctx.deadlineMs - 1)) return 'accept';
        const cluster = ctx.cluster!;
        // The retry before this one has ended (this is its outcome): its slot goes back before another is asked.
        endRetry(ctx);
        if (!cluster.limits.tryStartRetry()) return 'accept';
        if (!cluster.retryBudget.tryWithdraw(now)) {
          cluster.limits.endRetry();
          return 'accept';
        }
        ctx.holdsRetrySlot = true;
        ctx.listener.stats.onRetry(ctx);
        return 'retry';
      },
      onFinish: endRetry,
    };
  },
};
