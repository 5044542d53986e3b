import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FLAG, GRPC_STATUS, localReply, REASON, REPLIES, type ReplyReason } from '../../proxy/flags.ts';

/** README "Response flags": flag → the HTTP statuses its column lists (every number in it). */
function documentedStatuses(): Map<string, number[]> {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('### Response flags'));
  const table = section.slice(0, section.indexOf('\n\n', section.indexOf('| flag')));
  const out = new Map<string, number[]>();
  for (const line of table.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 5 || !/^[A-Z]+$/.test(cells[1])) continue;
    out.set(cells[1], (cells[3].match(/\d{3}/g) ?? []).map(Number));
  }
  return out;
}

const reasons = Object.keys(REPLIES) as ReplyReason[];

describe('the local reply table', () => {
  it('has a reply for every flag, carrying that flag', () => {
    for (const flag of Object.values(FLAG)) if (flag !== FLAG.DelayInjected) expect(localReply(flag).flag).toBe(flag);
  });

  it('answers each flag with the statuses README "Response flags" documents, and no others', () => {
    const documented = documentedStatuses();
    for (const flag of Object.values(FLAG)) {
      const statuses = reasons.filter((r) => REPLIES[r].flag === flag).map((r) => REPLIES[r].status);
      expect([flag, [...statuses].sort()]).toEqual([flag, [...(documented.get(flag) ?? [])].sort()]);
    }
    expect([...documented.keys()].sort()).toEqual(Object.values(FLAG).sort());
  });

  it('gives each downstream protocol error its own status under flag DPE', () => {
    expect(localReply(REASON.BadRequest)).toMatchObject({ status: 400, flag: 'DPE' });
    expect(localReply(REASON.HeadTimeout)).toMatchObject({ status: 408, flag: 'DPE' });
    expect(localReply(REASON.RequestTooLarge)).toMatchObject({ status: 413, flag: 'DPE' });
    expect(localReply(REASON.HeadersTooLarge)).toMatchObject({ status: 431, flag: 'DPE' });
    expect(localReply(REASON.UnsupportedExpectation)).toMatchObject({
      status: 417,
      flag: 'DPE',
      message: 'unsupported expectation',
    });
  });

  it('maps each flag to the gRPC status README documents', () => {
    const grpc: Record<string, number> = {
      NR: GRPC_STATUS.UNIMPLEMENTED,
      UH: GRPC_STATUS.UNAVAILABLE,
      UF: GRPC_STATUS.UNAVAILABLE,
      UC: GRPC_STATUS.UNAVAILABLE,
      UT: GRPC_STATUS.DEADLINE_EXCEEDED,
      UPE: GRPC_STATUS.INTERNAL,
      IE: GRPC_STATUS.INTERNAL,
      RL: GRPC_STATUS.RESOURCE_EXHAUSTED,
      RBAC: GRPC_STATUS.PERMISSION_DENIED,
      UO: GRPC_STATUS.UNAVAILABLE,
      FI: GRPC_STATUS.UNAVAILABLE,
      URX: GRPC_STATUS.UNAVAILABLE,
    };
    for (const [flag, status] of Object.entries(grpc))
      expect([flag, REPLIES[flag as ReplyReason].grpcStatus]).toEqual([flag, status]);
  });
});
