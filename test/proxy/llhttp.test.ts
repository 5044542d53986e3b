// The HTTP/1.1 parser module: Node's binding passes the startup self-check, the WebAssembly fallback
// passes the same check and parses exactly as the binding does (the same callbacks with the same arguments
// and the same results, fed whole or a byte at a time), and the check catches a parser that differs.
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { HTTP_PARSER, HTTPParser, type LlhttpParserClass, selfCheck } from '../../proxy/llhttp.ts';
import { WasmHttpParser, wasmMethods } from '../../proxy/llhttp-wasm.ts';

const common = createRequire(import.meta.url)('node:_http_common') as {
  HTTPParser: LlhttpParserClass;
  methods: string[];
};

/** Everything a parser reports for `chunks`, in order, with execute()'s and finish()'s results. */
function trace(
  Parser: LlhttpParserClass,
  methods: readonly string[],
  type: 'REQUEST' | 'RESPONSE',
  chunks: Buffer[],
  opts: { maxHeaderBytes?: number; skipBody?: boolean } = {},
): string[] {
  const out: string[] = [];
  const p = new Parser();
  p.initialize(Parser[type], {}, opts.maxHeaderBytes ?? 0, 0);
  p[Parser.kOnMessageBegin] = () => out.push('begin');
  p[Parser.kOnHeaders] = (h: string[], url: string) => out.push(`headers ${JSON.stringify(h)} ${url}`);
  p[Parser.kOnHeadersComplete] = (...a: unknown[]) => {
    const [major, minor, headers, method, url, status, text, upgrade, keepAlive] = a;
    const m = typeof method === 'number' ? methods[method] : method;
    out.push(`head ${JSON.stringify([major, minor, headers, m, url, status, text, upgrade, keepAlive])}`);
    return opts.skipBody === true ? 1 : 0;
  };
  let body = '';
  p[Parser.kOnBody] = (b: Buffer) => (body += b.toString('latin1'));
  p[Parser.kOnMessageComplete] = () => {
    if (body !== '') out.push(`body ${body}`);
    body = '';
    out.push('end');
  };
  const result = (r: number | Error | undefined): string =>
    r instanceof Error ? `error ${(r as Error & { code: string }).code}` : String(r);
  let parsed = 0;
  for (const c of chunks) {
    const r = p.execute(c);
    if (typeof r !== 'number') {
      out.push(result(r));
      break;
    }
    parsed += r;
  }
  out.push(`parsed ${parsed}`, `finish ${result(p.finish())}`);
  p.free();
  return out;
}

const bytewise = (s: string) => [...Buffer.from(s, 'latin1')].map((b) => Buffer.from([b]));

const REQUESTS: Record<string, string> = {
  'pipelined GET and POST':
    'GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Many:  a , b  \r\n\r\nPOST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc',
  'chunked body with a trailer':
    'PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n3\r\nyou\r\n0\r\nX-Sum: 5\r\n\r\n',
  'HTTP/1.0 without keep-alive': 'GET / HTTP/1.0\r\n\r\n',
  'a WebSocket upgrade with bytes after it':
    'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello',
  'a space in a header name': 'GET / HTTP/1.1\r\nHo st: x\r\n\r\n',
  'both Content-Length and chunked':
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'an unknown method': 'BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n',
  'a PATCH with an empty body': 'PATCH /r HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n',
};

const RESPONSES: Record<string, string> = {
  'interim 100 then 200': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  'chunked with trailers':
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nGrpc-Status: 0\r\nGrpc-Message: fine \r\n\r\n',
  'a body delimited by close': 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end',
  'a status out of range': 'HTTP/1.1 2000 Huge\r\n\r\n',
  'a bad chunk size': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
  '204 with an empty reason': 'HTTP/1.1 204 \r\nX: y\r\n\r\n',
};

describe('the HTTP/1.1 parser module', () => {
  it("uses Node's llhttp binding, which passes the startup self-check", () => {
    if (process.env.SKEIN_HTTP_PARSER === 'wasm') expect(HTTP_PARSER.kind).toBe('wasm');
    else expect(HTTP_PARSER).toEqual({ kind: 'binding', why: '' });
    expect(selfCheck(common.HTTPParser, common.methods)).toBeNull();
    expect(HTTPParser).toBe(HTTP_PARSER.kind === 'binding' ? common.HTTPParser : WasmHttpParser);
  });

  it('the WebAssembly fallback passes the same self-check', () => {
    expect(selfCheck(WasmHttpParser, wasmMethods())).toBeNull();
  });

  it('the self-check names what differs in a parser that behaves otherwise', () => {
    class DropsTrailers extends WasmHttpParser {
      override messageComplete(): number {
        return super.messageComplete.call(Object.assign(this, { inTrailers: false }));
      }
    }
    expect(selfCheck(DropsTrailers, wasmMethods())).toMatch(/^callbacks differ: /);
    class NoConsume extends WasmHttpParser {}
    Object.defineProperty(NoConsume.prototype, 'consume', { value: undefined });
    expect(selfCheck(NoConsume, wasmMethods())).toBe('HTTPParser#consume is missing');
    expect(selfCheck(WasmHttpParser, [])).toMatch(/callbacks differ/); // methods table out of step
  });

  for (const [type, corpus] of [
    ['REQUEST', REQUESTS],
    ['RESPONSE', RESPONSES],
  ] as const) {
    for (const [name, text] of Object.entries(corpus)) {
      it(`${type.toLowerCase()} "${name}": the fallback reports what the binding reports, whole and byte by byte`, () => {
        const whole = [Buffer.from(text, 'latin1')];
        const expected = trace(common.HTTPParser, common.methods, type, whole);
        expect(trace(WasmHttpParser, wasmMethods(), type, whole)).toEqual(expected);
        if (!name.includes('upgrade')) {
          // A byte at a time: fields, values and URLs split across reads come out joined, as from one read.
          const bytes = bytewise(text);
          expect(trace(WasmHttpParser, wasmMethods(), type, bytes)).toEqual(
            trace(common.HTTPParser, common.methods, type, bytes),
          );
        }
      });
    }
  }

  it('a head over the size limit is HPE_HEADER_OVERFLOW in both', () => {
    const text = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(300)}\r\n\r\n`;
    const chunks = [Buffer.from(text)];
    const binding = trace(common.HTTPParser, common.methods, 'REQUEST', chunks, { maxHeaderBytes: 256 });
    expect(binding).toContain('error HPE_HEADER_OVERFLOW');
    expect(trace(WasmHttpParser, wasmMethods(), 'REQUEST', chunks, { maxHeaderBytes: 256 })).toEqual(binding);
  });

  it('a response to HEAD (the head callback says: no body) ends at its head in both', () => {
    const chunks = [Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n')];
    const binding = trace(common.HTTPParser, common.methods, 'RESPONSE', chunks, { skipBody: true });
    expect(binding.filter((x) => x === 'end')).toHaveLength(2);
    expect(trace(WasmHttpParser, wasmMethods(), 'RESPONSE', chunks, { skipBody: true })).toEqual(binding);
  });

  it('the fallback cannot read a socket handle and says so', () => {
    expect(() => new WasmHttpParser().consume()).toThrow(/cannot read a socket handle/);
  });
});
