// The bench's multi-protocol origin, for what nginx cannot echo: on one port it serves HTTP/1.1 and h2c (told
// apart by the HTTP/2 connection preface; under TLS by ALPN), the gRPC echo service, and a WebSocket echo at /ws.
// A GET answers "ok\n"; a POST answers with the length of the body it read. Kept cheap: it shares the load CPU.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { WebSocketServer } from 'ws';
import { isGrpc, onGrpcStream } from './grpc.ts';

export interface OriginTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** When given, clients must present a certificate signed by this CA (mTLS). */
  readonly caFile?: string;
}

export interface OriginOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** 0 = any free port. */
  readonly port: number;
  readonly tls?: OriginTls;
}

export interface Origin {
  readonly port: number;
  close(): Promise<void>;
}

export const WEBSOCKET_PATH = '/ws';
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');
const OK_BODY = Buffer.from('ok\n');

function answerHttp1(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method === 'GET' || req.method === 'HEAD') {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': OK_BODY.length });
    res.end(OK_BODY);
    return;
  }
  let bytes = 0;
  req.on('data', (chunk: Buffer) => (bytes += chunk.length));
  req.on('end', () => {
    const body = `${bytes}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
}

function answerHttp2(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  if (isGrpc(headers)) {
    onGrpcStream(stream, headers);
    return;
  }
  stream.on('error', () => {});
  const method = headers[':method'];
  if (method === 'GET' || method === 'HEAD') {
    stream.resume();
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': OK_BODY.length });
    stream.end(OK_BODY);
    return;
  }
  let bytes = 0;
  stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
  stream.on('end', () => {
    if (stream.destroyed) return;
    const body = `${bytes}\n`;
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': body.length });
    stream.end(body);
  });
}

export async function startOrigin(opts: OriginOptions): Promise<Origin> {
  const sockets = new Set<net.Socket>();
  const h1 = http.createServer({ keepAliveTimeout: 300_000, requestTimeout: 0, noDelay: true }, answerHttp1);
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
    ws.on('error', () => {});
  });
  h1.on('upgrade', (req, socket, head) => {
    if (new URL(req.url ?? '/', 'http://origin').pathname !== WEBSOCKET_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  h1.on('clientError', (_err, socket) => socket.destroy());
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: 1000 }, maxSessionMemory: 64 });
  h2.on('stream', answerHttp2);
  h2.on('sessionError', () => {});

  const track = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
  };
  let server: net.Server;
  if (opts.tls !== undefined) {
    const t = opts.tls;
    server = tls.createServer(
      {
        cert: readFileSync(t.certFile),
        key: readFileSync(t.keyFile),
        ALPNProtocols: ['h2', 'http/1.1'],
        ...(t.caFile !== undefined ? { ca: readFileSync(t.caFile), requestCert: true, rejectUnauthorized: true } : {}),
      },
      (socket) => {
        track(socket);
        socket.setNoDelay(true);
        (socket.alpnProtocol === 'h2' ? h2 : h1).emit('connection', socket);
      },
    );
  } else {
    server = net.createServer({ noDelay: true }, (socket) => {
      track(socket);
      // Read the first bytes without consuming them: the HTTP/2 preface decides which server gets the socket.
      socket.once('readable', () => {
        const first: Buffer | null = socket.read();
        if (first === null) return;
        socket.unshift(first);
        const n = Math.min(first.length, H2_PREFACE.length);
        (first.subarray(0, n).equals(H2_PREFACE.subarray(0, n)) ? h2 : h1).emit('connection', socket);
      });
    });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.host ?? '127.0.0.1', port: opts.port, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const ws of wss.clients) ws.terminate();
      for (const socket of sockets) socket.destroy();
      wss.close();
      await closed;
    },
  };
}
