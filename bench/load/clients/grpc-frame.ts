// gRPC wire framing by hand for the bench echo service (bench/origin/echo.proto): the 5-byte message prefix
// (compressed flag, 4-byte big-endian length) around a protobuf EchoMessage { bytes payload = 1; }.
// Shared by the load client and the bench origin, so neither needs a protobuf library on the hot path.

export const ECHO_SERVICE = 'skein.bench.Echo';
export const UNARY_PATH = `/${ECHO_SERVICE}/Unary`;
export const SERVER_STREAM_PATH = `/${ECHO_SERVICE}/ServerStream`;
/** Request header that tells the echo service how many messages a ServerStream call answers with. */
export const STREAM_MESSAGES_HEADER = 'x-stream-messages';
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** gRPC status names by code, for error kinds ("grpc_unavailable"). */
const STATUS_NAMES = [
  'ok',
  'cancelled',
  'unknown',
  'invalid_argument',
  'deadline_exceeded',
  'not_found',
  'already_exists',
  'permission_denied',
  'resource_exhausted',
  'failed_precondition',
  'aborted',
  'out_of_range',
  'unimplemented',
  'internal',
  'unavailable',
  'data_loss',
  'unauthenticated',
];

export function grpcErrorKind(code: number): string {
  return `grpc_${STATUS_NAMES[code] ?? String(code)}`;
}

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(buf: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

/** One framed EchoMessage carrying `payload` (an empty payload encodes as the empty message). */
export function frameEchoMessage(payload: Uint8Array): Buffer {
  const messageLength = payload.length === 0 ? 0 : 1 + varintLength(payload.length) + payload.length;
  const buf = Buffer.allocUnsafe(5 + messageLength);
  buf[0] = 0;
  buf.writeUInt32BE(messageLength, 1);
  if (messageLength > 0) {
    buf[5] = 0x0a; // field 1, wire type 2 (length-delimited)
    const at = writeVarint(buf, 6, payload.length);
    buf.set(payload, at);
  }
  return buf;
}

/**
 * The payload of an EchoMessage body (without the 5-byte prefix); unknown fields are skipped. Throws on a
 * malformed message.
 */
export function decodeEchoPayload(message: Uint8Array): Uint8Array {
  let at = 0;
  let found: Uint8Array = new Uint8Array(0);
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (at >= message.length) throw new Error('truncated varint');
      const b = message[at++];
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
      if (scale > 2 ** 56) throw new Error('varint too long');
    }
  };
  while (at < message.length) {
    const key = varint();
    const wireType = key & 7;
    if (wireType === 0) varint();
    else if (wireType === 1) at += 8;
    else if (wireType === 5) at += 4;
    else if (wireType === 2) {
      const len = varint();
      if (at + len > message.length) throw new Error('truncated field');
      if (key >>> 3 === 1) found = message.subarray(at, at + len);
      at += len;
    } else throw new Error(`unsupported wire type ${wireType}`);
  }
  if (at > message.length) throw new Error('truncated field');
  return found;
}

/**
 * Splits a stream of gRPC frames into messages as bytes arrive. `onMessage` gets each message body; it may be
 * a view into the chunk, valid only during the call.
 */
export class GrpcFrameReader {
  #header = Buffer.alloc(5);
  #headerFill = 0;
  #body: Buffer | null = null;
  #bodyFill = 0;
  readonly #onMessage: (body: Buffer) => void;

  constructor(onMessage: (body: Buffer) => void) {
    this.#onMessage = onMessage;
  }

  /** True between messages. */
  get idle(): boolean {
    return this.#headerFill === 0 && this.#body === null;
  }

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#body === null) {
        // Fast path: a whole message in what is left of the chunk.
        if (this.#headerFill === 0 && chunk.length - at >= 5) {
          const len = chunk.readUInt32BE(at + 1);
          if (chunk.length - at - 5 >= len) {
            this.#onMessage(chunk.subarray(at + 5, at + 5 + len));
            at += 5 + len;
            continue;
          }
        }
        const n = Math.min(5 - this.#headerFill, chunk.length - at);
        chunk.copy(this.#header, this.#headerFill, at, at + n);
        this.#headerFill += n;
        at += n;
        if (this.#headerFill < 5) return;
        this.#headerFill = 0;
        const len = this.#header.readUInt32BE(1);
        if (len > MAX_MESSAGE_BYTES) throw new Error(`gRPC message of ${len} bytes is over the 64 MiB limit`);
        if (len === 0) {
          this.#onMessage(Buffer.alloc(0));
          continue;
        }
        this.#body = Buffer.allocUnsafe(len);
        this.#bodyFill = 0;
      }
      const body = this.#body;
      const n = Math.min(body.length - this.#bodyFill, chunk.length - at);
      chunk.copy(body, this.#bodyFill, at, at + n);
      this.#bodyFill += n;
      at += n;
      if (this.#bodyFill === body.length) {
        this.#body = null;
        this.#onMessage(body);
      }
    }
  }
}
