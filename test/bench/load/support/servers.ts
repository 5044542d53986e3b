// Small real servers for the load-generator tests, on 127.0.0.1 port 0, each recording what arrived and
// closing everything it accepted.
import http from 'node:http';
import net from 'node:net';

export interface Arrival {
  /** performance.now() when the request head arrived. */
  readonly at: number;
  /** Which connection (in accept order) carried it. */
  readonly conn: number;
  readonly method: string;
  readonly bodyBytes: number;
}

export interface TestServer {
  readonly port: number;
  readonly url: string;
  readonly arrivals: Arrival[];
  close(): Promise<void>;
}

/** Decides the answer to one request; `arrival` is already recorded when it runs. */
export type Answer = (req: http.IncomingMessage, res: http.ServerResponse, arrival: Arrival) => void;

export const answerOk: Answer = (_req, res) => {
  res.writeHead(200, { 'content-length': 3 });
  res.end('ok\n');
};

export async function startHttp1Server(answer: Answer = answerOk): Promise<TestServer> {
  const arrivals: Arrival[] = [];
  const sockets = new Set<net.Socket>();
  const connIds = new WeakMap<net.Socket, number>();
  let accepted = 0;
  const server = http.createServer({ keepAliveTimeout: 60_000, noDelay: true }, (req, res) => {
    const at = performance.now();
    let bodyBytes = 0;
    req.on('data', (c: Buffer) => (bodyBytes += c.length));
    req.on('end', () => {
      const arrival = { at, conn: connIds.get(req.socket) ?? -1, method: req.method ?? '', bodyBytes };
      arrivals.push(arrival);
      answer(req, res, arrival);
    });
  });
  server.on('connection', (socket) => {
    connIds.set(socket, accepted++);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    arrivals,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * An answer that stalls once: requests arriving in [start, start + stallMs) after the first request are held
 * and all answered when the stall ends; everything else is answered at once.
 */
export function stallOnce(startAfterMs: number, stallMs: number): Answer {
  let first: number | undefined;
  const held: http.ServerResponse[] = [];
  let released = false;
  return (_req, res, arrival) => {
    first ??= arrival.at;
    const t = arrival.at - first;
    if (!released && t >= startAfterMs && t < startAfterMs + stallMs) {
      if (held.length === 0) {
        setTimeout(
          () => {
            released = true;
            for (const r of held.splice(0)) answerOk(_req, r, arrival);
          },
          startAfterMs + stallMs - t,
        );
      }
      held.push(res);
      return;
    }
    answerOk(_req, res, arrival);
  };
}

/** A port nobody listens on: bound, then closed. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
