// Node's own llhttp binding, the parser node:http uses. It is reachable only through the long-standing
// `_http_common` module; this file is the one place that depends on it, with the narrow type we use.
// Both directions parse with it: responses in the upstream pool, requests on the HTTP/1.1 downstream.
import { createRequire } from 'node:module';

export interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  finish(): number | Error | undefined;
  free(): void;
  /** Read straight from a StreamBase handle (a TCP or TLS socket's `_handle`): no JS Buffer and no 'data'
   *  event per read; the parser's callbacks run, then kOnExecute with the bytes parsed or an Error. */
  consume(handle: object): void;
  unconsume(): void;
  /** Inside kOnExecute: a copy of the bytes of the read being parsed (for what follows an upgrade). */
  getCurrentBuffer(): Buffer;
  [callback: number]: unknown;
}

interface LlhttpParserClass {
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

const require = createRequire(import.meta.url);
const common: { HTTPParser: LlhttpParserClass; methods: readonly string[] } = require('node:_http_common');
export const HTTPParser = common.HTTPParser;
/** Request parsers report the method as an index into this list. */
export const METHODS = common.methods;
