// The fallback HTTP/1.1 parser: llhttp compiled to WebAssembly (the build undici ships, pinned by the
// lockfile), behind the same shape as Node's binding so the proxy's HTTP/1.1 code does not know which one it
// has. It is used when Node's binding fails the self-check in llhttp.ts, or when SKEIN_HTTP_PARSER=wasm asks
// for it. It cannot read a socket's handle: it is fed from 'data' events (consume() throws).
//
// What it reproduces of the binding, because the callers rely on it: header values without trailing
// whitespace; trailer fields reported through kOnHeaders just before kOnMessageComplete; a paused upgrade
// answered with the bytes parsed so far (the rest belongs to the tunnel) and the parser resumed; errors as an
// Error with an `HPE_*` code and `bytesParsed`; a head over the size limit as HPE_HEADER_OVERFLOW.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** llhttp's error numbers this adapter acts on (llhttp's `llhttp_errno`). */
const HPE_OK = 0;
const HPE_PAUSED_UPGRADE = 22;
/** Node's default --max-http-header-size, used when initialize() is given 0. */
const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;

/** The few WebAssembly globals used here (the project's TypeScript lib has no DOM/WebAssembly typings). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const WebAssembly = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface LlhttpExports {
  memory: { buffer: ArrayBuffer };
  malloc(size: number): number;
  free(ptr: number): void;
  llhttp_alloc(type: number): number;
  llhttp_free(ptr: number): void;
  llhttp_execute(ptr: number, data: number, len: number): number;
  llhttp_finish(ptr: number): number;
  llhttp_resume_after_upgrade(ptr: number): void;
  llhttp_get_error_pos(ptr: number): number;
  llhttp_get_error_reason(ptr: number): number;
  llhttp_get_http_major(ptr: number): number;
  llhttp_get_http_minor(ptr: number): number;
  llhttp_get_method(ptr: number): number;
}

/** The parser whose execute()/finish() is running: the WASM callbacks report to it. */
let current: WasmHttpParser | null = null;
/** The bytes being parsed and where they sit in WASM memory (callbacks give addresses in it). */
let currentData: Buffer = Buffer.alloc(0);
let currentPtr = 0;
let inputPtr = 0;
let inputSize = 0;
let instance: LlhttpExports | null = null;
let errorNames: readonly string[] = [];

function llhttp(): LlhttpExports {
  if (instance !== null) return instance;
  const constants = require('undici/lib/llhttp/constants.js') as { ERROR: Record<string, number> };
  const names: string[] = [];
  for (const [name, n] of Object.entries(constants.ERROR)) if (typeof n === 'number') names[n] = name;
  errorNames = names;
  const bytes = require('undici/lib/llhttp/llhttp-wasm.js') as Buffer;
  const str = (at: number, len: number): string =>
    currentData.toString('latin1', at - currentPtr, at - currentPtr + len);
  const imports = {
    env: {
      wasm_on_message_begin: (): number => current!.messageBegin(),
      wasm_on_url: (_p: number, at: number, len: number): number => current!.url(str(at, len), len),
      wasm_on_status: (_p: number, at: number, len: number): number => current!.status(str(at, len), len),
      wasm_on_header_field: (_p: number, at: number, len: number): number => current!.field(str(at, len), len),
      wasm_on_header_value: (_p: number, at: number, len: number): number => current!.value(str(at, len), len),
      wasm_on_headers_complete: (_p: number, status: number, upgrade: number, keepAlive: number): number =>
        current!.headersComplete(status, upgrade === 1, keepAlive === 1),
      wasm_on_body: (_p: number, at: number, len: number): number =>
        current!.body(currentData.subarray(at - currentPtr, at - currentPtr + len)),
      wasm_on_message_complete: (): number => current!.messageComplete(),
    },
  };
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), imports);
  instance = inst.exports as LlhttpExports;
  return instance;
}

/** llhttp's method names indexed by number: a request parser reports the method as that index. */
export function wasmMethods(): readonly string[] {
  const constants = require('undici/lib/llhttp/constants.js') as { METHODS: Record<string, number> };
  const names: string[] = [];
  for (const [name, n] of Object.entries(constants.METHODS)) if (typeof n === 'number') names[n] ??= name;
  return names;
}

type Callback = (...args: never[]) => unknown;

export class WasmHttpParser {
  static readonly REQUEST = 1;
  static readonly RESPONSE = 2;
  static readonly kOnMessageBegin = 0;
  static readonly kOnHeaders = 1;
  static readonly kOnHeadersComplete = 2;
  static readonly kOnBody = 3;
  static readonly kOnMessageComplete = 4;
  static readonly kOnExecute = 5;

  [callback: number]: unknown;
  private ptr = 0;
  private type = WasmHttpParser.REQUEST;
  private maxHeaderBytes = DEFAULT_MAX_HEADER_BYTES;
  private headerBytes = 0;
  private overflow = false;
  private upgraded = false;
  private inTrailers = false;
  /** The last header callback was a value (a field that follows starts a new pair). */
  private lastWasValue = true;
  private headers: string[] = [];
  private target = '';
  private statusText = '';

  initialize(type: number, _resource: object, maxHeaderSize: number, _lenient: number): void {
    const ll = llhttp();
    if (this.ptr !== 0) ll.llhttp_free(this.ptr);
    this.type = type;
    this.maxHeaderBytes = maxHeaderSize > 0 ? maxHeaderSize : DEFAULT_MAX_HEADER_BYTES;
    this.ptr = ll.llhttp_alloc(type);
    this.upgraded = false;
    this.reset();
  }

  private reset(): void {
    this.headerBytes = 0;
    this.overflow = false;
    this.inTrailers = false;
    this.lastWasValue = true;
    this.headers = [];
    this.target = '';
    this.statusText = '';
  }

  execute(data: Buffer): number | Error {
    const ll = llhttp();
    if (data.length > inputSize) {
      if (inputPtr !== 0) ll.free(inputPtr);
      inputSize = Math.max(data.length, 64 * 1024);
      inputPtr = ll.malloc(inputSize);
    }
    const outer = current;
    const outerData = currentData;
    const outerPtr = currentPtr;
    // A callback that parses for another parser (not done by the proxy, but possible) gets its own input
    // area, so the bytes the outer call is still parsing are not overwritten.
    const ptr = outer === null ? inputPtr : ll.malloc(Math.max(data.length, 1));
    new Uint8Array(ll.memory.buffer, ptr, data.length).set(data);
    current = this;
    currentData = data;
    currentPtr = ptr;
    try {
      const err = ll.llhttp_execute(this.ptr, ptr, data.length);
      if (err === HPE_OK) return data.length;
      const parsed = ll.llhttp_get_error_pos(this.ptr) - ptr;
      if (err === HPE_PAUSED_UPGRADE) {
        this.upgraded = true;
        ll.llhttp_resume_after_upgrade(this.ptr);
        return parsed;
      }
      return this.error(err, parsed);
    } finally {
      current = outer;
      currentData = outerData;
      currentPtr = outerPtr;
      if (outer !== null) ll.free(ptr);
    }
  }

  finish(): number | Error | undefined {
    if (this.upgraded) return undefined; // the bytes after an upgrade are not HTTP: nothing to finish
    const ll = llhttp();
    const outer = current;
    current = this;
    try {
      const err = ll.llhttp_finish(this.ptr);
      return err === HPE_OK ? undefined : this.error(err, 0);
    } finally {
      current = outer;
    }
  }

  free(): void {
    if (this.ptr === 0) return;
    llhttp().llhttp_free(this.ptr);
    this.ptr = 0;
  }

  consume(): void {
    throw new Error('the WebAssembly llhttp cannot read a socket handle: feed it with execute()');
  }

  unconsume(): void {}

  getCurrentBuffer(): Buffer {
    return Buffer.from(currentData);
  }

  private error(err: number, bytesParsed: number): Error {
    const ll = llhttp();
    const code = this.overflow ? 'HPE_HEADER_OVERFLOW' : `HPE_${errorNames[err] ?? 'INTERNAL'}`;
    let reason = this.overflow ? 'Header overflow' : code;
    const at = ll.llhttp_get_error_reason(this.ptr);
    if (!this.overflow && at !== 0) {
      const mem = new Uint8Array(ll.memory.buffer);
      let end = at;
      while (mem[end] !== 0 && end - at < 200) end++;
      reason = Buffer.from(mem.subarray(at, end)).toString('latin1');
    }
    return Object.assign(new Error('Parse Error'), { code, reason, bytesParsed });
  }

  private call(index: number, ...args: unknown[]): unknown {
    const fn = this[index] as Callback | undefined;
    return fn === undefined ? undefined : (fn as (...a: unknown[]) => unknown)(...args);
  }

  /** Counts head bytes; over the limit, the parse stops (a nonzero return is llhttp's "user error"). */
  private grow(len: number): number {
    this.headerBytes += len;
    if (this.headerBytes <= this.maxHeaderBytes) return 0;
    this.overflow = true;
    return -1;
  }

  messageBegin(): number {
    this.reset();
    this.call(WasmHttpParser.kOnMessageBegin);
    return 0;
  }

  url(s: string, len: number): number {
    this.target += s;
    return this.grow(len);
  }

  status(s: string, len: number): number {
    this.statusText += s;
    return this.grow(len);
  }

  field(s: string, len: number): number {
    if (this.lastWasValue) this.headers.push(s, '');
    else this.headers[this.headers.length - 2] += s;
    this.lastWasValue = false;
    return this.grow(len);
  }

  value(s: string, len: number): number {
    this.headers[this.headers.length - 1] += s;
    this.lastWasValue = true;
    return this.grow(len);
  }

  headersComplete(status: number, upgrade: boolean, keepAlive: boolean): number {
    const ll = llhttp();
    const headers = this.headers;
    for (let i = 1; i < headers.length; i += 2) {
      const v = headers[i];
      const last = v.charCodeAt(v.length - 1);
      if (last === 0x20 || last === 0x09) headers[i] = v.trimEnd();
    }
    const request = this.type === WasmHttpParser.REQUEST;
    const ret = this.call(
      WasmHttpParser.kOnHeadersComplete,
      ll.llhttp_get_http_major(this.ptr),
      ll.llhttp_get_http_minor(this.ptr),
      headers,
      request ? ll.llhttp_get_method(this.ptr) : undefined,
      request ? this.target : undefined,
      request ? undefined : status,
      request ? undefined : this.statusText,
      upgrade,
      keepAlive,
    );
    this.inTrailers = true;
    this.headers = [];
    this.lastWasValue = true;
    this.headerBytes = 0;
    return typeof ret === 'number' ? ret : 0;
  }

  body(chunk: Buffer): number {
    this.call(WasmHttpParser.kOnBody, chunk);
    return 0;
  }

  messageComplete(): number {
    if (this.inTrailers && this.headers.length > 0) {
      const trailers = this.headers;
      for (let i = 1; i < trailers.length; i += 2) trailers[i] = trailers[i].trimEnd();
      this.headers = [];
      // The binding passes the request's target along with a request's trailers; so does this.
      this.call(WasmHttpParser.kOnHeaders, trailers, this.type === WasmHttpParser.REQUEST ? this.target : '');
    }
    this.call(WasmHttpParser.kOnMessageComplete);
    return 0;
  }
}
