// `--store` and `--store-prefix` as control reads them: what is accepted, what is refused (naming the option),
// and what control prints about where its records are.
import { describe, expect, it } from 'vitest';
import { describeStore, parseStoreChoice } from '../../../control/store/open.ts';

describe('--store and --store-prefix', () => {
  it('takes file, or a redis:// URL with an optional port and database number and the prefix default skein', () => {
    expect(parseStoreChoice('file', undefined)).toEqual({ kind: 'file' });
    expect(parseStoreChoice('redis://10.0.0.5:6380/2', 'staging:skein')).toEqual({
      kind: 'redis',
      url: 'redis://10.0.0.5:6380/2',
      prefix: 'staging:skein',
    });
    expect(parseStoreChoice('redis://redis.internal', undefined)).toEqual({
      kind: 'redis',
      url: 'redis://redis.internal',
      prefix: 'skein',
    });
  });

  it('refuses anything else with the option named', () => {
    for (const bad of [
      '',
      'files',
      'redis',
      'rediss://h:6379',
      'http://h:6379',
      'redis://',
      'redis://h:6379/x',
      'redis://h/1?a=b',
    ])
      expect(() => parseStoreChoice(bad, undefined), bad).toThrow(
        /^--store must be 'file' or redis:\/\/HOST:PORT\[\/DB\]/,
      );
    expect(() => parseStoreChoice('redis://h:6379', 'has space')).toThrow(/^--store-prefix must be/);
    expect(() => parseStoreChoice('redis://h:6379', ':leading')).toThrow(/^--store-prefix must be/);
    expect(() => parseStoreChoice('file', 'skein')).toThrow(/^--store-prefix applies to a Redis store only/);
  });

  it('says where the records are without showing a password', () => {
    expect(describeStore({ kind: 'file' }, '/var/lib/skein')).toBe('files under /var/lib/skein/store');
    expect(describeStore({ kind: 'redis', url: 'redis://:s3cret@h:6379/1', prefix: 'skein' }, '/d')).toBe(
      'Redis redis://:***@h:6379/1 prefix skein',
    );
  });
});
