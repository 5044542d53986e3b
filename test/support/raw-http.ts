// A raw HTTP/1.1 connection for tests that need to see the wire: write bytes exactly as given (pipelined
// requests, Expect: 100-continue, HTTP/1.0), and read back every response with its framing, parsed by the
// same llhttp binding the proxy uses. Every wait is bounded.
import { once } from 'node:events';
import net from 'node:net';
import { HTTPParser } from '../../proxy/llhttp.ts';
import { waitFor } from './wait-for.ts';

export interface RawResponse {
  status: number;
  statusText: string;
  /** Raw header list: [name, value, ...]. */
  headers: string[];
  body: Buffer;
  /** Trailer fields after a chunked body. */
  trailers: string[];
  /** The response bytes as received (framing included), latin1. */
  raw: string;
}

/** Lowercase name → value (repeated fields joined with ", "). */
export function headerMap(headers: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < headers.length; i += 2) {
    const k = headers[i].toLowerCase();
    out[k] = out[k] === undefined ? headers[i + 1] : `${out[k]}, ${headers[i + 1]}`;
  }
  return out;
}

export class RawConnection {
  readonly socket: net.Socket;
  readonly responses: RawResponse[] = [];
  /** Interim (1xx) responses, in order. */
  readonly interim: number[] = [];
  closed = false;
  private readonly parser = new HTTPParser();
  private text = '';
  private current: RawResponse | null = null;
  private pendingHeaders: string[] = [];
  /** Methods of the requests written, in order: a HEAD response has no body. */
  private readonly methods: string[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    const p = this.parser;
    p.initialize(HTTPParser.RESPONSE, {}, 0, 0);
    p[HTTPParser.kOnHeaders] = (h: string[]) => this.pendingHeaders.push(...h);
    p[HTTPParser.kOnHeadersComplete] = (
      _maj: number,
      _min: number,
      headers: string[] | undefined,
      _m: unknown,
      _u: unknown,
      status: number,
      statusText: string,
    ): number => {
      const all = [...this.pendingHeaders, ...(headers ?? [])];
      this.pendingHeaders = [];
      if (status < 200) {
        this.interim.push(status);
        return 0;
      }
      this.current = { status, statusText, headers: all, body: Buffer.alloc(0), trailers: [], raw: '' };
      return this.methods[this.responses.length] === 'HEAD' ? 1 : 0;
    };
    p[HTTPParser.kOnBody] = (b: Buffer) => {
      if (this.current !== null) this.current.body = Buffer.concat([this.current.body, b]);
    };
    p[HTTPParser.kOnMessageComplete] = () => {
      const r = this.current;
      if (r === null) return; // end of an interim response
      r.trailers = this.pendingHeaders;
      this.pendingHeaders = [];
      r.raw = this.text;
      this.text = '';
      this.current = null;
      this.responses.push(r);
    };
    socket.on('data', (chunk: Buffer) => {
      this.text += chunk.toString('latin1');
      p.execute(chunk);
    });
    socket.on('end', () => p.finish()); // a close-delimited body ends here
    socket.on('error', () => {}); // a reset is a close like any other here
    socket.on('close', () => {
      this.closed = true;
      p.free();
    });
  }

  static async open(port: number): Promise<RawConnection> {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return new RawConnection(socket);
  }

  /** Writes bytes; `methods` lists the requests they carry (for HEAD responses). */
  write(data: string | Buffer, methods: string[] = []): void {
    this.methods.push(...methods);
    this.socket.write(data);
  }

  async waitForResponses(n: number, timeoutMs = 5_000): Promise<RawResponse[]> {
    await waitFor(() => this.responses.length >= n || this.closed, timeoutMs);
    if (this.responses.length < n) throw new Error(`closed after ${this.responses.length} of ${n} responses`);
    return this.responses.slice(0, n);
  }

  async waitForClose(timeoutMs = 5_000): Promise<void> {
    await waitFor(() => this.closed, timeoutMs);
  }

  /** What arrived after the last complete response (an interim response, a partial one). */
  get pendingText(): string {
    return this.text;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
