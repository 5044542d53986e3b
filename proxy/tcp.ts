// TCP passthrough for listeners declared `protocol: tcp`: each downstream connection is paired with one
// upstream connection to an endpoint the cluster's balancer picks, and bytes are piped both ways.
import net from 'node:net';
import type { Cluster } from './cluster.ts';
import type { ListenerRuntime } from './listener.ts';

export function onTcpConnection(listener: ListenerRuntime, cluster: Cluster, downstream: net.Socket): void {
  const ep = cluster.pick({ header: () => undefined, remoteAddress: downstream.remoteAddress ?? '' });
  if (ep === undefined) {
    listener.log.debug('tcp: no endpoint', { cluster: cluster.name });
    listener.countTcp('UH');
    downstream.destroy();
    return;
  }
  ep.active++;
  ep.requestsTotal++;
  const upstream = net.connect({ host: ep.host, port: ep.port, noDelay: true });
  const connectMs = cluster.config.timeouts.connectMs;
  upstream.setTimeout(connectMs, () => upstream.destroy(new Error(`connect timeout after ${connectMs} ms`)));
  let connected = false;
  let closed = false;
  const close = (flag: string) => {
    if (closed) return;
    closed = true;
    ep.active--;
    if (flag !== '') ep.failuresTotal++;
    listener.countTcp(flag);
    upstream.destroy();
    downstream.destroy();
  };
  upstream.once('connect', () => {
    connected = true;
    upstream.setTimeout(0);
    upstream.pipe(downstream);
    downstream.pipe(upstream);
  });
  upstream.on('error', () => close(connected ? 'UC' : 'UF'));
  downstream.on('error', () => close('DC'));
  upstream.once('close', () => close(''));
  downstream.once('close', () => close(''));
}
