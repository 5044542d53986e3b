// Node's own llhttp binding, the parser node:http uses. It is reachable only through the long-standing
// `_http_common` module; this file is the one place that depends on it, with the narrow type we use.
import { createRequire } from 'node:module';

export interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  finish(): number | Error | undefined;
  free(): void;
  [callback: number]: unknown;
}

interface LlhttpParserClass {
  new (): LlhttpParser;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
}

const require = createRequire(import.meta.url);
export const HTTPParser: LlhttpParserClass = require('node:_http_common').HTTPParser;
