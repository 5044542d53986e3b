// Peer target for `skein bench`: the http-proxy package, the Node reverse proxy most projects reach for, set up
// the way its README suggests for throughput — a keep-alive http.Agent to the origin — and forwarding WebSocket
// upgrades too. Usage: node bench/targets/http-proxy.ts <listenPort> <originPort>   (listens on 127.0.0.1 only)
import http from 'node:http';
import httpProxy from 'http-proxy';

const [listenPort, originPort] = process.argv.slice(2).map(Number);
if (!Number.isInteger(listenPort) || !Number.isInteger(originPort)) {
  process.stderr.write('usage: node bench/targets/http-proxy.ts <listenPort> <originPort>\n');
  process.exit(2);
}

// Without an agent http-proxy sends `Connection: close` upstream and opens a connection per request.
const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 128 });
const proxy = httpProxy.createProxyServer({ target: `http://127.0.0.1:${originPort}`, agent });

let errors = 0;
proxy.on('error', (err, _req, resOrSocket) => {
  // Counted and reported once a second at most: a flood of upstream errors must not become a flood of writes.
  if (errors++ === 0)
    setTimeout(() => {
      process.stderr.write(`upstream errors: ${errors} (last: ${err.message})\n`);
      errors = 0;
    }, 1000).unref();
  if (resOrSocket instanceof http.ServerResponse) {
    if (!resOrSocket.headersSent) resOrSocket.writeHead(502);
    resOrSocket.end();
  } else {
    resOrSocket.destroy();
  }
});

const server = http.createServer((req, res) => proxy.web(req, res));
server.on('upgrade', (req, socket, head) => proxy.ws(req, socket, head));
server.listen(listenPort, '127.0.0.1');

// Exit promptly on the harness's SIGTERM; keep-alive client sockets would otherwise hold server.close() open.
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close();
  agent.destroy();
  proxy.close();
  process.exit(0);
});
