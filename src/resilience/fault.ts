// Fault injection's decisions, compiled from a route's `fault` policy: whether this request is delayed (and for
// how long) and whether it is aborted, each by its percentage and only when the policy's header matches hold.
// Pure: the random numbers come from the caller, so the arithmetic is tested without sockets or chance.
import type { FaultPolicy } from '../config/schema.ts';
import { headerPredicate, type Predicate, type RoutableRequest } from '../routing/match.ts';
import type { z } from 'zod';

export interface CompiledFault<Reply> {
  /** The policy's header matches (all must hold); null when it has none. */
  readonly applies: Predicate | null;
  /** Share of requests delayed, 0..1, and by how long (ms). */
  readonly delayShare: number;
  readonly delayMs: number;
  /** Share of requests aborted, 0..1, and with what. */
  readonly abortShare: number;
  readonly abort: Reply | null;
}

export function compileFault<Reply>(
  policy: z.infer<typeof FaultPolicy>,
  abortReply: (httpStatus: number | undefined, grpcStatus: number | undefined) => Reply,
): CompiledFault<Reply> {
  const checks = policy.headers.map(headerPredicate);
  const applies: Predicate | null =
    checks.length === 0 ? null : (req: RoutableRequest) => checks.every((check) => check(req));
  return {
    applies,
    delayShare: (policy.delay?.percentage ?? 0) / 100,
    delayMs: policy.delay?.fixedDelay ?? 0,
    abortShare: (policy.abort?.percentage ?? 0) / 100,
    abort: policy.abort === undefined ? null : abortReply(policy.abort.httpStatus, policy.abort.grpcStatus),
  };
}

/** `r` uniform in [0, 1): true for a `share` of the draws (0: never, 1: always). */
export function chosen(share: number, r: number): boolean {
  return r < share;
}
