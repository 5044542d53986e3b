// Transparent capture's first step: where a redirected connection was going. `skein redirect` (iptables REDIRECT
// in the pod's network namespace) sends the app's outbound TCP to the outbound listener and the mesh's inbound
// TCP to the inbound listener; the kernel keeps the destination the client asked for in its NAT entry, read here
// with getsockopt(SO_ORIGINAL_DST) through the native addon (native/original-dst.c). The listener reads it once
// per accepted connection, only on listeners with `originalDst: true`, and keeps it on the socket; the route
// stage looks it up (stages/route.ts) and the original-dst cluster connects to it (cluster.ts).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

/** The destination a client connected to before the redirect. `key` is "ip:port" ("[v6]:port"): the form of
 *  clusters' `serviceAddresses`, so the route lookup is one Map get. */
export interface OriginalDst {
  readonly key: string;
  readonly host: string;
  readonly port: number;
}

interface Addon {
  /** The "ip:port" key, or -errno (ENOENT: the connection was not redirected). */
  originalDst(fd: number): string | number;
}

export interface AddonState {
  readonly addon: Addon | null;
  /** Why it is not there ('' when loaded): said by every listener that needs it. */
  readonly why: string;
}

let loaded: AddonState | null = null;

/** The addon, loaded on first use: a proxy without a capture listener never opens it (no dlopen, no memory). */
export function originalDstAddon(): AddonState {
  return (loaded ??= loadAddon());
}

function loadAddon(): AddonState {
  if (process.platform !== 'linux') return { addon: null, why: `SO_ORIGINAL_DST is Linux-only (${process.platform})` };
  // proxy/original-dst.ts in a checkout, dist/proxy/original-dst.js when built: the addon is native/ at the root.
  const candidates = ['../native/original-dst.node', '../../native/original-dst.node'].map(
    (p) => new URL(p, import.meta.url),
  );
  const found = candidates.find((u) => existsSync(u));
  if (found === undefined)
    return { addon: null, why: 'native/original-dst.node is not built (npm run build needs a C compiler: cc)' };
  try {
    const addon = createRequire(import.meta.url)(found.pathname) as Addon;
    if (typeof addon.originalDst !== 'function') return { addon: null, why: `${found.pathname} has no originalDst()` };
    return { addon, why: '' };
  } catch (err) {
    return { addon: null, why: `${found.pathname} does not load: ${(err as Error).message}` };
  }
}

/** "10.96.0.10:80" → host and port (keys come from the addon or from a validated config: well formed). */
export function parseOriginalDstKey(key: string): OriginalDst {
  const colon = key.lastIndexOf(':');
  const host = key.charCodeAt(0) === 0x5b /* [ */ ? key.slice(1, colon - 1) : key.slice(0, colon);
  return { key, host, port: Number(key.slice(colon + 1)) };
}

/**
 * The connection's original destination; null when it was not redirected (a client that dialed the listener
 * itself: the NAT entry, if any, names the listener's own address, and passing that on would loop), when the
 * addon is missing, or when the socket has no fd (not a TCP socket of this process). `listenPort` is the
 * listener's bound port: only a destination on that port can be the listener itself, so only then is the socket's
 * own address asked for (a getsockname; a redirected connection's port is the app's, and skips it).
 */
export function readOriginalDst(socket: Socket, listenPort: number): OriginalDst | null {
  const addon = (loaded ??= loadAddon()).addon;
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (addon === null || typeof fd !== 'number' || fd < 0) return null;
  const key = addon.originalDst(fd);
  if (typeof key !== 'string') return null;
  const dst = parseOriginalDstKey(key);
  if (dst.port !== listenPort) return dst;
  const local = socket.localAddress ?? '';
  if (dst.port === socket.localPort && (dst.host === local || `::ffff:${dst.host}` === local)) return null;
  return dst;
}

/** Where an accepted connection keeps its original destination (a symbol, as peer.ts keeps the peer). */
export const kOriginalDst = Symbol('skein.originalDst');

type Captured = Socket & { [kOriginalDst]?: OriginalDst | null };

export function originalDstOf(socket: Socket | undefined): OriginalDst | null {
  return socket === undefined ? null : ((socket as Captured)[kOriginalDst] ?? null);
}

export function setOriginalDst(socket: Socket, dst: OriginalDst | null): void {
  (socket as Captured)[kOriginalDst] = dst;
}
