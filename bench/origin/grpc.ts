// The bench origin's gRPC service skein.bench.Echo (echo.proto), answered by hand over node:http2 without a
// gRPC library: Unary echoes the request message; ServerStream answers with that message N times, N from the
// `x-stream-messages` request header (default 10). Anything else gets a trailers-only UNIMPLEMENTED.
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { GrpcFrameReader, SERVER_STREAM_PATH, STREAM_MESSAGES_HEADER, UNARY_PATH } from '../load/clients/grpc-frame.ts';

export const DEFAULT_STREAM_MESSAGES = 10;
/** A ServerStream call answers with at most this many messages, whatever the header asks. */
const MAX_STREAM_MESSAGES = 100_000;

const GRPC_HEADERS = { ':status': 200, 'content-type': 'application/grpc' } as const;

export function isGrpc(headers: IncomingHttpHeaders): boolean {
  return headers['content-type']?.startsWith('application/grpc') === true;
}

function trailersOnly(stream: ServerHttp2Stream, code: number, message: string): void {
  stream.respond({ ...GRPC_HEADERS, 'grpc-status': String(code), 'grpc-message': message }, { endStream: true });
}

/** The framed message bytes (5-byte prefix included) of the call's first request message. */
function firstFramed(body: Buffer): Buffer | undefined {
  let framed: Buffer | undefined;
  new GrpcFrameReader((message) => {
    framed ??= body.subarray(0, 5 + message.length);
  }).push(body);
  return framed;
}

export function onGrpcStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  const path = headers[':path'];
  if (path !== UNARY_PATH && path !== SERVER_STREAM_PATH) {
    stream.resume();
    trailersOnly(stream, 12, `unknown method ${path}`);
    return;
  }
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  stream.on('error', () => {}); // a client that resets its call is not our error
  stream.on('end', () => {
    if (stream.destroyed) return;
    let message: Buffer | undefined;
    try {
      message = firstFramed(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    } catch {
      message = undefined;
    }
    if (message === undefined) {
      trailersOnly(stream, 13, 'expected one length-prefixed EchoMessage');
      return;
    }
    const count = path === UNARY_PATH ? 1 : streamMessages(headers);
    stream.respond(GRPC_HEADERS, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    if (count === 0) stream.end();
    else writeMessages(stream, message, count);
  });
}

function streamMessages(headers: IncomingHttpHeaders): number {
  const raw = headers[STREAM_MESSAGES_HEADER];
  const n = typeof raw === 'string' ? Number(raw) : DEFAULT_STREAM_MESSAGES;
  return Number.isInteger(n) && n >= 0 ? Math.min(n, MAX_STREAM_MESSAGES) : DEFAULT_STREAM_MESSAGES;
}

/** Writes `count` copies of `message`, pausing on back-pressure so a slow client cannot fill our memory. */
function writeMessages(stream: ServerHttp2Stream, message: Buffer, count: number): void {
  let left = count;
  const pump = (): void => {
    while (left > 0) {
      left--;
      if (left === 0) {
        stream.end(message);
        return;
      }
      if (!stream.write(message)) {
        stream.once('drain', pump);
        return;
      }
    }
  };
  pump();
}
