// A cluster's circuit-breaking thresholds (Envoy's): connections, requests waiting for a connection, requests
// and retries in flight, counted across all of the cluster's endpoints. Over a threshold the caller fails the
// request at once (UO) and the overflow is reported by threshold. Plain counters on the request path; the
// pools' waiters (requests held while the cluster is at maxConnections) queue here to get the next free slot.
import type { CircuitBreakersConfig } from '../config/breaker-schema.ts';

export type Threshold = 'max_connections' | 'max_pending_requests' | 'max_requests' | 'max_retries';
export const THRESHOLDS: readonly Threshold[] = [
  'max_connections',
  'max_pending_requests',
  'max_requests',
  'max_retries',
];

/** A pool holding requests that wait for a connection slot (proxy/upstream/*-pool.ts). */
export interface SlotWaiter {
  /** A slot is free (already counted as its connection): open it for the pool's oldest waiting request. */
  takeSlot(): void;
  /** Close one idle connection, if it has one, so another endpoint's waiter gets its slot. */
  closeIdle(): boolean;
}

export class ClusterLimits {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
  connections = 0;
  pending = 0;
  requests = 0;
  retries = 0;
  /** Overflows by threshold since the cluster was built (for /clusters; metrics count across reloads). */
  readonly overflows: Record<Threshold, number> = {
    max_connections: 0,
    max_pending_requests: 0,
    max_requests: 0,
    max_retries: 0,
  };
  private readonly onOverflow: ((threshold: Threshold) => void) | undefined;
  /** Pools in the order their waiters queued (one entry per waiting request). */
  private readonly waiting: SlotWaiter[] = [];
  private readonly pools = new Set<SlotWaiter>();

  constructor(cfg: Omit<CircuitBreakersConfig, 'endpoint'>, onOverflow?: (threshold: Threshold) => void) {
    this.maxConnections = cfg.maxConnections;
    this.maxPendingRequests = cfg.maxPendingRequests;
    this.maxRequests = cfg.maxRequests;
    this.maxRetries = cfg.maxRetries;
    this.onOverflow = onOverflow;
  }

  overflow(threshold: Threshold): void {
    this.overflows[threshold]++;
    this.onOverflow?.(threshold);
  }

  /** A request (or HTTP/2 stream) to the cluster starts; false (counted as overflow): over maxRequests. */
  tryStartRequest(): boolean {
    if (this.requests >= this.maxRequests) {
      this.overflow('max_requests');
      return false;
    }
    this.requests++;
    return true;
  }

  endRequest(): void {
    this.requests--;
  }

  /**
   * For the retry stage, before it makes a retry: false (counted as overflow) when maxRetries retries are in
   * flight already. Each true is paired with one endRetry() when that retry attempt ends.
   */
  tryStartRetry(): boolean {
    if (this.retries >= this.maxRetries) {
      this.overflow('max_retries');
      return false;
    }
    this.retries++;
    return true;
  }

  endRetry(): void {
    this.retries--;
  }

  /** A pool may open a connection (and counts it); false: the cluster is at maxConnections. */
  tryOpenConnection(): boolean {
    if (this.connections >= this.maxConnections) return false;
    this.connections++;
    return true;
  }

  /** A pool registers so that a waiter elsewhere can ask it to give up an idle connection. */
  addPool(pool: SlotWaiter): void {
    this.pools.add(pool);
  }

  removePool(pool: SlotWaiter): void {
    this.pools.delete(pool);
  }

  /**
   * A request must wait for a connection: true (counted as pending, `pool` queued for the next free slot) or
   * false (counted as overflow) past maxPendingRequests. An idle connection of another endpoint is closed to
   * make room: its slot is worth more to a waiting request.
   */
  tryWait(pool: SlotWaiter): boolean {
    if (this.pending >= this.maxPendingRequests) {
      this.overflow('max_pending_requests');
      return false;
    }
    this.pending++;
    this.waiting.push(pool);
    for (const p of this.pools) if (p !== pool && p.closeIdle()) break;
    return true;
  }

  /** One of `pool`'s waiting requests left its queue otherwise (a connection of its own freed; timeout; abort). */
  stopWaiting(pool: SlotWaiter): void {
    this.pending--;
    const i = this.waiting.indexOf(pool);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  /** A connection closed: its slot goes to the pool whose request has waited longest. */
  connectionClosed(): void {
    this.connections--;
    if (this.waiting.length === 0 || this.connections >= this.maxConnections) return;
    const pool = this.waiting.shift()!;
    this.pending--;
    this.connections++;
    pool.takeSlot();
  }
}
