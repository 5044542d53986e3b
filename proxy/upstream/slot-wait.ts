// A request a pool holds while its cluster is at maxConnections (circuit breaking): it gets the next
// connection of its pool that frees up, or a slot the cluster hands out when one of its connections closes,
// and fails with UT at its request timeout. Only built on that overflow path, never per ordinary request.
import { UpstreamError } from '../flags.ts';
import type { Exchange, OutboundRequest, ResponseSink } from './types.ts';

/** The pool that queued it. */
export interface WaitQueue {
  /** Takes `w` out of the queue (timed out, aborted); false when it had left already. */
  dropWaiter(w: SlotWait): boolean;
}

export class SlotWait implements Exchange {
  readonly req: OutboundRequest;
  readonly sink: ResponseSink;
  private readonly queue: WaitQueue;
  /** The exchange it became once served. */
  inner: Exchange | null = null;
  timer: NodeJS.Timeout | null = null;

  constructor(queue: WaitQueue, req: OutboundRequest, sink: ResponseSink) {
    this.queue = queue;
    this.req = req;
    this.sink = sink;
    // Not read until a connection takes it (both pools resume it then).
    req.body?.pause();
    if (req.timeoutMs > 0) {
      this.timer = setTimeout(() => {
        if (!queue.dropWaiter(this)) return;
        sink.onError(new UpstreamError('UT', 'timeout', `upstream request timeout after ${req.timeoutMs} ms`, false));
      }, req.timeoutMs);
      this.timer.unref();
    }
  }

  /** Leaves the queue (to be sent: its timeout is the exchange's from now on; or dropped). */
  served(): void {
    if (this.timer !== null) clearTimeout(this.timer);
  }

  abort(): void {
    if (this.inner !== null) this.inner.abort();
    else this.queue.dropWaiter(this);
  }

  resume(): void {
    this.inner?.resume();
  }
}

/** The error a request gets when the cluster is at maxConnections and maxPendingRequests. */
export function pendingOverflow(): UpstreamError {
  return new UpstreamError(
    'UO',
    'overflow',
    'upstream overflow: cluster at maxConnections and maxPendingRequests',
    false,
  );
}
