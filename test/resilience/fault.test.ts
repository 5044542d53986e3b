// Fault injection's arithmetic without sockets: which requests a policy applies to, and the shares it delays
// and aborts for given random draws.
import { describe, expect, it } from 'vitest';
import { chosen, compileFault } from '../../src/resilience/fault.ts';
import { FaultPolicy } from '../../src/config/schema.ts';

const reply = (httpStatus: number | undefined, grpcStatus: number | undefined) => ({ httpStatus, grpcStatus });
const req = (headers: Record<string, string>) => ({
  method: 'GET',
  path: '/',
  isGrpc: false,
  query: '',
  sourceService: 'unknown',
  parsedCookies: null,
  parsedQuery: null,
  header: (name: string) => headers[name],
});

describe('fault policy', () => {
  it('turns percentages into shares and keeps the abort it was given', () => {
    const f = compileFault(
      FaultPolicy.parse({ delay: { percentage: 10, fixedDelay: 250 }, abort: { percentage: 5, httpStatus: 418 } }),
      reply,
    );
    expect(f).toMatchObject({ delayShare: 0.1, delayMs: 250, abortShare: 0.05, applies: null });
    expect(f.abort).toEqual({ httpStatus: 418, grpcStatus: undefined });
  });

  it('applies only to requests carrying every header the policy names', () => {
    const f = compileFault(
      FaultPolicy.parse({
        abort: { percentage: 100 },
        headers: [
          { name: 'x-chaos', exact: 'on' },
          { name: 'x-user', present: true },
        ],
      }),
      reply,
    );
    expect(f.applies!(req({ 'x-chaos': 'on', 'x-user': 'a' }))).toBe(true);
    expect(f.applies!(req({ 'x-chaos': 'on' }))).toBe(false);
    expect(f.applies!(req({ 'x-chaos': 'off', 'x-user': 'a' }))).toBe(false);
  });

  it('chooses exactly the given share of uniformly spread draws', () => {
    const draws = Array.from({ length: 1000 }, (_, i) => i / 1000);
    expect(draws.filter((r) => chosen(0.3, r))).toHaveLength(300);
    expect(draws.filter((r) => chosen(0, r))).toHaveLength(0);
    expect(draws.filter((r) => chosen(1, r))).toHaveLength(1000);
  });

  it('refuses a policy with neither delay nor abort, and a percentage over 100, with the field path', () => {
    expect(FaultPolicy.safeParse({ headers: [] }).error?.issues[0].message).toBe('a fault needs delay or abort');
    expect(FaultPolicy.safeParse({ abort: { percentage: 101 } }).error?.issues[0].path).toEqual([
      'abort',
      'percentage',
    ]);
  });
});
