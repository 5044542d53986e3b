// The mesh identity's checks before anything is swapped in, the id patterns, CRL parsing and the renewal
// schedule, on certificates from the project's CA.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initCa, issueForId } from '../../../certs/ca.ts';
import { createCrl, revoke } from '../../../certs/crl.ts';
import { readFileSync } from 'node:fs';
import { createLogger } from '../../../src/log.ts';
import { DEFAULT_POLICY, MeshIdentity, revokedSerials } from '../../../proxy/mtls/identity.ts';
import { compilePatterns } from '../../../src/identity/patterns.ts';
import { renewAtMs } from '../../../proxy/mtls/issuer.ts';
import { expiryWarnings } from '../../../proxy/mtls/expiry.ts';
import { tempDir } from '../../certs/openssl.ts';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

describe('server id patterns (compilePatterns, as a cluster’s serverIds use them)', () => {
  it('matches * as any run of characters, anchored, and nothing else as a pattern', () => {
    const m = compilePatterns(['spiffe://cluster.local/ns/shop/sa/*', 'spiffe://cluster.local/ns/a.b/sa/exact']);
    expect(m('spiffe://cluster.local/ns/shop/sa/web')).toBe(true);
    expect(m('spiffe://cluster.local/ns/a.b/sa/exact')).toBe(true);
    expect(m('spiffe://cluster.local/ns/aXb/sa/exact')).toBe(false); // '.' is a dot, not any character
    expect(m('spiffe://cluster.local/ns/shopping/sa/web')).toBe(false);
    expect(m('xspiffe://cluster.local/ns/shop/sa/web')).toBe(false);
  });
});

describe('renewAtMs', () => {
  it('renews at half the life counted from receipt, or 7 days ahead of the end for long-lived certificates', () => {
    const now = Date.UTC(2026, 11, 4);
    // 24 h certificate backdated 5 minutes: renewed 12 h after it arrived, not 12 h after its notBefore.
    expect(renewAtMs(now, now - 5 * 60_000, now + DAY)).toBe(now + 12 * HOUR);
    expect(renewAtMs(now, now, now + 90 * DAY)).toBe(now + 83 * DAY);
    expect(renewAtMs(now, now, now + 365 * DAY)).toBe(now + 358 * DAY);
  });
});

describe('MeshIdentity', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());
  const log = createLogger('error');

  it('refuses a key that is not the certificate’s, a bundle with no root and an id outside the trust domain; keeps what it had', async () => {
    const ca = join(dir, 'ca');
    await initCa(ca);
    const a = await issueForId(ca, 'spiffe://cluster.local/ns/x/sa/a');
    const b = await issueForId(ca, 'spiffe://cluster.local/ns/x/sa/b');
    const bundlePem = readFileSync(join(ca, 'bundle.pem'), 'utf8');
    const id = new MeshIdentity(log);
    id.update({
      policy: DEFAULT_POLICY,
      material: { keyPem: a.keyPem!, chainPem: a.chainPem },
      trust: { bundlePem, crlPem: '' },
    });
    expect(id.id).toBe('spiffe://cluster.local/ns/x/sa/a');
    expect(id.ready).toBe(true);
    expect(() => id.update({ material: { keyPem: b.keyPem!, chainPem: a.chainPem } })).toThrow(/not the key/);
    expect(() => id.update({ trust: { bundlePem: 'nothing', crlPem: '' } })).toThrow(/no certificate/);
    expect(() => id.update({ policy: { ...DEFAULT_POLICY, trustDomain: 'other.example' } })).toThrow(/trust domain/);
    expect(id.id).toBe('spiffe://cluster.local/ns/x/sa/a');
    // prepare() changes nothing until its commit runs.
    const commit = id.prepare({ material: { keyPem: b.keyPem!, chainPem: b.chainPem } });
    expect(id.id).toBe('spiffe://cluster.local/ns/x/sa/a');
    commit();
    expect(id.id).toBe('spiffe://cluster.local/ns/x/sa/b');
  });

  it('reads the revoked serials of a CRL', async () => {
    const ca = join(dir, 'ca');
    await initCa(ca);
    const a = await issueForId(ca, 'spiffe://cluster.local/ns/x/sa/a');
    await revoke(ca, a.chainPem);
    const { serials, nextUpdateMs } = revokedSerials((await createCrl(ca)).pem);
    expect([...serials]).toEqual([a.serial.toLowerCase().replace(/^0+/, '')]);
    expect(nextUpdateMs).toBeGreaterThan(Date.now());
  });

  it('warns when a quarter of the leaf’s life is left, not before', async () => {
    const ca = join(dir, 'ca');
    await initCa(ca);
    const a = await issueForId(ca, 'spiffe://cluster.local/ns/x/sa/a', { validHours: 24 });
    const id = new MeshIdentity(log);
    id.update({
      material: { keyPem: a.keyPem!, chainPem: a.chainPem },
      trust: { bundlePem: readFileSync(join(ca, 'bundle.pem'), 'utf8'), crlPem: '' },
    });
    expect(expiryWarnings(id, Date.now())).toEqual([]);
    const late = expiryWarnings(id, id.notAfterMs - 2 * HOUR);
    expect(late.map((w) => w.what)).toEqual(['leaf']);
    // The intermediate (a year) and the root (ten years) warn 30 days ahead of their end.
    const nearIntermediateEnd = Date.parse(id.chain[1]!.validTo) - 10 * DAY;
    expect(expiryWarnings(id, nearIntermediateEnd).map((w) => w.what)).toContain('intermediate');
  });
});
