// A listener's HTTP/1.1 connections: the limits new connections get (a reload changes them for the next
// ones), one sweep a second for the head and keep-alive timeouts instead of a timer per connection, and
// drain (close the idle ones now, the busy ones after their response).
import type net from 'node:net';
import { type ConnectionOwner, Http1Connection, type Http1Limits } from './http1-connection.ts';

import type { ScopeSource } from './scope.ts';

export type { Http1Limits };

/** How often the timeouts are checked: they fire up to this much late, never early. */
const SWEEP_MS = 1000;

export class Http1Connections implements ConnectionOwner {
  limits: Http1Limits;
  draining = false;
  private readonly listener: ScopeSource;
  private readonly all = new Set<Http1Connection>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(listener: ScopeSource, limits: Http1Limits) {
    this.listener = listener;
    this.limits = limits;
  }

  /** Serve HTTP/1.1 on `socket`; `first` holds bytes already read from it (protocol detection). */
  accept(socket: net.Socket, first: Buffer | null): void {
    if (this.sweeper === null) {
      this.sweeper = setInterval(this.sweep, SWEEP_MS);
      this.sweeper.unref();
    }
    const conn = new Http1Connection(this, this.listener, socket);
    this.all.add(conn);
    conn.start(first);
  }

  remove(conn: Http1Connection): void {
    this.all.delete(conn);
  }

  get size(): number {
    return this.all.size;
  }

  private readonly sweep = (): void => {
    const now = performance.now();
    for (const c of this.all) {
      if (c.closed) {
        // Ending after its last response: a client that never closes its side does not keep it forever.
        if (now - c.idleSinceMs >= c.idleTimeoutMs) c.destroy();
      } else if (c.headStartMs > 0) {
        if (c.headersTimeoutMs > 0 && now - c.headStartMs >= c.headersTimeoutMs) c.onHeadTimeout();
      } else if (c.idle && c.idleTimeoutMs > 0 && now - c.idleSinceMs >= c.idleTimeoutMs) c.destroy();
    }
  };

  /** Close idle connections now; busy ones answer with `connection: close` and end after their response. */
  startDrain(): void {
    this.draining = true;
    for (const c of this.all) if (c.idle) c.destroy();
  }

  closeAll(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const c of this.all) c.destroy();
    this.all.clear();
  }
}
