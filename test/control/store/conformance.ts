// The cases every control store must pass (the file store and the Redis store): records come back equal, in
// write order, replaced by id, deleted, isolated per collection, and still there when the store is opened again;
// versions count writes, putIf lets exactly one of two racing writers win, and watch tells who changed what.
import { describe, expect, it } from 'vitest';
import { type RecordStore, VersionConflict } from '../../../control/store/types.ts';
import { waitForAsync } from '../../support/wait-for.ts';

export interface StoreFactory {
  /** A store over a fresh, empty backing (a new directory, a new key prefix). */
  fresh(): Promise<RecordStore>;
  /** Another store over the same backing as `store` (as after a restart). */
  reopen(store: RecordStore): Promise<RecordStore>;
  /**
   * A second store open at the same time as `store`, over the same backing (another control replica). Absent
   * for stores one process owns alone (the file store).
   */
  shared?(store: RecordStore): Promise<RecordStore>;
}

/** Collects the ids a watch reports. */
function watcher(store: RecordStore, collection: string): { ids: string[]; stop: () => void } {
  const ids: string[] = [];
  const stop = store.watch(collection, (id) => ids.push(id));
  return { ids, stop };
}

async function conflictOf(p: Promise<unknown>): Promise<VersionConflict> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VersionConflict);
  return err as VersionConflict;
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

    it('waits in close for writes still in flight, even right after a first watch', async () => {
      const store = await factory.fresh();
      store.watch('jobs', () => {});
      const writes = Array.from({ length: 20 }, (_, i) => store.put<Job>('jobs', { id: `w${i}`, status: 'x' }));
      const again = await factory.reopen(store); // closes `store` first
      await Promise.all(writes);
      expect(await again.list('jobs')).toHaveLength(20);
      await again.close();
    });

    it('rejects collection and id names that are not safe as file names or keys', async () => {
      const store = await factory.fresh();
      await expect(store.put('../etc', { id: 'a' })).rejects.toThrow(/invalid collection name/);
      await expect(store.put('jobs', { id: 'a/b' })).rejects.toThrow(/invalid record id/);
      await store.close();
    });

    it('counts versions: 1 on the first write, one more per put or putIf, kept across a reopen', async () => {
      const store = await factory.fresh();
      expect(await store.getVersioned('jobs', 'a')).toBeUndefined();
      await store.put<Job>('jobs', { id: 'a', status: 'queued' });
      expect(await store.getVersioned<Job>('jobs', 'a')).toEqual({ record: { id: 'a', status: 'queued' }, version: 1 });
      await store.put<Job>('jobs', { id: 'a', status: 'running' });
      expect(await store.putIf<Job>('jobs', { id: 'a', status: 'done' }, 2)).toBe(3);
      const again = await factory.reopen(store);
      expect(await again.getVersioned<Job>('jobs', 'a')).toEqual({ record: { id: 'a', status: 'done' }, version: 3 });
      await again.close();
    });

    it('starts a deleted and re-written record again at version 1', async () => {
      const store = await factory.fresh();
      await store.put<Job>('jobs', { id: 'a', status: 'one' });
      await store.put<Job>('jobs', { id: 'a', status: 'two' });
      await store.delete('jobs', 'a');
      await expect(store.putIf<Job>('jobs', { id: 'a', status: 'new' }, 0)).resolves.toBe(1);
      expect((await store.getVersioned('jobs', 'a'))!.version).toBe(1);
      await store.close();
    });

    it('putIf writes over the expected version and refuses another, reporting the current one', async () => {
      const store = await factory.fresh();
      expect(await store.putIf<Job>('jobs', { id: 'a', status: 'created' }, 0)).toBe(1);
      expect(await store.putIf<Job>('jobs', { id: 'a', status: 'second' }, 1)).toBe(2);
      const stale = await conflictOf(store.putIf<Job>('jobs', { id: 'a', status: 'stale' }, 1));
      expect(stale.current).toBe(2);
      expect(stale.message).toContain('jobs/a');
      const exists = await conflictOf(store.putIf<Job>('jobs', { id: 'a', status: 'again' }, 0));
      expect(exists.current).toBe(2);
      const missing = await conflictOf(store.putIf<Job>('jobs', { id: 'b', status: 'x' }, 4));
      expect(missing.current).toBe(0);
      expect(await store.getVersioned<Job>('jobs', 'a')).toEqual({ record: { id: 'a', status: 'second' }, version: 2 });
      expect(await store.get('jobs', 'b')).toBeUndefined();
      await store.close();
    });

    it('lets exactly one of two concurrent putIf over the same version win', async () => {
      const store = await factory.fresh();
      await store.put<Job>('jobs', { id: 'a', status: 'queued' });
      const results = await Promise.allSettled([
        store.putIf<Job>('jobs', { id: 'a', status: 'by-one' }, 1),
        store.putIf<Job>('jobs', { id: 'a', status: 'by-two' }, 1),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(VersionConflict);
      expect(((lost[0] as PromiseRejectedResult).reason as VersionConflict).current).toBe(2);
      const winner = results[0]!.status === 'fulfilled' ? 'by-one' : 'by-two';
      expect(await store.getVersioned<Job>('jobs', 'a')).toEqual({ record: { id: 'a', status: winner }, version: 2 });
      // Two creators racing (expected 0): one record, one winner.
      const creates = await Promise.allSettled([
        store.putIf<Job>('jobs', { id: 'new', status: 'one' }, 0),
        store.putIf<Job>('jobs', { id: 'new', status: 'two' }, 0),
      ]);
      expect(creates.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      await store.close();
    });

    it('tells a watcher the id after each put, putIf and delete in its collection, until it stops', async () => {
      const store = await factory.fresh();
      const jobs = watcher(store, 'jobs');
      const probes = watcher(store, 'probes');
      await store.put<Job>('jobs', { id: 'a', status: 'queued' });
      await store.putIf<Job>('jobs', { id: 'b', status: 'queued' }, 0);
      await store.delete('jobs', 'a');
      await expect(store.putIf<Job>('jobs', { id: 'b', status: 'x' }, 7)).rejects.toBeInstanceOf(VersionConflict);
      expect(await store.delete('jobs', 'never-there')).toBe(false);
      await store.put<Job>('jobs', { id: 'last', status: 'queued' });
      await waitForAsync(async () => jobs.ids.includes('last'), 5_000);
      // A refused putIf and a delete of nothing changed nothing: no notification.
      expect(jobs.ids).toEqual(['a', 'b', 'a', 'last']);
      expect(probes.ids).toEqual([]);
      jobs.stop();
      await store.put<Job>('jobs', { id: 'after-stop', status: 'queued' });
      await store.put<Job>('probes', { id: 'p', status: 'x' });
      await waitForAsync(async () => probes.ids.includes('p'), 5_000);
      expect(jobs.ids).toEqual(['a', 'b', 'a', 'last']);
      probes.stop();
      await store.close();
    });

    it.skipIf(factory.shared === undefined)(
      'sees writes through another store over the same backing, in its reads and in its watch',
      async () => {
        const a = await factory.fresh();
        const b = await factory.shared!(a);
        const seen = watcher(a, 'jobs');
        // A write through A itself first: once A has seen it, A's watch is surely listening for B's too.
        await a.put<Job>('jobs', { id: 'mine', status: 'from-a' });
        await waitForAsync(async () => seen.ids.includes('mine'), 5_000);
        await b.put<Job>('jobs', { id: 'x', status: 'from-b' });
        await waitForAsync(async () => seen.ids.includes('x'), 5_000);
        expect(await a.getVersioned<Job>('jobs', 'x')).toEqual({ record: { id: 'x', status: 'from-b' }, version: 1 });
        await b.delete('jobs', 'x');
        await waitForAsync(async () => seen.ids.length === 3, 5_000);
        expect(seen.ids).toEqual(['mine', 'x', 'x']);
        const results = await Promise.allSettled([
          a.putIf<Job>('jobs', { id: 'y', status: 'a' }, 0),
          b.putIf<Job>('jobs', { id: 'y', status: 'b' }, 0),
        ]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect(results.filter((r) => r.status === 'rejected' && r.reason instanceof VersionConflict)).toHaveLength(1);
        seen.stop();
        await b.close();
        await a.close();
      },
    );
  });
}
