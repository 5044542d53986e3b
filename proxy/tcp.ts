// TCP passthrough for listeners declared `protocol: tcp`: each downstream connection is one request through
// the listener's chain (its request stages pick the cluster and endpoint; its finish stages see how the
// connection ended), paired with one upstream connection, and bytes are piped both ways.
import { connectUpstream } from './mtls/upstream.ts';
import { peerOf } from './peer.ts';
import { originalDstOf } from './original-dst.ts';
import type net from 'node:net';
import type { Readable } from 'node:stream';
import { RequestContext } from './context.ts';
import { FLAG, type RequestFlag, type ResponseFlag, type UpstreamError } from './flags.ts';
import { runTunnel } from './pipeline.ts';
import type { ListenerScope } from './scope.ts';
import type { FlatHeaders } from './upstream/types.ts';

/** A passthrough connection as the stages see it: no method, path or headers; the peer's address. */
class TcpContext extends RequestContext {
  readonly protocol = 'TCP';
  readonly downstream: net.Socket;

  constructor(listener: ListenerScope, downstream: net.Socket) {
    super(listener);
    this.downstream = downstream;
    this.remoteAddress = downstream.remoteAddress ?? '';
    this.peer = peerOf(downstream);
    this.originalDst = originalDstOf(downstream);
  }

  header(): string | undefined {
    return undefined;
  }
  upstreamHeaders(): FlatHeaders {
    return [];
  }
  requestBody(): { body: Readable | null; contentLength: number } {
    return { body: null, contentLength: 0 };
  }
  /** TCP has no reply to write: the connection is closed, and its flag counted. */
  replyLocal(status: number, flag: RequestFlag): void {
    this.listener.log.debug('tcp: connection refused by the pipeline', { listener: this.listener.name, flag });
    this.downstream.destroy();
    this.finish(status, flag);
  }
  respond(): void {}
  write(): boolean {
    return true;
  }
  end(): void {}
  fail(err: UpstreamError): void {
    this.replyLocal(0, err.flag);
  }
  abortDownstream(): void {
    this.downstream.destroy();
  }
  protected override report(): void {
    this.listener.stats.onTcpConnectionEnd(this.listener.name, this.flag);
  }
}

/** Raw TCP under mTLS offers no application protocol. */
const NO_ALPN: string[] = [];

export function onTcpConnection(listener: ListenerScope, downstream: net.Socket): void {
  // A passthrough connection counts as one request in flight (the context does it): a drain waits for it (up
  // to the deadline), as Envoy's does, since the proxy cannot tell an idle connection from a busy one.
  runTunnel(new TcpContext(listener, downstream), connect);
}

function connect(request: RequestContext): void {
  const ctx = request as TcpContext;
  const ep = ctx.endpoint!;
  const downstream = ctx.downstream;
  ctx.upstreamStartMs = performance.now();
  // Half-open on both sides: a peer's end of stream is passed on as a FIN (by pipe) while the other
  // direction keeps flowing, as for protocols that delimit a request by closing the sending side.
  const upstream = connectUpstream(
    { host: ep.host, port: ep.port, mtls: ep.mtls, alpn: NO_ALPN, allowHalfOpen: true },
    () => onConnect(),
  );
  const connectMs = ctx.cluster!.config.timeouts.connectMs;
  upstream.setTimeout(connectMs, () => upstream.destroy(new Error(`connect timeout after ${connectMs} ms`)));
  let connected = false;
  const close = (flag: ResponseFlag | '') => {
    if (ctx.finished) return;
    upstream.destroy();
    downstream.destroy();
    ctx.finish(0, flag);
  };
  // A socket that closed after both of its directions ended cleanly leaves the other to flush what it was
  // given (pipe has ended it; it closes itself, and its own handler then finishes). Any other close
  // (error, reset, destroy) cuts the pair.
  const onClose = (socket: net.Socket, other: net.Socket) => () => {
    if (socket.readableEnded && socket.writableFinished && !other.destroyed) return;
    close('');
  };
  function onConnect(): void {
    connected = true;
    upstream.setTimeout(0);
    upstream.pipe(downstream);
    downstream.pipe(upstream);
  }
  upstream.on('error', () => close(connected ? FLAG.UpstreamConnectionTermination : FLAG.UpstreamConnectFailure));
  downstream.on('error', () => close(FLAG.DownstreamDisconnect));
  upstream.once('close', onClose(upstream, downstream));
  downstream.once('close', onClose(downstream, upstream));
}
