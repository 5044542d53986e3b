// Active health checking's rules without sockets: thresholds in both directions, the jittered wait, and the
// grpc.health.v1 messages as a real protobuf encoder would write them.
import { describe, expect, it } from 'vitest';
import {
  CheckRecord,
  grpcHealthRequest,
  grpcHealthStatus,
  nextCheckDelay,
  SERVING,
} from '../../src/resilience/health.ts';

const t = { healthyThreshold: 2, unhealthyThreshold: 3 };

describe('CheckRecord', () => {
  it('starts healthy and goes unhealthy only after unhealthyThreshold failures in a row', () => {
    const r = new CheckRecord();
    expect(r.healthy).toBe(true);
    expect(r.record(false, t, 'status 500')).toBe(false);
    expect(r.record(false, t, 'status 500')).toBe(false);
    expect(r.record(true, t)).toBe(false); // a pass breaks the run
    expect(r.record(false, t)).toBe(false);
    expect(r.record(false, t)).toBe(false);
    expect(r.record(false, t, 'ECONNREFUSED')).toBe(true);
    expect(r.healthy).toBe(false);
    expect(r.lastFailure).toBe('ECONNREFUSED');
    expect(r.record(false, t)).toBe(false); // no change while it stays down
  });

  it('comes back after healthyThreshold passes in a row', () => {
    const r = new CheckRecord();
    for (let i = 0; i < 3; i++) r.record(false, t);
    expect(r.healthy).toBe(false);
    expect(r.record(true, t)).toBe(false);
    expect(r.record(false, t)).toBe(false);
    expect(r.record(true, t)).toBe(false);
    expect(r.record(true, t)).toBe(true);
    expect(r.healthy).toBe(true);
  });

  it('with thresholds of 1 follows every check', () => {
    const r = new CheckRecord();
    const one = { healthyThreshold: 1, unhealthyThreshold: 1 };
    expect(r.record(false, one)).toBe(true);
    expect(r.record(true, one)).toBe(true);
  });
});

describe('nextCheckDelay', () => {
  it('adds up to jitterPercent of the interval', () => {
    expect(nextCheckDelay(1000, 10, () => 0)).toBe(1000);
    expect(nextCheckDelay(1000, 10, () => 0.999)).toBe(1099);
    expect(nextCheckDelay(1000, 0, () => 0.5)).toBe(1000);
  });
});

describe('grpc.health.v1 messages', () => {
  it('encodes HealthCheckRequest with and without a service name', () => {
    expect(grpcHealthRequest('')).toEqual(Buffer.from([0, 0, 0, 0, 0]));
    expect(grpcHealthRequest('echo')).toEqual(Buffer.from([0, 0, 0, 0, 6, 0x0a, 4, ...Buffer.from('echo')]));
  });

  it('reads the status of HealthCheckResponse', () => {
    expect(grpcHealthStatus(Buffer.from([0, 0, 0, 0, 2, 0x08, SERVING]))).toBe(SERVING);
    expect(grpcHealthStatus(Buffer.from([0, 0, 0, 0, 2, 0x08, 2]))).toBe(2); // NOT_SERVING
    expect(grpcHealthStatus(Buffer.from([0, 0, 0, 0, 0]))).toBe(0); // proto3 leaves out UNKNOWN
    // An unknown field before the status is skipped.
    expect(grpcHealthStatus(Buffer.from([0, 0, 0, 0, 5, 0x12, 1, 0x41, 0x08, 1]))).toBe(1);
  });

  it('refuses what is not one uncompressed message', () => {
    expect(grpcHealthStatus(Buffer.alloc(0))).toBeNull();
    expect(grpcHealthStatus(Buffer.from([1, 0, 0, 0, 2, 0x08, 1]))).toBeNull();
    expect(grpcHealthStatus(Buffer.from([0, 0, 0, 0, 3, 0x08, 1]))).toBeNull();
    expect(grpcHealthStatus(Buffer.from([0, 0, 0, 0, 1, 0x08]))).toBeNull();
  });
});
