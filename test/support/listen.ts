// Test servers on 127.0.0.1 with any free port, and a close that first drops their open connections.
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Upstream } from './proxy.ts';

/** Listens on 127.0.0.1 (any free port) and returns the Upstream; `close` first drops what `dropConnections` ends. */
export async function listenOnLoopback(server: net.Server, dropConnections: () => void): Promise<Upstream> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((r) => {
        dropConnections();
        server.close(() => r());
      }),
  };
}
