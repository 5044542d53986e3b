// The endpoint breaker's state machine without sockets: what opens it (consecutive failures, a failure rate
// over the rolling window once it holds enough requests), when it lets probes through, and what a probe's
// outcome does.
import { describe, expect, it } from 'vitest';
import { EndpointBreaker as Schema } from '../../src/config/breaker-schema.ts';
import { type BreakerState, EndpointBreaker, NOT_A_PROBE } from '../../src/resilience/breaker.ts';

const config = (over: Record<string, unknown> = {}) => Schema.parse(over);

function failTimes(b: EndpointBreaker, n: number, at = 0): void {
  for (let i = 0; i < n; i++) b.record(at, 'failure', NOT_A_PROBE);
}

describe('endpoint breaker', () => {
  it('has the documented defaults', () => {
    expect(config()).toEqual({
      consecutiveFailures: 5,
      failureRatePercent: 50,
      minimumRequests: 20,
      windowMs: 10_000,
      openMs: 30_000,
      halfOpenRequests: 1,
    });
    expect(() => config({ consecutiveFailures: 0, failureRatePercent: 0 })).toThrow(/needs consecutiveFailures/);
  });

  it('opens after consecutiveFailures in a row; a success in between starts the count again', () => {
    const changes: BreakerState[] = [];
    const b = new EndpointBreaker(config({ consecutiveFailures: 3, failureRatePercent: 0 }), (s) => changes.push(s));
    failTimes(b, 2);
    b.record(0, 'success', NOT_A_PROBE);
    failTimes(b, 2);
    expect(b.state(0)).toBe('closed');
    b.record(0, 'neutral', NOT_A_PROBE); // a client that went away says nothing
    failTimes(b, 1);
    expect(b.state(0)).toBe('open');
    expect(b.admits(1)).toBe(false);
    expect(changes).toEqual(['open']);
    expect(b.opened).toBe(1);
  });

  it('opens on the failure rate only once the window holds minimumRequests', () => {
    const b = new EndpointBreaker(
      config({ consecutiveFailures: 0, failureRatePercent: 50, minimumRequests: 10, windowMs: 1000 }),
    );
    // Alternating: never 2 failures in a row, half of them failed.
    for (let i = 0; i < 9; i++) b.record(0, i % 2 === 0 ? 'failure' : 'success', NOT_A_PROBE);
    expect(b.state(0)).toBe('closed'); // 5 of 9, under the minimum
    b.record(0, 'success', NOT_A_PROBE);
    expect(b.state(0)).toBe('closed'); // 5 of 10 failed, but the last one succeeded: checked on failures only
    b.record(0, 'failure', NOT_A_PROBE);
    expect(b.state(0)).toBe('open'); // 6 of 11
  });

  it('forgets what left the rolling window', () => {
    const b = new EndpointBreaker(
      config({ consecutiveFailures: 0, failureRatePercent: 50, minimumRequests: 4, windowMs: 1000 }),
    );
    failTimes(b, 3, 0);
    expect(b.window(500)).toEqual({ requests: 3, failures: 3, consecutiveFailures: 3 });
    // A second later the three failures are out of the window: 1 of 1 is under the minimum.
    b.record(1500, 'failure', NOT_A_PROBE);
    expect(b.state(1500)).toBe('closed');
    expect(b.window(1500).requests).toBe(1);
    for (let i = 0; i < 3; i++) b.record(1600 + i, 'success', NOT_A_PROBE);
    b.record(1700, 'failure', NOT_A_PROBE);
    expect(b.state(1700)).toBe('closed'); // 2 of 5
    b.record(1800, 'failure', NOT_A_PROBE);
    expect(b.state(1800)).toBe('open'); // 3 of 6
  });

  it('turns half-open after openMs, lets halfOpenRequests probes through, and closes on a probe success', () => {
    const changes: BreakerState[] = [];
    const b = new EndpointBreaker(config({ consecutiveFailures: 1, openMs: 1000, halfOpenRequests: 2 }), (s) =>
      changes.push(s),
    );
    failTimes(b, 1, 100);
    expect(b.admits(1099)).toBe(false);
    expect(b.remainingOpenMs(600)).toBe(500);
    expect(b.admits(1100)).toBe(true);
    expect(b.state(1100)).toBe('half-open');
    const p1 = b.admit(1100);
    const p2 = b.admit(1100);
    expect(p1).not.toBe(NOT_A_PROBE);
    expect(b.admits(1100)).toBe(false); // both probe slots taken
    // A request let through before it opened says nothing now.
    b.record(1150, 'success', NOT_A_PROBE);
    expect(b.state(1150)).toBe('half-open');
    b.record(1200, 'success', p1);
    expect(b.state(1200)).toBe('closed');
    b.record(1200, 'failure', p2); // the other probe belongs to a half-open period gone by
    expect(b.state(1200)).toBe('closed');
    expect(changes).toEqual(['open', 'half-open', 'closed']);
    expect(b.admit(1200)).toBe(NOT_A_PROBE);
  });

  it('opens again for another openMs when a probe fails; a neutral probe frees its slot', () => {
    const b = new EndpointBreaker(config({ consecutiveFailures: 1, openMs: 1000 }));
    failTimes(b, 1, 0);
    let probe = b.admit(1000);
    b.record(1000, 'neutral', probe);
    expect(b.admits(1000)).toBe(true);
    probe = b.admit(1000);
    b.record(1500, 'failure', probe);
    expect(b.state(1500)).toBe('open');
    expect(b.admits(2499)).toBe(false);
    expect(b.state(2500)).toBe('half-open');
    expect(b.opened).toBe(2);
  });
});
