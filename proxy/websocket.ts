// WebSocket upgrades: the request goes through the same pipeline stages to pick a route and endpoint, then
// the upgrade request is written to a fresh upstream connection and bytes flow both ways untouched, so
// frames, pings and close handshakes pass through as the peers sent them.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { errorMessage, FLAG, FLAG_HEADER, type LocalReply, localReply, type ResponseFlag } from './flags.ts';
import type { Http1Context } from './http1.ts';
import { dateHeaderLine, statusLine } from './http1-wire.ts';
import type { Stage } from './pipeline.ts';

/**
 * Which Upgrade requests become tunnels (the request's Upgrade field). Any other upgrade (h2c from
 * `curl --http2`, …) is served as a plain HTTP/1.1 request with Upgrade dropped as hop-by-hop: tunnelling it
 * would hand the client a raw pipe to the upstream past every stage of the pipeline (h2c smuggling).
 */
export function isWebSocketUpgrade(upgrade: string | undefined): boolean {
  return upgrade?.trim().toLowerCase() === 'websocket';
}

/** The local reply to an upgrade that gets no tunnel, with the fields any HTTP/1.1 local reply carries. */
function rejectUpgrade(socket: Duplex, ctx: Http1Context, reply: LocalReply, message: string): void {
  const body = `${message}\n`;
  const requestId = ctx.requestId || ctx.ensureRequestId(ctx.header('x-request-id'));
  socket.end(
    `${statusLine(reply.status)}content-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `${FLAG_HEADER}: ${reply.flag}\r\nx-request-id: ${requestId}\r\n${dateHeaderLine()}connection: close\r\n\r\n${body}`,
  );
  // Read (and drop) until the client's FIN, so the connection closes rather than waiting half-open.
  socket.resume();
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
export function onUpgrade(stages: readonly Stage[], ctx: Http1Context, socket: Duplex, head: Buffer): void {
  try {
    for (const stage of stages) {
      const reply = stage.onRequest(ctx);
      if (reply !== null) {
        rejectUpgrade(socket, ctx, reply, reply.message);
        ctx.finish(reply.status, reply.flag);
        return;
      }
    }
  } catch (err) {
    // The exception boundary, as in pipeline.ts: a stage that throws fails this upgrade alone.
    const r = localReply(FLAG.InternalError);
    ctx.listener.log.error('request failed', {
      listener: ctx.listener.name,
      requestId: ctx.ensureRequestId(ctx.header('x-request-id')),
      flag: r.flag,
      error: errorMessage(err),
    });
    rejectUpgrade(socket, ctx, r, r.message);
    ctx.finish(r.status, r.flag);
    return;
  }
  const ep = ctx.endpoint!;
  const cluster = ctx.cluster!;
  // From here the tunnel is the upstream's time (skein_proxy_overhead_seconds counts only the setup).
  ctx.upstreamStartMs = performance.now();
  const upstream = net.connect({ host: ep.host, port: ep.port, noDelay: true });
  const connectMs = cluster.config.timeouts.connectMs;
  upstream.setTimeout(connectMs);
  let connected = false;
  const fail = (flag: ResponseFlag, message: string) => {
    upstream.destroy();
    const r = localReply(flag);
    if (!connected) rejectUpgrade(socket, ctx, r, `${r.message}: ${message}`);
    else socket.destroy();
    ctx.finish(connected ? 101 : r.status, flag);
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
  upstream.once('connect', () => {
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
  });
}
