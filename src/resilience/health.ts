// Active health checking's arithmetic, without sockets: an endpoint's run of passing and failing checks against
// the healthy/unhealthy thresholds, the jittered delay before its next check, and the gRPC health protocol's two
// tiny messages (grpc.health.v1 HealthCheckRequest / HealthCheckResponse), encoded by hand.

export interface HealthThresholds {
  /** Passing checks in a row that bring an unhealthy endpoint back. */
  readonly healthyThreshold: number;
  /** Failing checks in a row that take a healthy endpoint out. */
  readonly unhealthyThreshold: number;
}

/**
 * One endpoint's active-check state. It starts healthy: a new endpoint takes traffic until it fails
 * `unhealthyThreshold` checks in a row (Envoy instead holds new hosts back until their first check passes;
 * here passive outlier detection covers the first moments).
 */
export class CheckRecord {
  healthy = true;
  /** The current run: passing checks in a row (> 0) or failing ones (< 0). */
  private run = 0;
  checks = 0;
  lastFailure = '';

  /** Counts a check's outcome; true when it changed `healthy`. */
  record(ok: boolean, t: HealthThresholds, failure = ''): boolean {
    this.checks++;
    if (ok) {
      this.run = this.run > 0 ? this.run + 1 : 1;
      if (!this.healthy && this.run >= t.healthyThreshold) {
        this.healthy = true;
        return true;
      }
      return false;
    }
    this.lastFailure = failure;
    this.run = this.run < 0 ? this.run - 1 : -1;
    if (this.healthy && -this.run >= t.unhealthyThreshold) {
      this.healthy = false;
      return true;
    }
    return false;
  }
}

/** The wait before the next check: the interval plus up to `jitterPercent` of it, spread so checks don't align. */
export function nextCheckDelay(intervalMs: number, jitterPercent: number, random: () => number = Math.random): number {
  return intervalMs + Math.floor(random() * ((intervalMs * jitterPercent) / 100));
}

/** grpc.health.v1.HealthCheckResponse.ServingStatus */
export const SERVING = 1;

/** A HealthCheckRequest { string service = 1; } in a gRPC length-prefixed frame (uncompressed). */
export function grpcHealthRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const body = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]);
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  return frame;
}

/**
 * The `status` of a HealthCheckResponse { ServingStatus status = 1; } in a gRPC frame; 0 (UNKNOWN) when the field
 * is absent (proto3 leaves out defaults), null when the bytes are not one uncompressed message.
 */
export function grpcHealthStatus(frame: Buffer): number | null {
  if (frame.length < 5 || frame[0] !== 0) return null;
  const len = frame.readUInt32BE(1);
  if (frame.length < 5 + len) return null;
  const msg = frame.subarray(5, 5 + len);
  let status = 0;
  let i = 0;
  while (i < msg.length) {
    const key = readVarint(msg, i);
    if (key === null) return null;
    i = key.next;
    const wire = key.value & 7;
    if (wire === 0) {
      const v = readVarint(msg, i);
      if (v === null) return null;
      i = v.next;
      if (key.value >>> 3 === 1) status = v.value;
    } else if (wire === 2) {
      const l = readVarint(msg, i);
      if (l === null) return null;
      i = l.next + l.value;
    } else if (wire === 5) i += 4;
    else if (wire === 1) i += 8;
    else return null;
  }
  return i === msg.length ? status : null;
}

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

function readVarint(buf: Buffer, at: number): { value: number; next: number } | null {
  let value = 0;
  for (let shift = 0, i = at; i < buf.length && shift < 35; shift += 7, i++) {
    value += (buf[i] & 0x7f) * 2 ** shift;
    if ((buf[i] & 0x80) === 0) return { value, next: i + 1 };
  }
  return null;
}
