// HTTP/1.1 response bytes the downstream writes itself (proxy/http1.ts, proxy/http1-connection.ts): status
// lines, the Date header, chunk framing and the bare error answers for requests that never got a context.
// Everything here is a string written with the latin1 encoding, so header bytes pass through unchanged.
import { STATUS_CODES } from 'node:http';
import { FLAG_HEADER, type LocalReply, localReply, REASON } from './flags.ts';

export const CRLF = '\r\n';
export const LAST_CHUNK = '0\r\n\r\n';
export const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';

/** Status lines by code, built on first use: the common ones cost one array read per response. */
const statusLines: string[] = [];

export function statusLine(status: number): string {
  let line = statusLines[status];
  if (line === undefined) {
    line = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    if (status >= 100 && status <= 999) statusLines[status] = line;
  }
  return line;
}

/** The Date field, formatted once per second at most (responses that lack one get it; RFC 9110 §6.6.1). */
let dateLine = '';
let dateSecond = -1;

export function dateHeaderLine(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateLine = `date: ${new Date(now).toUTCString()}\r\n`;
  }
  return dateLine;
}

/** The chunk-size line in front of a chunk of `length` bytes. */
export function chunkHeader(length: number): string {
  return `${length.toString(16)}\r\n`;
}

/** The last chunk, with trailer fields when the upstream sent any. */
export function lastChunk(trailers: string[] | null): string {
  if (trailers === null || trailers.length === 0) return LAST_CHUNK;
  let s = '0\r\n';
  for (let i = 0; i < trailers.length; i += 2) s += `${trailers[i]}: ${trailers[i + 1]}\r\n`;
  return `${s}\r\n`;
}

/** The answer to a request the proxy could not parse (flags.ts decides its status and flag): connection closed. */
export function malformedRequestResponse(reply: LocalReply): string {
  return `${statusLine(reply.status)}${FLAG_HEADER}: ${reply.flag}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`;
}

/** Parser error code → the reply's reason: an oversized head, a too-slow one, anything else a bad request. */
export function replyForParseError(code: string): LocalReply {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return localReply(REASON.HeadersTooLarge);
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return localReply(REASON.RequestTooLarge);
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return localReply(REASON.HeadTimeout);
    default:
      return localReply(REASON.BadRequest);
  }
}
