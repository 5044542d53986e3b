// WebSocket upgrades: the request runs the listener's request stages like any other (route, endpoint pick),
// then the upgrade request is written to a fresh upstream connection and bytes flow both ways untouched, so
// frames, pings and close handshakes pass through as the peers sent them. The finish phase runs when the
// tunnel closes. A local reply before the tunnel opens is written on the upgrade socket (Http1Context).
import { connectUpstream } from './mtls/upstream.ts';
import type { Duplex } from 'node:stream';
import type { RequestContext } from './context.ts';
import { FLAG, localReply, type ReplyFlag } from './flags.ts';
import type { Http1Context } from './http1.ts';
import { runTunnel } from './pipeline.ts';

/**
 * Which Upgrade requests become tunnels (the request's Upgrade field). Any other upgrade (h2c from
 * `curl --http2`, …) is served as a plain HTTP/1.1 request with Upgrade dropped as hop-by-hop: tunnelling it
 * would hand the client a raw pipe to the upstream past every stage of the pipeline (h2c smuggling).
 */
/** ALPN under mTLS: an Upgrade is HTTP/1.1. */
const HTTP1_ALPN = ['http/1.1'];

export function isWebSocketUpgrade(upgrade: string | undefined): boolean {
  return upgrade?.trim().toLowerCase() === 'websocket';
}

/** Serialises the upgrade request for the upstream, with the mesh's headers added. */
function upgradeHead(ctx: Http1Context): string {
  let head = `${ctx.method} ${ctx.url} HTTP/1.1\r\nhost: ${ctx.authority}\r\n`;
  const h = ctx.upstreamHeaders();
  for (let i = 0; i < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`;
  // Upgrade and Connection are hop-by-hop, but an upgrade must carry them to the next hop.
  head += `connection: upgrade\r\nupgrade: ${ctx.upgrade}\r\n\r\n`;
  return head;
}

/** `ctx` is the parsed upgrade request; the socket is ours from here on, `head` is what followed the request. */
export function onUpgrade(ctx: Http1Context, socket: Duplex, head: Buffer): void {
  ctx.tunnel = socket;
  ctx.tunnelHead = head;
  runTunnel(ctx, openTunnel);
}

function openTunnel(request: RequestContext): void {
  const ctx = request as Http1Context;
  const socket = ctx.tunnel!;
  const head = ctx.tunnelHead;
  const ep = ctx.endpoint!;
  const cluster = ctx.cluster!;
  // From here the tunnel is the upstream's time (skein_proxy_overhead_seconds counts only the setup).
  ctx.upstreamStartMs = performance.now();
  const upstream = connectUpstream({ host: ep.host, port: ep.port, mtls: ep.mtls, alpn: HTTP1_ALPN }, () =>
    onConnect(),
  );
  const connectMs = cluster.config.timeouts.connectMs;
  upstream.setTimeout(connectMs);
  let connected = false;
  const fail = (flag: ReplyFlag, message: string) => {
    upstream.destroy();
    if (connected) {
      socket.destroy();
      ctx.finish(101, flag);
      return;
    }
    const r = localReply(flag);
    ctx.replyLocal(r.status, flag, `${r.message}: ${message}`, r.grpcStatus);
  };
  upstream.once('timeout', () => fail(FLAG.UpstreamConnectFailure, `connect timeout after ${connectMs} ms`));
  upstream.once('error', (err) =>
    fail(connected ? FLAG.UpstreamConnectionTermination : FLAG.UpstreamConnectFailure, err.message),
  );
  socket.on('error', () => upstream.destroy());
  socket.once('close', () => {
    if (connected) return;
    upstream.destroy();
    ctx.finish(499, FLAG.DownstreamDisconnect);
  });
  const onConnect = () => {
    connected = true;
    upstream.setTimeout(0);
    upstream.write(upgradeHead(ctx), 'latin1');
    if (head.length > 0) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
    const done = () => {
      upstream.destroy();
      socket.destroy();
      ctx.finish(101, '');
    };
    upstream.once('close', done);
    socket.once('close', done);
  };
}
