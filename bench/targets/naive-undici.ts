// Peer target for `skein bench`: the reverse proxy most Node code would write first — node:http server,
// undici Pool to the origin, request and response headers copied into fresh objects on every request.
// Usage: node bench/targets/naive-undici.ts <listenPort> <originPort>   (listens on 127.0.0.1 only)
import http from 'node:http';
import { Pool } from 'undici';

const [listenPort, originPort] = process.argv.slice(2).map(Number);
if (!Number.isInteger(listenPort) || !Number.isInteger(originPort)) {
  process.stderr.write('usage: node bench/targets/naive-undici.ts <listenPort> <originPort>\n');
  process.exit(2);
}

// undici's defaults: keep-alive, unlimited connections, no pipelining — what a first version would use.
const pool = new Pool(`http://127.0.0.1:${originPort}`);

// Connection-level headers describe one hop and must not be forwarded (RFC 9110 §7.6.1); undici rejects some of them.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);

function copyHeaders(headers: http.IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

const server = http.createServer((req, res) => {
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  pool
    .request({
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: copyHeaders(req.headers),
      body: hasBody ? req : null,
    })
    .then(
      (upstream) => {
        res.writeHead(upstream.statusCode, copyHeaders(upstream.headers));
        upstream.body.pipe(res);
      },
      (err: unknown) => {
        process.stderr.write(`upstream error: ${err instanceof Error ? err.message : String(err)}\n`);
        if (!res.headersSent) res.writeHead(502);
        res.end();
      },
    );
});

server.listen(listenPort, '127.0.0.1');

// Exit promptly on the harness's SIGTERM; keep-alive client sockets would otherwise hold server.close() open.
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close();
  pool.destroy().finally(() => process.exit(0));
});
