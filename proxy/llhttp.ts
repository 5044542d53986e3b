// The HTTP/1.1 parser both directions use, and how it reads a socket. This is the one place that touches
// Node internals:
// - the llhttp binding node:http itself uses, reached through `node:_http_common`, which Node deprecated as
//   a module path (DEP0199, documentation-only since v24.6: "use node:http instead") — node:http has no
//   public parser, so there is nothing to switch to inside Node;
// - a TCP/TLS socket's `_handle`, which the binding can read from directly (no JS Buffer and no 'data'
//   event per read: measured ~3 µs per request cheaper than 'data' events).
// At startup the binding is checked: it must have the shape used here and parse a request and a chunked
// response with trailers as expected. If it does not (a future Node moved or changed it), Skein says why once
// and uses llhttp compiled to WebAssembly (llhttp-wasm.ts) fed from 'data' events, public APIs only.
// SKEIN_HTTP_PARSER=wasm selects that fallback on purpose (tests run the HTTP/1.1 suite through it; README
// "Design numbers" gives its cost).
import { createRequire } from 'node:module';
import type net from 'node:net';
import { WasmHttpParser, wasmMethods } from './llhttp-wasm.ts';

export interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  finish(): number | Error | undefined;
  /** The binding's: runs the destroy hooks only; the native parser lives on until close(). */
  free(): void;
  /**
   * The binding's: deletes the native parser, which otherwise stays reachable from a global handle with every
   * callback and what they hold (a connection, its socket) forever. Never from inside the parser's own callbacks
   * (node:http defers it to setImmediate too): use releaseParser(). The WebAssembly parser has none (free() frees).
   */
  close?(): void;
  /** Read straight from a StreamBase handle (a TCP or TLS socket's `_handle`): no JS Buffer and no 'data'
   *  event per read; the parser's callbacks run, then kOnExecute with the bytes parsed or an Error. */
  consume(handle: object): void;
  unconsume(): void;
  /** Inside kOnExecute: a copy of the bytes of the read being parsed (for what follows an upgrade). */
  getCurrentBuffer(): Buffer;
  [callback: number]: unknown;
}

export interface LlhttpParserClass {
  new (): LlhttpParser;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
}

/**
 * Parses a request (with a body) and a chunked response with a trailer, and checks every callback's
 * arguments. Returns what differs, or null when the parser behaves as this module expects.
 */
export function selfCheck(Parser: LlhttpParserClass, methods: readonly string[]): string | null {
  for (const k of ['REQUEST', 'RESPONSE', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete'] as const) {
    if (typeof Parser[k] !== 'number') return `HTTPParser.${k} is not a number`;
  }
  for (const m of ['initialize', 'execute', 'finish', 'free', 'consume', 'unconsume', 'getCurrentBuffer']) {
    if (typeof (Parser.prototype as Record<string, unknown>)[m] !== 'function') return `HTTPParser#${m} is missing`;
  }
  const seen: string[] = [];
  const parse = (type: number, text: string): number | Error => {
    const p = new Parser();
    p.initialize(type, {}, 0, 0);
    p[Parser.kOnHeaders] = (h: string[]) => seen.push(`trailers ${h.join('|')}`);
    p[Parser.kOnHeadersComplete] = (...a: unknown[]) => {
      const [major, minor, headers, method, url, status, , upgrade, keepAlive] = a;
      const m = typeof method === 'number' ? methods[method] : '';
      const h = Array.isArray(headers) ? headers.join('|') : String(headers);
      seen.push(`head ${major}.${minor} ${m ?? '?'} ${url ?? ''} ${status ?? ''} ${h} ${upgrade} ${keepAlive}`);
      return 0;
    };
    p[Parser.kOnBody] = (b: unknown) => seen.push(`body ${Buffer.isBuffer(b) ? b.toString() : typeof b}`);
    p[Parser.kOnMessageComplete] = () => seen.push('end');
    try {
      return p.execute(Buffer.from(text, 'latin1'));
    } finally {
      p.free();
      p.close?.();
    }
  };
  const req = 'POST /a?b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi';
  const res = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: v \r\n\r\n3\r\nabc\r\n0\r\nT: x\r\n\r\n';
  const n1 = parse(Parser.REQUEST, req);
  const n2 = parse(Parser.RESPONSE, res);
  const want = [
    'head 1.1 POST /a?b  Host|h|Content-Length|2 false true',
    'body hi',
    'end',
    'head 1.1   200 Transfer-Encoding|chunked|X-A|v false true',
    'body abc',
    'trailers T|x',
    'end',
  ];
  if (n1 !== req.length || n2 !== res.length) return `parsed ${String(n1)} and ${String(n2)} bytes`;
  if (seen.join('\n') !== want.join('\n')) return `callbacks differ: ${JSON.stringify(seen)}`;
  return null;
}

function loadBinding(): { Parser: LlhttpParserClass; methods: readonly string[] } | string {
  try {
    const common = createRequire(import.meta.url)('node:_http_common') as {
      HTTPParser?: LlhttpParserClass;
      methods?: readonly string[];
    };
    if (typeof common.HTTPParser !== 'function' || !Array.isArray(common.methods)) {
      return 'node:_http_common has no HTTPParser or methods';
    }
    const problem = selfCheck(common.HTTPParser, common.methods);
    return problem ?? { Parser: common.HTTPParser, methods: common.methods };
  } catch (err) {
    return `node:_http_common failed: ${(err as Error).message}`;
  }
}

export type ParserKind = 'binding' | 'wasm';

function choose(): { kind: ParserKind; why: string; Parser: LlhttpParserClass; methods: readonly string[] } {
  const asked = process.env.SKEIN_HTTP_PARSER;
  if (asked === 'wasm') {
    return { kind: 'wasm', why: 'SKEIN_HTTP_PARSER=wasm', Parser: WasmHttpParser, methods: wasmMethods() };
  }
  const binding = loadBinding();
  if (typeof binding !== 'string') return { kind: 'binding', why: '', ...binding };
  return {
    kind: 'wasm',
    why: `Node's llhttp binding failed Skein's self-check (${binding}); HTTP/1.1 uses llhttp compiled to WebAssembly`,
    Parser: WasmHttpParser,
    methods: wasmMethods(),
  };
}

const chosen = choose();
/** Which parser is in use, and why when it is not Node's binding (the proxy logs it at startup). */
export const HTTP_PARSER: { readonly kind: ParserKind; readonly why: string } = { kind: chosen.kind, why: chosen.why };
export const HTTPParser: LlhttpParserClass = chosen.Parser;
/** Request parsers report the method as an index into this list. */
export const METHODS: readonly string[] = chosen.methods;

/** The part of a TCP/TLS handle the parser consumes from; `reading` is the flag net.Socket keeps on it. */
interface StreamHandle {
  reading: boolean;
  isStreamBase?: boolean;
  readStart(): number;
  readStop(): number;
}

/** Called after each read is parsed: llhttp's result, and the bytes when they came as a Buffer. */
export type AfterExecute = (ret: number | Error, chunk: Buffer | null) => void;

/**
 * Feeds one socket's reads to a parser: straight from the handle when the binding can, else from 'data'
 * events. Reading stops and starts for named reasons (bits): it runs while no reason is left.
 */
export class ParserFeed {
  readonly socket: net.Socket;
  /** The handle the parser consumes, or null when it is fed from 'data' events. */
  private handle: StreamHandle | null = null;
  private parser: LlhttpParser | null = null;
  private afterExecute: AfterExecute | null = null;
  private pauseReasons = 0;

  constructor(socket: net.Socket) {
    this.socket = socket;
  }

  /** Starts feeding `parser`; returns bytes the socket's stream had already read (with `first` in front). */
  attach(parser: LlhttpParser, afterExecute: AfterExecute, first: Buffer | null): Buffer | null {
    const socket = this.socket;
    this.parser = parser;
    this.afterExecute = afterExecute;
    let buffered = first;
    if (socket.readableLength > 0) {
      const more = socket.read() as Buffer | null;
      if (more !== null) buffered = buffered === null ? more : Buffer.concat([buffered, more]);
    }
    const handle = chosen.kind === 'binding' ? (socket as unknown as { _handle?: StreamHandle })._handle : undefined;
    if (handle?.isStreamBase === true) {
      this.handle = handle;
      parser[HTTPParser.kOnExecute] = (ret: number | Error) => afterExecute(ret, null);
      parser.consume(handle);
      // net.Socket stopped reading if its own buffer filled; it never fills again, so (re)start it here.
      if (this.pauseReasons === 0) startReading(handle);
    } else socket.on('data', this.onData);
    return buffered;
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.parser !== null) this.afterExecute!(this.parser.execute(chunk), chunk);
  };

  /**
   * Stops parsing for good and frees the parser. `handOver`: another reader takes the socket (a tunnel), so
   * reading restarts; the socket's stream buffers the bytes until that reader pipes it.
   */
  detach(handOver: boolean): void {
    const parser = this.parser;
    if (parser === null) return;
    this.parser = null;
    const h = this.handle;
    if (h !== null) parser.unconsume();
    else this.socket.off('data', this.onData);
    releaseParser(parser);
    if (!handOver) return;
    if (h !== null) startReading(h);
    else this.socket.pause();
  }

  pause(reason: number): void {
    if (this.pauseReasons === 0) {
      const h = this.handle;
      if (h === null) this.socket.pause();
      else if (h.reading) {
        h.reading = false;
        h.readStop();
      }
    }
    this.pauseReasons |= reason;
  }

  resume(reason: number): void {
    if ((this.pauseReasons & reason) === 0) return;
    this.pauseReasons &= ~reason;
    if (this.pauseReasons !== 0 || this.parser === null || this.socket.destroyed) return;
    const h = this.handle;
    if (h === null) this.socket.resume();
    else startReading(h);
  }

  /** Reading resumes whatever paused it (the reasons are forgotten). */
  resumeAll(): void {
    if (this.pauseReasons !== 0) this.resume(this.pauseReasons);
  }
}

/**
 * Frees a parser for good: free(), then, once the stack has unwound (this may run inside one of its callbacks),
 * close(), which deletes the binding's native parser. free() alone leaked every connection's parser, callbacks,
 * connection and socket (README "Design numbers", mTLS: ~8 KB per connection).
 */
export function releaseParser(parser: LlhttpParser): void {
  parser.free();
  if (typeof parser.close === 'function') setImmediate(closeParser, parser);
}

function closeParser(parser: LlhttpParser): void {
  parser.close!();
}

function startReading(h: StreamHandle): void {
  if (h.reading) return;
  h.reading = true;
  h.readStart();
}
