// The bundled sample service for `skein mesh`: answers every request with JSON describing what it received,
// so a person can see the mesh's headers (x-request-id, x-forwarded-for, x-source-service...) arrive.
// GET /slow?ms=N waits N ms first; GET /status/N answers with status N.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export async function startSampleService(host: string, port: number, name = 'sample-service'): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://sample');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = url.pathname.startsWith('/status/') ? Number(url.pathname.slice(8)) || 200 : 200;
      const delayMs = url.pathname === '/slow' ? Math.min(Number(url.searchParams.get('ms')) || 1000, 60_000) : 0;
      setTimeout(() => {
        const body = JSON.stringify(
          {
            service: name,
            method: req.method,
            path: req.url,
            headers: req.headers,
            bodyBytes: Buffer.concat(chunks).length,
          },
          null,
          2,
        );
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) + 1 });
        res.end(`${body}\n`);
      }, delayMs);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

export function boundPort(server: http.Server): number {
  return (server.address() as AddressInfo).port;
}
