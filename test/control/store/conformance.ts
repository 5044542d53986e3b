// The cases every control store must pass (the file store now, Redis later): records come back equal, in write
// order, replaced by id, deleted, isolated per collection, and still there when the store is opened again.
import { describe, expect, it } from 'vitest';
import type { RecordStore } from '../../../control/store/types.ts';

export interface StoreFactory {
  /** A store over a fresh, empty backing (a new directory, a new key prefix). */
  fresh(): Promise<RecordStore>;
  /** Another store over the same backing as `store` (as after a restart). */
  reopen(store: RecordStore): Promise<RecordStore>;
}

interface Job {
  id: string;
  status: string;
  figures?: { p50: number; tags: string[] };
}

export function storeConformance(name: string, factory: StoreFactory): void {
  describe(`${name}: the control store contract`, () => {
    it('returns what was put, equal and as a copy the caller cannot change behind its back', async () => {
      const store = await factory.fresh();
      const job: Job = { id: 'a', status: 'queued', figures: { p50: 1.5, tags: ['x'] } };
      await store.put('jobs', job);
      job.status = 'changed after put';
      const got = await store.get<Job>('jobs', 'a');
      expect(got).toEqual({ id: 'a', status: 'queued', figures: { p50: 1.5, tags: ['x'] } });
      got!.figures!.tags.push('mutated');
      expect((await store.get<Job>('jobs', 'a'))!.figures!.tags).toEqual(['x']);
      expect(await store.get('jobs', 'missing')).toBeUndefined();
      await store.close();
    });

    it('lists in write order, a re-put record moving to the end and replacing the old one', async () => {
      const store = await factory.fresh();
      for (const id of ['a', 'b', 'c']) await store.put<Job>('jobs', { id, status: 'queued' });
      await store.put<Job>('jobs', { id: 'a', status: 'running' });
      const listed = await store.list<Job>('jobs');
      expect(listed.map((j) => `${j.id}:${j.status}`)).toEqual(['b:queued', 'c:queued', 'a:running']);
      await store.close();
    });

    it('deletes by id and says whether there was anything to delete', async () => {
      const store = await factory.fresh();
      await store.put<Job>('jobs', { id: 'a', status: 'done' });
      expect(await store.delete('jobs', 'a')).toBe(true);
      expect(await store.delete('jobs', 'a')).toBe(false);
      expect(await store.list('jobs')).toEqual([]);
      await store.close();
    });

    it('keeps collections apart', async () => {
      const store = await factory.fresh();
      await store.put<Job>('jobs', { id: 'same', status: 'job' });
      await store.put<Job>('probes', { id: 'same', status: 'probe' });
      expect((await store.get<Job>('jobs', 'same'))!.status).toBe('job');
      expect((await store.get<Job>('probes', 'same'))!.status).toBe('probe');
      expect(await store.list('never-written')).toEqual([]);
      await store.close();
    });

    it('still has every write that resolved after it is opened again', async () => {
      const store = await factory.fresh();
      await Promise.all(Array.from({ length: 50 }, (_, i) => store.put<Job>('jobs', { id: `j${i}`, status: `s${i}` })));
      await store.delete('jobs', 'j7');
      const again = await factory.reopen(store);
      const listed = await again.list<Job>('jobs');
      expect(listed).toHaveLength(49);
      expect(listed.find((j) => j.id === 'j7')).toBeUndefined();
      expect((await again.get<Job>('jobs', 'j49'))!.status).toBe('s49');
      await again.close();
    });

    it('rejects collection and id names that are not safe as file names or keys', async () => {
      const store = await factory.fresh();
      await expect(store.put('../etc', { id: 'a' })).rejects.toThrow(/invalid collection name/);
      await expect(store.put('jobs', { id: 'a/b' })).rejects.toThrow(/invalid record id/);
      await store.close();
    });
  });
}
