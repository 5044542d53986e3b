// The generator's minimal HTTP/1.1 response parser: framing by Content-Length, chunked and close, fed whole,
// byte by byte and with several responses in one read.
import { describe, expect, it } from 'vitest';
import { Http1ParseError, Http1ResponseParser } from '../../../bench/load/clients/http1-parser.ts';

function parse(chunks: (string | Buffer)[]): { responses: [number, boolean][]; parser: Http1ResponseParser } {
  const responses: [number, boolean][] = [];
  const parser = new Http1ResponseParser((status, keepAlive) => responses.push([status, keepAlive]));
  for (const c of chunks) parser.feed(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
  return { responses, parser };
}

const bytewise = (s: string): string[] => [...s];

const CL = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello';
const CHUNKED =
  'HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n' +
  '4;ext=1\r\nwiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nx-trailer: 1\r\n\r\n';

describe('Http1ResponseParser', () => {
  it('frames a Content-Length body, whole or split at every byte', () => {
    expect(parse([CL]).responses).toEqual([[200, true]]);
    const split = parse(bytewise(CL));
    expect(split.responses).toEqual([[200, true]]);
    expect(split.parser.idle).toBe(true);
  });

  it('frames a chunked body with extensions and trailers, whole or split at every byte', () => {
    expect(parse([CHUNKED]).responses).toEqual([[503, true]]);
    expect(parse(bytewise(CHUNKED)).responses).toEqual([[503, true]]);
  });

  it('reads back-to-back responses from one read, and nothing of the next until it is complete', () => {
    const { responses, parser } = parse([CL + CHUNKED + CL.slice(0, 30)]);
    expect(responses).toEqual([
      [200, true],
      [503, true],
    ]);
    expect(parser.idle).toBe(false);
    parser.feed(Buffer.from(CL.slice(30)));
    expect(responses).toHaveLength(3);
  });

  it('knows when the server will close: Connection: close, HTTP/1.0 without keep-alive', () => {
    expect(parse(['HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 0\r\n\r\n']).responses).toEqual([
      [200, false],
    ]);
    expect(parse(['HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n']).responses).toEqual([[200, false]]);
    expect(parse(['HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n']).responses).toEqual([
      [200, true],
    ]);
  });

  it('ends a body without length at the close, and only then', () => {
    const { responses, parser } = parse(['HTTP/1.1 200 OK\r\n\r\nsome bytes', ' and more']);
    expect(responses).toEqual([]);
    expect(parser.end()).toBe(true);
    expect(responses).toEqual([[200, false]]);
  });

  it('says a close cut nothing short when no body was running to the close', () => {
    const { parser } = parse(['HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc']);
    expect(parser.end()).toBe(false);
  });

  it('has no body for 204 and 304, and skips interim 1xx responses', () => {
    expect(parse(['HTTP/1.1 204 No Content\r\n\r\n']).responses).toEqual([[204, true]]);
    expect(parse(['HTTP/1.1 304 Not Modified\r\ncontent-length: 99\r\n\r\n']).responses).toEqual([[304, true]]);
    expect(parse(['HTTP/1.1 100 Continue\r\n\r\n', CL]).responses).toEqual([[200, true]]);
  });

  it('throws on what is not an HTTP/1.x response', () => {
    expect(() => parse(['SSH-2.0-OpenSSH_9.2\r\n\r\n'])).toThrow(Http1ParseError);
    expect(() => parse(['HTTP/1.1 2x0 OK\r\n\r\n'])).toThrow(Http1ParseError);
    expect(() => parse(['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n'])).toThrow(Http1ParseError);
    expect(() => parse([Buffer.alloc(70 * 1024, 'a')])).toThrow(/64 KiB/);
  });
});
