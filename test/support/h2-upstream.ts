// An h2c upstream whose streams the test answers by hand: body sinks, slow or misbehaving servers that reset
// streams or drop the connection. 127.0.0.1, port 0; close() cuts every session it still has.
import http2 from 'node:http2';
import { listenOnLoopback } from './listen.ts';
import type { Upstream } from './proxy.ts';

export type H2StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

export async function startH2Upstream(onStream: H2StreamHandler): Promise<Upstream> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('sessionError', () => {}); // a test that drops connections expects these
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {}); // resets sent or received by the test surface here
    onStream(stream, headers);
  });
  return listenOnLoopback(server, () => {
    for (const s of sessions) s.destroy();
  });
}
