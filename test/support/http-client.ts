// A plain HTTP/1.1 client for end-to-end tests: one fresh connection per request (no agent, no keep-alive), so a
// test controls exactly when connections open, and every request is bounded by a timeout.
import http, { type IncomingHttpHeaders } from 'node:http';
import net from 'node:net';

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** GET `url` on a new connection; rejects on a connection error, a cut response or after `timeoutMs`. */
export function httpGet(
  url: string,
  opts: { headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpResult> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${url}: no response within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Opens and closes a TCP connection: 'connected', or the error code (ECONNREFUSED, ...) that stopped it. */
export function tryConnect(port: number, host = '127.0.0.1', timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      resolve('ETIMEDOUT');
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}
