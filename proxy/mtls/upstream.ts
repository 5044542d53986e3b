// Connections to upstream endpoints: plain TCP, or mTLS with the mesh identity when the cluster calls the
// endpoint over it. A server is checked as a client is (identity.ts verify): a refused one never carries a byte.
import net from 'node:net';
import tls from 'node:tls';
import type { MeshIdentity, RefusalReason } from './identity.ts';

export interface UpstreamMtls {
  readonly identity: MeshIdentity;
  /** The cluster's `mtls.serverIds`, compiled; null: any id of the trust domain. */
  readonly expected: ((id: string) => boolean) | null;
  /** Each handshake's outcome (skein_mtls_handshakes_total, the log). */
  readonly report: (result: 'ok' | RefusalReason | 'handshake-error', detail: string) => void;
}

export interface ConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly mtls: UpstreamMtls | null;
  /** ALPN offered under mTLS (['http/1.1'], ['h2'], [] for raw TCP). */
  readonly alpn: string[];
  readonly allowHalfOpen?: boolean;
}

/**
 * Opens the connection. `onReady` runs once it can carry bytes: TCP connected, or the mTLS handshake done and
 * the server verified. A refused server is destroyed with an error that says why ('error' follows, not onReady).
 */
export function connectUpstream(o: ConnectOptions, onReady: () => void): net.Socket {
  if (o.mtls === null) {
    const socket = net.connect({ host: o.host, port: o.port, noDelay: true, allowHalfOpen: o.allowHalfOpen });
    socket.once('connect', onReady);
    return socket;
  }
  const m = o.mtls;
  // allowHalfOpen is passed on to the TLSSocket (Node's tls.connect), though its type does not list it.
  const options: tls.ConnectionOptions & { allowHalfOpen?: boolean } = {
    host: o.host,
    port: o.port,
    allowHalfOpen: o.allowHalfOpen,
    ...m.identity.clientOptions(o.alpn),
  };
  const socket = tls.connect(options);
  socket.setNoDelay(true);
  let tcpUp = false;
  let verified = false;
  socket.once('connect', () => (tcpUp = true));
  socket.once('secureConnect', () => {
    const check = m.identity.verify(socket, m.expected);
    if (!check.ok) {
      m.report(check.reason, check.detail);
      socket.destroy(new Error(`mTLS: server refused (${check.reason}): ${check.detail}`));
      return;
    }
    verified = true;
    m.report('ok', check.spiffeId);
    onReady();
  });
  socket.once('error', (err) => {
    if (tcpUp && !verified && !err.message.startsWith('mTLS:')) m.report('handshake-error', err.message);
  });
  return socket;
}

/**
 * Refused handshakes logged at most once a second per key (a reason, or a cluster and reason): a peer refused
 * on every connect, or a flood of bad clients, must not flood the log. Every refusal is still counted.
 */
export class RefusalLog {
  readonly #last = new Map<string, number>();

  /** Whether a line for `key` is due now (and, if so, the next one waits a second). */
  due(key: string): boolean {
    const now = performance.now();
    if (now - (this.#last.get(key) ?? -Infinity) < 1_000) return false;
    this.#last.set(key, now);
    return true;
  }
}
