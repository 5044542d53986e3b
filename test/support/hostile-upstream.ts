// A hostile HTTP/1.1 upstream on a raw socket: it waits for the end of a request head, then writes exactly the
// bytes a test scripts (a bad status line, forbidden fields, a truncated body, an HTTP/2 frame...) and closes
// or keeps the connection as told. node:http would refuse to send most of these, hence node:net.
// Requests whose path starts with /ok get a well-formed response (okResponse), so one server serves a hostile request and
// the normal request after it. 127.0.0.1, port 0; close() cuts every connection it still has.
import net from 'node:net';
import { listenOnLoopback } from './listen.ts';
import type { Upstream } from './proxy.ts';

/** What to do with a connection once a request head has arrived on it. */
export interface HostileAnswer {
  /** Written as given (latin1 for strings). */
  readonly bytes: string | Buffer;
  /** After writing: 'close' (FIN), 'destroy' (no FIN wait) or 'keep' (hold the connection open). */
  readonly then: 'close' | 'destroy' | 'keep';
}

/** The well-formed answer to a path starting with /ok: "ok" for /ok itself, else the path (so a response
 *  handed to the wrong request shows). */
export function okResponse(path: string): string {
  const body = path === '/ok' ? 'ok\n' : `${path}\n`;
  return `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
}

export interface HostileUpstream extends Upstream {
  /** Requests seen by path, in order. */
  readonly paths: string[];
}

/**
 * `answer(path)` decides what each request gets; a path starting with /ok always gets okResponse and the
 * connection stays open (keep-alive). `answer` returning null means: close at once without writing.
 */
export async function startHostileUpstream(answer: (path: string) => HostileAnswer | null): Promise<HostileUpstream> {
  const sockets = new Set<net.Socket>();
  const paths: string[] = [];
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // the proxy resets connections it gives up on
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      // One request at a time per connection: the proxy's pool never pipelines.
      for (let end = head.indexOf('\r\n\r\n'); end >= 0; end = head.indexOf('\r\n\r\n')) {
        const path = head.slice(head.indexOf(' ') + 1, head.indexOf(' ', head.indexOf(' ') + 1));
        head = head.slice(end + 4); // requests in these tests carry no body
        paths.push(path);
        if (path.startsWith('/ok')) {
          socket.write(okResponse(path), 'latin1');
          continue;
        }
        const a = answer(path);
        if (a === null) {
          socket.destroy();
          return;
        }
        socket.write(a.bytes, typeof a.bytes === 'string' ? 'latin1' : undefined);
        if (a.then === 'close') socket.end();
        else if (a.then === 'destroy') socket.destroy();
        return;
      }
    });
  });
  const upstream = await listenOnLoopback(server, () => {
    for (const s of sockets) s.destroy();
  });
  return { ...upstream, paths };
}

/**
 * A hostile h2c upstream on a raw socket: after the client's preface it sends its SETTINGS, and answers stream 1
 * with a HEADERS frame whose :status is `status` (node:http2 refuses to send anything outside 100-599), then
 * closes the connection, so the next request opens a new one.
 */
export async function startHostileH2Upstream(status: string): Promise<Upstream> {
  const sockets = new Set<net.Socket>();
  // HPACK: literal field without indexing, name = static table entry 8 (:status), raw (not Huffman) value.
  const block = Buffer.concat([Buffer.from([0x08, status.length]), Buffer.from(status, 'latin1')]);
  const frame = (type: number, flags: number, stream: number, payload: Buffer): Buffer => {
    const h = Buffer.alloc(9);
    h.writeUIntBE(payload.length, 0, 3);
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(stream, 5);
    return Buffer.concat([h, payload]);
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let seen = Buffer.alloc(0);
    let settingsSent = false;
    let answered = false;
    socket.on('data', (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      // A server's preface is its SETTINGS, sent once the client's preface is in (the proxy opens no stream
      // before it sees them).
      if (!settingsSent && seen.length >= 24) {
        settingsSent = true;
        socket.write(frame(4, 0, 0, Buffer.alloc(0)));
      }
      // The client's first HEADERS frame (type 1) follows its preface and SETTINGS; answer once it is in.
      if (answered || !hasFrameOfType(seen.subarray(24), 1)) return;
      answered = true;
      socket.write(frame(1, 0x4 | 0x1, 1, block)); // HEADERS, END_HEADERS | END_STREAM
      socket.end();
    });
  });
  return listenOnLoopback(server, () => {
    for (const s of sockets) s.destroy();
  });
}

function hasFrameOfType(frames: Buffer, type: number): boolean {
  for (let at = 0; at + 9 <= frames.length; at += 9 + frames.readUIntBE(at, 3))
    if (frames[at + 3] === type) return true;
  return false;
}
