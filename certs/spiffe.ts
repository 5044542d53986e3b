// SPIFFE ids for workload certificates: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
// The CA checks every id it puts in a URI SAN here, so a certificate never names a malformed or foreign identity.
import { compilePatterns } from '../src/identity/patterns.ts';

export interface SpiffeId {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The canonical string form, spiffe://TD/ns/NS/sa/SA. */
  readonly uri: string;
}

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;
const MAX_ID_LENGTH = 2048;
const MAX_TRUST_DOMAIN_LENGTH = 255;

/** Throws an Error saying what is wrong with a trust domain name (SPIFFE: lowercase letters, digits, '.', '-', '_'). */
export function checkTrustDomain(trustDomain: string): void {
  if (trustDomain.length === 0) throw new Error('trust domain is empty');
  if (trustDomain.length > MAX_TRUST_DOMAIN_LENGTH)
    throw new Error(`trust domain is longer than ${MAX_TRUST_DOMAIN_LENGTH} characters`);
  if (!TRUST_DOMAIN.test(trustDomain))
    throw new Error(
      `trust domain '${trustDomain}' may only hold lowercase letters, digits, '.', '-' and '_' (no port, no user info)`,
    );
}

/** Parses and validates a SPIFFE id of the form spiffe://TD/ns/NS/sa/SA; throws an Error naming the problem. */
export function parseSpiffeId(id: string): SpiffeId {
  if (id.length > MAX_ID_LENGTH) throw new Error(`SPIFFE id is longer than ${MAX_ID_LENGTH} characters`);
  const scheme = 'spiffe://';
  if (!id.startsWith(scheme)) throw new Error(`SPIFFE id '${id}' must start with ${scheme}`);
  const rest = id.slice(scheme.length);
  if (/[?#]/.test(rest)) throw new Error(`SPIFFE id '${id}' may not have a query or fragment`);
  const slash = rest.indexOf('/');
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  checkTrustDomain(trustDomain);
  const path = slash < 0 ? '' : rest.slice(slash);
  const segments = path.split('/').slice(1);
  for (const segment of segments) {
    if (segment === '') throw new Error(`SPIFFE id '${id}' has an empty path segment (or a trailing '/')`);
    if (segment === '.' || segment === '..') throw new Error(`SPIFFE id '${id}' may not have '.' or '..' segments`);
    if (!PATH_SEGMENT.test(segment))
      throw new Error(`SPIFFE id '${id}': path segment '${segment}' may only hold letters, digits, '.', '-' and '_'`);
  }
  if (segments.length !== 4 || segments[0] !== 'ns' || segments[2] !== 'sa')
    throw new Error(`SPIFFE id '${id}' must have the path /ns/<namespace>/sa/<service-account>`);
  return { trustDomain, namespace: segments[1], serviceAccount: segments[3], uri: id };
}

/** Like parseSpiffeId, and the id must belong to trustDomain. */
export function parseSpiffeIdIn(id: string, trustDomain: string): SpiffeId {
  const parsed = parseSpiffeId(id);
  if (parsed.trustDomain !== trustDomain)
    throw new Error(`SPIFFE id '${id}' is in trust domain '${parsed.trustDomain}', not this CA's '${trustDomain}'`);
  return parsed;
}

/**
 * Compiles SPIFFE id patterns (`*` matches any run of characters, e.g. `spiffe://td/ns/ops/sa/*`) into one test;
 * throws when a pattern is not a spiffe:// id pattern.
 */
export function spiffeIdMatcher(patterns: readonly string[]): (id: string) => boolean {
  for (const p of patterns)
    if (!p.startsWith('spiffe://') || p.length > MAX_ID_LENGTH)
      throw new Error(`'${p}' is not a SPIFFE id pattern (spiffe://TRUST-DOMAIN/ns/NS/sa/SA, '*' for any part)`);
  return compilePatterns(patterns);
}
