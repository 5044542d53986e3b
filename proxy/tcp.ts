// TCP passthrough for listeners declared `protocol: tcp`: each downstream connection is paired with one
// upstream connection to an endpoint the cluster's balancer picks, and bytes are piped both ways.
import net from 'node:net';
import type { Cluster } from './cluster.ts';
import { FLAG, type ResponseFlag } from './flags.ts';
import type { ListenerRuntime } from './listener.ts';

export function onTcpConnection(listener: ListenerRuntime, cluster: Cluster, downstream: net.Socket): void {
  const ep = cluster.pick({ header: () => undefined, remoteAddress: downstream.remoteAddress ?? '' });
  if (ep === undefined) {
    listener.log.debug('tcp: no endpoint', { cluster: cluster.name });
    listener.countTcp(FLAG.NoHealthyUpstream);
    downstream.destroy();
    return;
  }
  ep.active++;
  ep.requestsTotal++;
  // A passthrough connection counts as one request in flight: a drain waits for it (up to the deadline),
  // as Envoy's does, since the proxy cannot tell an idle connection from a busy one.
  listener.stats.inFlight++;
  // Half-open on both sides: a peer's end of stream is passed on as a FIN (by pipe) while the other
  // direction keeps flowing, as for protocols that delimit a request by closing the sending side.
  const upstream = net.connect({ host: ep.host, port: ep.port, noDelay: true, allowHalfOpen: true });
  const connectMs = cluster.config.timeouts.connectMs;
  upstream.setTimeout(connectMs, () => upstream.destroy(new Error(`connect timeout after ${connectMs} ms`)));
  let connected = false;
  let closed = false;
  const close = (flag: ResponseFlag | '') => {
    if (closed) return;
    closed = true;
    listener.stats.inFlight--;
    ep.active--;
    if (flag !== '') ep.failuresTotal++;
    listener.countTcp(flag);
    upstream.destroy();
    downstream.destroy();
  };
  // A socket that closed after both of its directions ended cleanly leaves the other to flush what it was
  // given (pipe has ended it; it closes itself, and its own handler then finishes). Any other close
  // (error, reset, destroy) cuts the pair.
  const onClose = (socket: net.Socket, other: net.Socket) => () => {
    if (socket.readableEnded && socket.writableFinished && !other.destroyed) return;
    close('');
  };
  upstream.once('connect', () => {
    connected = true;
    upstream.setTimeout(0);
    upstream.pipe(downstream);
    downstream.pipe(upstream);
  });
  upstream.on('error', () => close(connected ? FLAG.UpstreamConnectionTermination : FLAG.UpstreamConnectFailure));
  downstream.on('error', () => close(FLAG.DownstreamDisconnect));
  upstream.once('close', onClose(upstream, downstream));
  downstream.once('close', onClose(downstream, upstream));
}
