// The file store: the shared store contract, plus what is particular to files: versions are kept in the file,
// the first file format (a plain array) still reads, and a damaged file is moved aside (kept for a person to look
// at) instead of failing control's start or being overwritten.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileStore } from '../../../control/store/file.ts';
import { storeConformance } from './conformance.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'skein-store-'));
  dirs.push(dir);
  return dir;
}

storeConformance('FileStore', {
  fresh: async () => new FileStore({ dir: tmp() }),
  reopen: async (store) => {
    await store.close();
    return new FileStore({ dir: (store as FileStore).dir });
  },
});

describe('FileStore on disk', () => {
  it('writes one JSON file per collection, records in write order with their versions, and no temporary files', async () => {
    const dir = tmp();
    const store = new FileStore({ dir });
    await store.put('bench-jobs', { id: 'a', n: 1 });
    await store.put('bench-jobs', { id: 'b', n: 2 });
    await store.put('bench-jobs', { id: 'a', n: 3 });
    await store.close();
    expect(readdirSync(dir)).toEqual(['bench-jobs.json']);
    expect(JSON.parse(readFileSync(join(dir, 'bench-jobs.json'), 'utf8'))).toEqual({
      format: 2,
      records: [
        { version: 1, record: { id: 'b', n: 2 } },
        { version: 2, record: { id: 'a', n: 3 } },
      ],
    });
  });

  it('reads the first format (a plain JSON array) as version 1 of each record and upgrades it on the next write', async () => {
    const dir = tmp();
    writeFileSync(
      join(dir, 'bench-jobs.json'),
      JSON.stringify([
        { id: 'old', n: 1 },
        { id: 'older', n: 0 },
      ]),
    );
    const store = new FileStore({ dir });
    expect(await store.list('bench-jobs')).toEqual([
      { id: 'old', n: 1 },
      { id: 'older', n: 0 },
    ]);
    expect(await store.getVersioned('bench-jobs', 'old')).toEqual({ record: { id: 'old', n: 1 }, version: 1 });
    expect(await store.putIf('bench-jobs', { id: 'old', n: 2 }, 1)).toBe(2);
    await store.close();
    const again = new FileStore({ dir });
    expect(await again.getVersioned('bench-jobs', 'old')).toEqual({ record: { id: 'old', n: 2 }, version: 2 });
    expect(await again.getVersioned('bench-jobs', 'older')).toEqual({ record: { id: 'older', n: 0 }, version: 1 });
    await again.close();
    expect(JSON.parse(readFileSync(join(dir, 'bench-jobs.json'), 'utf8')).format).toBe(2);
  });

  it('moves a damaged collection file aside, warns where it went and starts the collection empty', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'bench-jobs.json'), '[{"id":"a"'); // cut off mid-write by something else
    const warnings: string[] = [];
    const store = new FileStore({ dir, warn: (m) => warnings.push(m) });
    expect(await store.list('bench-jobs')).toEqual([]);
    expect(warnings).toHaveLength(1);
    const aside = readdirSync(dir).find((f) => f.startsWith('bench-jobs.json.damaged-'));
    expect(aside).toBeDefined();
    expect(warnings[0]).toContain(aside);
    expect(readFileSync(join(dir, aside!), 'utf8')).toBe('[{"id":"a"');
    await store.put('bench-jobs', { id: 'b' });
    await store.close();
    expect(existsSync(join(dir, 'bench-jobs.json'))).toBe(true);
  });
});
