// The Redis store against a real redis-server: the shared store contract (each store on its own key prefix),
// plus what only a shared backing has: two control replicas seeing each other's writes and racing on putIf.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../../control/store/redis.ts';
import { VersionConflict } from '../../../control/store/types.ts';
import { type RunningRedis, startRedis } from '../../support/redis.ts';
import { waitForAsync } from '../../support/wait-for.ts';
import { storeConformance } from './conformance.ts';

let redis: RunningRedis;
beforeAll(async () => {
  redis = await startRedis();
}, 20_000);
afterAll(async () => {
  await redis?.stop();
});

const freshPrefix = () => `test-${randomBytes(6).toString('hex')}`;

storeConformance('RedisStore', {
  fresh: () => RedisStore.open({ url: redis.url, prefix: freshPrefix() }),
  reopen: async (store) => {
    await store.close();
    return RedisStore.open({ url: redis.url, prefix: (store as RedisStore).prefix });
  },
  shared: (store) => RedisStore.open({ url: redis.url, prefix: (store as RedisStore).prefix }),
});

describe('RedisStore as two control replicas', () => {
  it('each replica reads and hears the other one writes, and of two racing putIf exactly one wins', async () => {
    const prefix = freshPrefix();
    const one = await RedisStore.open({ url: redis.url, prefix });
    const two = await RedisStore.open({ url: redis.url, prefix });
    const heardByOne: string[] = [];
    const heardByTwo: string[] = [];
    one.watch('rules', (id) => heardByOne.push(id));
    two.watch('rules', (id) => heardByTwo.push(id));
    // Both subscriptions are up before the first write (a store's writes wait for its own subscription only):
    // a notification published while the other replica is still subscribing is not one it can hear.
    await Promise.all([one.put('warm-up', { id: 'one' }), two.put('warm-up', { id: 'two' })]);
    await one.put('rules', { id: 'from-one', weight: 1 });
    await two.put('rules', { id: 'from-two', weight: 2 });
    await waitForAsync(async () => heardByOne.length === 2 && heardByTwo.length === 2, 5_000);
    expect(heardByOne).toEqual(['from-one', 'from-two']);
    expect(heardByTwo).toEqual(['from-one', 'from-two']);
    expect(await two.get('rules', 'from-one')).toEqual({ id: 'from-one', weight: 1 });
    expect((await one.list('rules')).map((r) => r.id)).toEqual(['from-one', 'from-two']);

    for (let round = 0; round < 20; round++) {
      const { version } = (await one.getVersioned('rules', 'from-one'))!;
      const results = await Promise.allSettled([
        one.putIf('rules', { id: 'from-one', weight: 10, round }, version),
        two.putIf('rules', { id: 'from-one', weight: 20, round }, version),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]!.reason).toBeInstanceOf(VersionConflict);
      expect((lost[0]!.reason as VersionConflict).current).toBe(version + 1);
      expect((await two.getVersioned('rules', 'from-one'))!.version).toBe(version + 1);
    }
    await one.close();
    await two.close();
  });

  it('refuses to open when Redis cannot be reached, saying where it tried', async () => {
    const probe = await startRedis();
    const url = probe.url;
    await probe.stop();
    await expect(RedisStore.open({ url })).rejects.toThrow(`cannot reach Redis at ${url}`);
  });

  it('uses the database number of the URL: another database is another, empty store', async () => {
    const prefix = freshPrefix();
    const db3 = await RedisStore.open({ url: `${redis.url}/3`, prefix });
    const db0 = await RedisStore.open({ url: redis.url, prefix });
    await db3.put('jobs', { id: 'a' });
    expect(await db3.get('jobs', 'a')).toEqual({ id: 'a' });
    expect(await db0.get('jobs', 'a')).toBeUndefined();
    await db3.close();
    await db0.close();
  });

  it('comes back after Redis restarts: a write made during the outage lands once it is up, and watches fire again', async () => {
    const own = await startRedis();
    const store = await RedisStore.open({ url: own.url, prefix: freshPrefix() });
    try {
      const heard: string[] = [];
      store.watch('jobs', (id) => heard.push(id));
      await store.put('jobs', { id: 'before' });
      await waitForAsync(async () => heard.includes('before'), 5_000);
      await own.stop();
      const during = store.put('jobs', { id: 'during' });
      await own.start();
      await during;
      expect(await store.getVersioned('jobs', 'during')).toEqual({ record: { id: 'during' }, version: 1 });
      // The subscription is renewed by the reconnect, perhaps a little after the command connection's.
      await waitForAsync(async () => {
        await store.put('jobs', { id: 'after' });
        return heard.includes('after');
      }, 10_000);
    } finally {
      await store.close();
      await own.stop();
    }
  }, 30_000);
});
