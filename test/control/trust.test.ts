// Control's trust state (control/trust.ts) over a real CA directory, in process: the CRL is re-signed when due
// (a short resign period here) with a nextUpdate 24 h ahead; a revocation or a new bundle written beside it is
// noticed by the poll; an unchanged directory changes nothing; an intermediate that does not match its key (a
// rotation caught half-way) is refused and the previous state kept.
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initCa, issueForId } from '../../certs/ca.ts';
import { revoke } from '../../certs/crl.ts';
import { caPaths } from '../../certs/store.ts';
import { openCa } from '../../control/ca.ts';
import { type TrustState, TrustWatcher } from '../../control/trust.ts';
import { trustHash } from '../../src/trust-message.ts';
import { eachCaDir } from '../certs/openssl.ts';
import { sleep, waitFor } from '../support/wait-for.ts';

let dir = '';
let caDir = '';
eachCaDir((d, ca) => {
  dir = d;
  caDir = ca;
});

async function watcher(o: { pollMs?: number; resignMs?: number } = {}) {
  const ca = await openCa({ dataDir: dir }, caDir);
  const logs: string[] = [];
  const w = await TrustWatcher.open(ca, { log: (_l, m) => logs.push(m), pollMs: o.pollMs ?? 60_000, ...o });
  const changes: TrustState[] = [];
  w.onChange((s) => changes.push(s));
  return { w, logs, changes };
}

describe('control trust state', () => {
  it('starts with the bundle and a fresh CRL valid 24 h, hashed together; an unchanged directory changes nothing', async () => {
    await initCa(caDir);
    const { w, changes } = await watcher();
    try {
      const s = w.state;
      expect(s.bundle).toBe(readFileSync(caPaths(caDir).bundle, 'utf8'));
      expect(s.hash).toBe(trustHash(s.bundle, s.crl));
      expect(Math.abs(s.crlNextUpdateMs - Date.now() - 24 * 3_600_000)).toBeLessThan(60_000);
      expect(await w.refresh()).toBe(s);
      expect(changes).toEqual([]);
      expect(JSON.parse(w.messageLine.line)).toEqual({ type: 'trust', hash: s.hash, bundle: s.bundle, crl: s.crl });
    } finally {
      w.close();
    }
  });

  it('re-signs the CRL when due, and notices a revocation written beside it at the next poll', async () => {
    await initCa(caDir);
    const { w, changes } = await watcher({ pollMs: 50, resignMs: 300 });
    try {
      const first = w.state;
      await waitFor(() => changes.length >= 1, 5_000);
      expect(changes[0].crlNumber).toBe(first.crlNumber + 1);
      expect(changes[0].bundle).toBe(first.bundle);
      expect(changes[0].hash).not.toBe(first.hash);

      const issued = await issueForId(caDir, 'spiffe://cluster.local/ns/default/sa/web');
      await revoke(caDir, issued.chainPem, 'keyCompromise');
      const seen = await waitFor(() => changes.find((s) => s.revokedSerials.has(issued.serial)), 2_000);
      expect(seen.revocations.map((e) => e.reason)).toEqual(['keyCompromise']);
    } finally {
      w.close();
    }
  });

  it('refuses a CRL signed while the intermediate does not match its key, keeping the previous state', async () => {
    await initCa(caDir);
    const other = join(dir, 'other');
    await initCa(other);
    const { w, logs, changes } = await watcher();
    try {
      const before = w.state;
      copyFileSync(caPaths(other).intermediateCert, caPaths(caDir).intermediateCert);
      await expect(w.refresh()).rejects.toThrow(/the CA directory is changing/);
      await expect(w.refresh()).rejects.toThrow(/the CA directory is changing/);
      expect(logs.filter((m) => m.includes('cannot refresh'))).toHaveLength(1); // said once, not every poll
      expect(w.state).toBe(before);
      await sleep(10);
      expect(changes).toEqual([]);
    } finally {
      w.close();
    }
  });
});
