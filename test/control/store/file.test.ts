// The file store: the shared store contract, plus what is particular to files: a damaged file is moved aside
// (kept for a person to look at) instead of failing control's start or being overwritten.
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
  it('writes one JSON array per collection and leaves no temporary files behind', async () => {
    const dir = tmp();
    const store = new FileStore({ dir });
    await store.put('bench-jobs', { id: 'a', n: 1 });
    await store.put('bench-jobs', { id: 'b', n: 2 });
    await store.close();
    expect(readdirSync(dir)).toEqual(['bench-jobs.json']);
    expect(JSON.parse(readFileSync(join(dir, 'bench-jobs.json'), 'utf8'))).toEqual([
      { id: 'a', n: 1 },
      { id: 'b', n: 2 },
    ]);
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
