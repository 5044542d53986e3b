// Config push. Each proxy holds one long-lived HTTP request to control, `GET /v1/push?node=&service=&have=`,
// whose answer never ends: newline-delimited JSON messages — a snapshot (its overlay, control's version, the
// overlay's hash) whenever what that proxy should run changes, and a ping every PING_MS so both ends notice a
// dead peer. The proxy answers each snapshot with `POST /v1/push/ack` (ok, or the reason it refused it).
// Why this transport: it is plain HTTP/1.1 through the same API server (one port, curl can watch a stream),
// needs no new dependency on either side, and a snapshot is small and rare; acknowledgements are separate
// requests on a kept-alive connection. `have` (the hash a proxy already runs) means a reconnect or a
// restarted control sends nothing that the proxy already has.
// With a CA (--ca-dir) a third message type carries what proxies must trust: `trust` (the bundle, the CRLs and
// their hash; control/trust.ts), sent right after a proxy connects and to every proxy when it changes. Proxies
// that predate it ignore message types they do not know.
import type http from 'node:http';
import { z } from 'zod';
import { overlayHash, type Overlay } from '../src/config/overlay.ts';
import { ApiError, parseWith } from './http.ts';

export const PING_MS = 15_000;

export const Ack = z.strictObject({
  node: z.string().min(1).max(256),
  version: z.number().int().min(0),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  ok: z.boolean(),
  /** Why a refused snapshot was refused, one line per problem (field path: reason). */
  problems: z.array(z.string().max(2000)).max(100).default([]),
});

export interface ProxyStatus {
  readonly node: string;
  service: string;
  connected: boolean;
  connectedAt: string | null;
  disconnectedAt: string | null;
  /** The snapshot the proxy runs: its control version and hash (from its last ACK, or what it said it had). */
  running: { version: number | null; hash: string } | null;
  lastAck: { version: number; hash: string; at: string; latencyMs: number | null } | null;
  lastNack: { version: number; hash: string; at: string; problems: string[] } | null;
}

interface Connection {
  readonly node: string;
  readonly service: string;
  readonly res: http.ServerResponse;
  /** The hash of the last snapshot sent (or the one the proxy said it had). */
  sentHash: string;
  sentVersion: number;
  /** When the change that led to the pending snapshot was written (ms since epoch), for push latency. */
  pendingSince: number | null;
  /** The hash of the last trust message sent, or the one the proxy said it had ('' for none). */
  sentTrust: string;
}

/** The current trust message as a ready line (control/trust.ts), or undefined without a CA. */
export type TrustLine = () => { readonly hash: string; readonly line: string } | undefined;

export interface PushEvents {
  /** A proxy ACKed a snapshot `latencyMs` after the write that caused it (null: not caused by a write). */
  onAck(node: string, service: string, version: number, latencyMs: number | null): void;
  onNack(node: string): void;
}

export class PushHub {
  readonly #overlay: (service: string) => Overlay;
  readonly #events: PushEvents;
  readonly #connections = new Map<string, Connection>();
  readonly #proxies = new Map<string, ProxyStatus>();
  readonly #ping: NodeJS.Timeout;
  readonly #trust: TrustLine;

  constructor(overlay: (service: string) => Overlay, events: PushEvents, trust: TrustLine = () => undefined) {
    this.#overlay = overlay;
    this.#events = events;
    this.#trust = trust;
    this.#ping = setInterval(() => {
      for (const c of this.#connections.values()) c.res.write('{"type":"ping"}\n');
    }, PING_MS);
    this.#ping.unref();
  }

  get connected(): number {
    return this.#connections.size;
  }

  proxies(): ProxyStatus[] {
    return [...this.#proxies.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  }

  /** GET /v1/push: the proxy's stream. */
  open(query: URLSearchParams): (res: http.ServerResponse) => void {
    const node = query.get('node') ?? '';
    const service = query.get('service') ?? '';
    const have = query.get('have') ?? '';
    // The trust hash the proxy already applied: a reconnect is not sent the same bundle and CRL again.
    const haveTrust = query.get('haveTrust') ?? '';
    const problems: string[] = [];
    if (node === '' || node.length > 256) problems.push('node: a proxy id of 1 to 256 characters is required');
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(service)) problems.push('service: a service name is required');
    if (problems.length > 0) throw new ApiError('SKEIN_BAD_REQUEST', 'invalid push stream request', problems);
    return (res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      res.flushHeaders();
      res.socket?.setNoDelay(true);
      res.socket?.setKeepAlive(true, PING_MS);
      // One stream per proxy: a reconnect replaces the old stream (its socket may not have noticed yet).
      this.#connections.get(node)?.res.destroy();
      const now = new Date().toISOString();
      const status = this.#proxies.get(node) ?? {
        node,
        service,
        connected: true,
        connectedAt: now,
        disconnectedAt: null,
        running: null,
        lastAck: null,
        lastNack: null,
      };
      status.service = service;
      status.connected = true;
      status.connectedAt = now;
      if (have !== '' && status.running?.hash !== have) status.running = { version: null, hash: have };
      this.#proxies.set(node, status);
      const conn: Connection = {
        node,
        service,
        res,
        sentHash: have,
        sentVersion: -1,
        pendingSince: null,
        sentTrust: haveTrust,
      };
      this.#connections.set(node, conn);
      res.on('close', () => {
        if (this.#connections.get(node) !== conn) return;
        this.#connections.delete(node);
        status.connected = false;
        status.disconnectedAt = new Date().toISOString();
      });
      // Trust first: a snapshot may need mTLS towards peers whose certificates the new bundle verifies.
      this.#pushTrust(conn);
      this.#push(conn, null);
    };
  }

  /** What proxies must trust changed: every connected proxy gets the new trust message. */
  trustChanged(): void {
    for (const c of this.#connections.values()) this.#pushTrust(c);
  }

  #pushTrust(c: Connection): void {
    const trust = this.#trust();
    if (trust === undefined || trust.hash === c.sentTrust) return;
    c.sentTrust = trust.hash;
    c.res.write(trust.line);
  }

  /** The model changed at `at` (ms): every connected proxy whose overlay changed gets it. */
  changed(at: number): void {
    const byService = new Map<string, { overlay: Overlay; hash: string }>();
    for (const c of this.#connections.values()) this.#push(c, at, byService);
  }

  #push(c: Connection, at: number | null, cache?: Map<string, { overlay: Overlay; hash: string }>): void {
    let entry = cache?.get(c.service);
    if (entry === undefined) {
      const overlay = this.#overlay(c.service);
      entry = { overlay, hash: overlayHash(overlay) };
      cache?.set(c.service, entry);
    }
    if (entry.hash === c.sentHash) return;
    c.sentHash = entry.hash;
    c.sentVersion = entry.overlay.version;
    c.pendingSince = at;
    c.res.write(`${JSON.stringify({ type: 'snapshot', hash: entry.hash, overlay: entry.overlay })}\n`);
  }

  /** POST /v1/push/ack. */
  ack(body: unknown): { recorded: true } {
    const a = parseWith(Ack, body, 'acknowledgement');
    const status = this.#proxies.get(a.node);
    if (status === undefined) throw new ApiError('SKEIN_NOT_FOUND', `no proxy '${a.node}' has a push stream`);
    const at = new Date().toISOString();
    const conn = this.#connections.get(a.node);
    let latencyMs: number | null = null;
    if (conn !== undefined && conn.sentHash === a.hash && conn.pendingSince !== null) {
      latencyMs = Date.now() - conn.pendingSince;
      conn.pendingSince = null;
    }
    if (a.ok) {
      status.running = { version: a.version, hash: a.hash };
      status.lastAck = { version: a.version, hash: a.hash, at, latencyMs };
      this.#events.onAck(a.node, status.service, a.version, latencyMs);
    } else {
      status.lastNack = { version: a.version, hash: a.hash, at, problems: a.problems };
      this.#events.onNack(a.node);
    }
    return { recorded: true };
  }

  close(): void {
    clearInterval(this.#ping);
    for (const c of this.#connections.values()) c.res.destroy();
    this.#connections.clear();
  }
}
