// A cluster's thresholds as counters: what each admits, what an overflow counts, and who gets a freed
// connection slot (the request that has waited longest, across the cluster's endpoints).
import { describe, expect, it } from 'vitest';
import { CircuitBreakers } from '../../src/config/breaker-schema.ts';
import { parseConfig } from '../../src/config/load.ts';
import { ClusterLimits, type SlotWaiter, type Threshold } from '../../src/resilience/cluster-limits.ts';

function limits(cfg: Record<string, number>) {
  const overflows: Threshold[] = [];
  return { l: new ClusterLimits(CircuitBreakers.parse(cfg), (t) => overflows.push(t)), overflows };
}

/** A pool with `idle` idle connections that records the slots it is given. */
function pool(name: string, log: string[], idle = 0): SlotWaiter & { idle: number } {
  return {
    idle,
    takeSlot: () => log.push(`${name} took a slot`),
    closeIdle() {
      if (this.idle === 0) return false;
      this.idle--;
      log.push(`${name} closed an idle connection`);
      return true;
    },
  };
}

describe('cluster thresholds', () => {
  it("defaults to Envoy's: 1024 connections, pending and requests, 3 retries", () => {
    expect(CircuitBreakers.parse({})).toEqual({
      maxConnections: 1024,
      maxPendingRequests: 1024,
      maxRequests: 1024,
      maxRetries: 3,
    });
  });

  it('names the field of a bad threshold in the config', () => {
    const raw = {
      listeners: [{ name: 'main', address: '127.0.0.1:0', routes: [{ cluster: 'app' }] }],
      clusters: [
        {
          name: 'app',
          discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:1' }] },
          circuitBreakers: { maxRequests: 0, endpoint: { consecutiveFailures: 0, failureRatePercent: 0 } },
        },
      ],
    };
    expect(() => parseConfig(raw)).toThrow(/clusters\[0\]\.circuitBreakers\.maxRequests: /);
    expect(() => parseConfig(raw)).toThrow(/clusters\[0\]\.circuitBreakers\.endpoint: an endpoint breaker needs/);
  });

  it('admits requests and retries up to their maximum, and counts each refusal by threshold', () => {
    const { l, overflows } = limits({ maxRequests: 2, maxRetries: 1 });
    expect([l.tryStartRequest(), l.tryStartRequest(), l.tryStartRequest()]).toEqual([true, true, false]);
    l.endRequest();
    expect(l.tryStartRequest()).toBe(true);
    expect([l.tryStartRetry(), l.tryStartRetry()]).toEqual([true, false]);
    l.endRetry();
    expect(l.tryStartRetry()).toBe(true);
    expect(overflows).toEqual(['max_requests', 'max_retries']);
    expect(l.overflows).toEqual({ max_connections: 0, max_pending_requests: 0, max_requests: 1, max_retries: 1 });
  });

  it('lets requests wait for a connection up to maxPendingRequests; a freed slot goes to the oldest waiter', () => {
    const log: string[] = [];
    const { l, overflows } = limits({ maxConnections: 1, maxPendingRequests: 2 });
    const a = pool('a', log);
    const b = pool('b', log, 1);
    l.addPool(a);
    l.addPool(b);
    expect(l.tryOpenConnection()).toBe(true);
    expect(l.tryOpenConnection()).toBe(false);
    // b's waiter came first; its idle connection is not closed for it, a's is asked for (it has none).
    expect(l.tryWait(b)).toBe(true);
    expect(l.tryWait(a)).toBe(true);
    expect(log).toEqual(['b closed an idle connection']); // a waits: b's idle connection makes room
    expect(l.tryWait(a)).toBe(false);
    expect(overflows).toEqual(['max_pending_requests']);
    l.connectionClosed();
    expect(log.at(-1)).toBe('b took a slot');
    expect([l.connections, l.pending]).toEqual([1, 1]);
    // a's waiter was served by a connection of its own: the next freed slot has nobody to go to.
    l.stopWaiting(a);
    l.connectionClosed();
    expect([l.connections, l.pending]).toEqual([0, 0]);
    expect(log.at(-1)).toBe('b took a slot');
  });
});
