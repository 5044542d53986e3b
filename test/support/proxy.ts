// Starts a real Skein proxy in the test process from a config object (ports 0 = any free port) and stops it
// afterwards; plus small real upstream servers (HTTP/1.1, h2c) that echo what they received.
import http from 'node:http';
import { createLogger, type Logger } from '../../src/log.ts';
import { ProxyServer } from '../../proxy/server.ts';
import { startH2Upstream } from './h2-upstream.ts';
import { listenOnLoopback } from './listen.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';

export interface RunningProxy {
  proxy: ProxyServer;
  /** Port of the named listener (default: the first). */
  port(listener?: string): number;
  url(listener?: string): string;
  adminUrl(): string;
  logs: string[];
  close(): Promise<void>;
}

export async function startProxy(input: ConfigInput, opts: { baseDir?: string } = {}): Promise<RunningProxy> {
  const logs: string[] = [];
  const log: Logger = createLogger(process.env.SKEIN_TEST_LOG === 'debug' ? 'debug' : 'info', (line) => {
    logs.push(line);
    if (process.env.SKEIN_TEST_LOG) process.stderr.write(line);
  });
  const proxy = new ProxyServer({ log, baseDir: opts.baseDir ?? process.cwd() });
  await proxy.apply(parseConfig(input, 'test'));
  const first = parseConfig(input, 'test').listeners[0].name;
  const port = (name = first) => {
    const a = proxy.listenerAddress(name);
    if (a === null) throw new Error(`listener ${name} not bound`);
    return a.port;
  };
  return {
    proxy,
    port,
    url: (name) => `http://127.0.0.1:${port(name)}`,
    adminUrl: () => `http://127.0.0.1:${proxy.adminPort}`,
    logs,
    close: async () => {
      await proxy.drain(500);
    },
  };
}

/** Quick config: one HTTP listener on a free port routing everything to `upstreams`. */
export function quickConfig(upstreams: string[], extra: Partial<ConfigInput> = {}): ConfigInput {
  return {
    service: 'test-client',
    admin: { address: '127.0.0.1:0' },
    listeners: [{ name: 'main', address: '127.0.0.1:0', routes: [{ name: 'default', cluster: 'upstream' }] }],
    clusters: [
      { name: 'upstream', discovery: { type: 'static', endpoints: upstreams.map((address) => ({ address })) } },
    ],
    ...extra,
  };
}

export interface Upstream {
  address: string;
  port: number;
  close(): Promise<void>;
}

export interface EchoBody {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  server: string;
}

/** HTTP/1.1 server that answers every request with JSON describing it (and `name` to tell servers apart). */
export async function startEchoUpstream(name = 'echo', handler?: http.RequestListener): Promise<Upstream> {
  const server = http.createServer(
    handler ??
      ((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body: EchoBody = {
            method: req.method!,
            url: req.url!,
            headers: req.headers,
            body: Buffer.concat(chunks).toString(),
            server: name,
          };
          const text = JSON.stringify(body);
          res.writeHead(200, {
            'content-type': 'application/json',
            'x-served-by': name,
            'content-length': Buffer.byteLength(text),
          });
          res.end(text);
        });
      }),
  );
  return listenOnLoopback(server, () => server.closeAllConnections());
}

/** h2c server answering every stream with JSON describing it. */
export function startH2EchoUpstream(name = 'h2echo'): Promise<Upstream> {
  return startH2Upstream((stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const text = JSON.stringify({
        method: headers[':method'],
        url: headers[':path'],
        headers,
        body: Buffer.concat(chunks).toString(),
        server: name,
      });
      stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-served-by': name });
      stream.end(text);
    });
  });
}
