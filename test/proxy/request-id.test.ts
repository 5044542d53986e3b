import { describe, expect, it } from 'vitest';
import { nextRequestId } from '../../proxy/request-id.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('generated request ids', () => {
  it('look like version-4 UUIDs, so tools that validate UUIDs accept them', () => {
    for (let i = 0; i < 1000; i++) expect(nextRequestId()).toMatch(UUID_V4);
  });

  it('never repeat within a process', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) seen.add(nextRequestId());
    expect(seen.size).toBe(100_000);
  });
});
