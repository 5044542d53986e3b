// The mesh's CA: a root that signs one intermediate, and the intermediate that signs workload certificates
// (X.509-SVIDs: a spiffe:// URI SAN, serverAuth+clientAuth). Everything lives in one directory (store.ts);
// revocation and CRLs are in crl.ts, root rotation and the trust bundle in rotate.ts.
import { randomBytes, webcrypto } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  Pkcs10CertificateRequest,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
  type JsonGeneralName,
  type PublicKeyType,
} from './x509.ts';
import { generateKeyPair, type KeyType, privateKeyFromPem, privateKeyToPem, signingAlgorithm } from './keys.ts';
import { checkTrustDomain, parseSpiffeIdIn, type SpiffeId } from './spiffe.ts';
import { type CaMeta, type CaPaths, caPaths, ensureDir, readMeta, writeFileAtomic, writeMeta } from './store.ts';

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
export const DEFAULT_LEAF_VALID_HOURS = 24;
export const ROOT_VALID_DAYS = 3650;
export const INTERMEDIATE_VALID_DAYS = 365;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
// A little backdating absorbs clock skew between the CA and the peers that check its certificates.
const BACKDATE_MS = 5 * 60_000;

export interface InitOptions {
  readonly trustDomain?: string;
  readonly keyType?: KeyType;
}

export interface IssuedCertificate {
  /** The leaf then the intermediate, PEM. */
  readonly chainPem: string;
  /** PKCS#8 PEM of the leaf's key, when the CA made it (issueForId). */
  readonly keyPem?: string;
  /** Hexadecimal serial number, lowercase. */
  readonly serial: string;
  readonly spiffeId: string;
  readonly notAfter: Date;
}

/** A CSR for an id other than the one its caller proved (a service account asking for another's identity). */
export class IdentityMismatch extends Error {}

export interface IssueOptions {
  readonly dnsNames?: readonly string[];
  /** IP address SANs (control's own serving certificate, reached by address). */
  readonly ipAddresses?: readonly string[];
  readonly validHours?: number;
  /** issueFromCsr: the SPIFFE id the CSR must name (the caller's proven identity); any id of the domain when absent. */
  readonly requireId?: string;
}

/**
 * 128 random bits as a positive DER INTEGER: hex for @peculiar/x509, which encodes the bytes as given, so a
 * leading 00 keeps a first byte >= 0x80 from reading as negative (17 octets; RFC 5280 allows 20).
 */
export function randomSerial(): string {
  let bytes = randomBytes(16);
  while (bytes[0] === 0) bytes = randomBytes(16); // a leading zero octet would be a non-minimal encoding
  return serialHex(bytes.toString('hex'));
}

/** The hex @peculiar/x509 needs for a positive serial given in any of our forms (no leading zeros, odd length). */
export function serialHex(serial: string): string {
  const even = serial.length % 2 === 1 ? `0${serial}` : serial;
  return Number.parseInt(even.slice(0, 2), 16) >= 0x80 ? `00${even}` : even;
}

export function pemBlocks(text: string, label = 'CERTIFICATE'): string[] {
  return text.match(new RegExp(`-----BEGIN ${label}-----[\\s\\S]+?-----END ${label}-----`, 'g')) ?? [];
}

function rootName(trustDomain: string, generation: number): string {
  return `CN=Skein Root CA ${generation}, O=${trustDomain}`;
}

function intermediateName(trustDomain: string, generation: number): string {
  return `CN=Skein Intermediate CA ${generation}, O=${trustDomain}`;
}

/** Makes a root and an intermediate of the given generation into paths (used by init and rotate-root). */
export async function createGeneration(paths: CaPaths, trustDomain: string, keyType: KeyType, generation: number) {
  ensureDir(paths.dir);
  const now = Date.now();
  const rootKeys = await generateKeyPair(keyType);
  const root = await X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: rootName(trustDomain, generation),
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + ROOT_VALID_DAYS * DAY_MS),
    keys: rootKeys,
    signingAlgorithm: signingAlgorithm(keyType),
    extensions: [
      new BasicConstraintsExtension(true, undefined, true),
      new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
      await SubjectKeyIdentifierExtension.create(rootKeys.publicKey, false),
    ],
  });
  const interKeys = await generateKeyPair(keyType);
  const intermediate = await X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: intermediateName(trustDomain, generation),
    issuer: root.subjectName,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + INTERMEDIATE_VALID_DAYS * DAY_MS),
    publicKey: interKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: signingAlgorithm(keyType),
    extensions: [
      new BasicConstraintsExtension(true, 0, true),
      new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
      await SubjectKeyIdentifierExtension.create(interKeys.publicKey, false),
      await AuthorityKeyIdentifierExtension.create(root, false),
    ],
  });
  writeFileAtomic(paths.rootKey, await privateKeyToPem(rootKeys.privateKey), 0o600);
  writeFileAtomic(paths.rootCert, root.toString('pem') + '\n', 0o644);
  writeFileAtomic(paths.intermediateKey, await privateKeyToPem(interKeys.privateKey), 0o600);
  writeFileAtomic(paths.intermediateCert, intermediate.toString('pem') + '\n', 0o644);
}

/** Creates a CA in dir (root, intermediate, bundle). Refuses a directory that already holds a CA. */
export async function initCa(dir: string, options: InitOptions = {}): Promise<CaMeta> {
  const paths = caPaths(dir);
  const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const keyType = options.keyType ?? 'ec';
  checkTrustDomain(trustDomain);
  for (const file of [paths.meta, paths.rootCert, paths.rootKey, paths.intermediateKey])
    if (existsSync(file)) throw new Error(`${dir} already holds a CA (${file} exists); refusing to overwrite it`);
  await createGeneration(paths, trustDomain, keyType, 1);
  const meta: CaMeta = { trustDomain, keyType, generation: 1, crlNumber: 0, retired: [] };
  writeFileAtomic(paths.bundle, readFileSync(paths.rootCert, 'utf8'), 0o644);
  writeMeta(paths, meta);
  return meta;
}

export interface Signer {
  readonly paths: CaPaths;
  readonly meta: CaMeta;
  readonly certificate: X509Certificate;
  readonly key: webcrypto.CryptoKey;
}

/** Loads an intermediate (the current one by default, or a retired generation's) with its key. */
export async function loadSigner(paths: CaPaths, meta: CaMeta): Promise<Signer> {
  const certificate = new X509Certificate(readFileSync(paths.intermediateCert, 'utf8'));
  const key = await privateKeyFromPem(readFileSync(paths.intermediateKey, 'utf8'), meta.keyType);
  return { paths, meta, certificate, key };
}

function checkValidHours(validHours: number): void {
  if (!(validHours > 0) || !Number.isFinite(validHours))
    throw new Error(`validity must be a number of hours > 0, got ${validHours}`);
}

async function signLeaf(
  dir: string,
  publicKey: PublicKeyType,
  leafIsRsa: boolean,
  spiffe: SpiffeId,
  options: IssueOptions,
): Promise<Omit<IssuedCertificate, 'keyPem'>> {
  const paths = caPaths(dir);
  const meta = readMeta(paths);
  const signer = await loadSigner(paths, meta);
  const validHours = options.validHours ?? DEFAULT_LEAF_VALID_HOURS;
  checkValidHours(validHours);
  const now = Date.now();
  const notAfter = new Date(now + validHours * HOUR_MS);
  if (notAfter > signer.certificate.notAfter)
    throw new Error(
      `a ${validHours} h certificate would outlive the intermediate (valid until ${signer.certificate.notAfter.toISOString()}); run \`skein ca rotate-root\``,
    );
  const names: JsonGeneralName[] = [{ type: 'url', value: spiffe.uri }];
  for (const dns of options.dnsNames ?? []) names.push({ type: 'dns', value: checkDnsName(dns) });
  for (const ip of options.ipAddresses ?? []) {
    if (isIP(ip) === 0) throw new Error(`'${ip}' is not an IP address`);
    names.push({ type: 'ip', value: ip });
  }
  const serial = randomSerial();
  const usage = KeyUsageFlags.digitalSignature | (leafIsRsa ? KeyUsageFlags.keyEncipherment : 0);
  const leaf = await X509CertificateGenerator.create({
    serialNumber: serial,
    // X.509-SVIDs identify by the URI SAN alone; the subject is left empty, which makes the SAN critical.
    subject: '',
    issuer: signer.certificate.subjectName,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter,
    publicKey,
    signingKey: signer.key,
    signingAlgorithm: signingAlgorithm(meta.keyType),
    extensions: [
      new BasicConstraintsExtension(false, undefined, true),
      new KeyUsagesExtension(usage, true),
      new ExtendedKeyUsageExtension([ExtendedKeyUsage.serverAuth, ExtendedKeyUsage.clientAuth], false),
      new SubjectAlternativeNameExtension(names, true),
      await SubjectKeyIdentifierExtension.create(publicKey, false),
      await AuthorityKeyIdentifierExtension.create(signer.certificate, false),
    ],
  });
  const last = meta.lastLeafNotAfter === undefined ? 0 : Date.parse(meta.lastLeafNotAfter);
  if (notAfter.getTime() > last) writeMeta(paths, { ...meta, lastLeafNotAfter: notAfter.toISOString() });
  return {
    chainPem: `${leaf.toString('pem')}\n${signer.certificate.toString('pem')}\n`,
    // Without leading zeros (a first byte under 0x10 prints as 0X): the form revoked.json and the CRL tools use.
    serial: serial.replace(/^0+(?=.)/, ''),
    spiffeId: spiffe.uri,
    notAfter,
  };
}

const DNS_LABEL = /^(\*|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)$/;

/** Returns name when it is a valid DNS SAN (a leading '*' label allowed); throws an Error otherwise. */
export function checkDnsName(name: string): string {
  const labels = name.split('.');
  const ok =
    name.length > 0 &&
    name.length <= 253 &&
    labels.every((label, i) => DNS_LABEL.test(label) && (label !== '*' || i === 0));
  if (!ok) throw new Error(`'${name}' is not a valid DNS name`);
  return name;
}

/** Workload keys the mesh accepts in a CSR: ECDSA P-256 or P-384, or RSA of at least 2048 bits. */
function checkWorkloadKey(algorithm: { name: string; namedCurve?: string; modulusLength?: number }): void {
  if (algorithm.name === 'ECDSA' && (algorithm.namedCurve === 'P-256' || algorithm.namedCurve === 'P-384')) return;
  if (algorithm.name.startsWith('RSA') && (algorithm.modulusLength ?? 0) >= 2048) return;
  const what = algorithm.namedCurve ?? (algorithm.modulusLength === undefined ? '' : `${algorithm.modulusLength} bits`);
  throw new Error(
    `the certificate request's key (${algorithm.name}${what ? ` ${what}` : ''}) is not ECDSA P-256/P-384 or RSA >= 2048 bits`,
  );
}

/** Issues a certificate and a fresh key (of the CA's key type) for a SPIFFE id of this CA's trust domain. */
export async function issueForId(dir: string, id: string, options: IssueOptions = {}): Promise<IssuedCertificate> {
  const meta = readMeta(caPaths(dir));
  const spiffe = parseSpiffeIdIn(id, meta.trustDomain);
  for (const dns of options.dnsNames ?? []) checkDnsName(dns);
  const keys = await generateKeyPair(meta.keyType);
  const issued = await signLeaf(dir, keys.publicKey, meta.keyType !== 'ec', spiffe, options);
  return { ...issued, keyPem: await privateKeyToPem(keys.privateKey) };
}

/**
 * Signs a PKCS#10 CSR (PEM). The CSR's signature must verify and its SAN must hold exactly one URI, a SPIFFE id
 * of this trust domain; its DNS SANs are kept. Subject and other requested extensions are not copied.
 */
export async function issueFromCsr(
  dir: string,
  csrPem: string,
  options: IssueOptions = {},
): Promise<IssuedCertificate> {
  const meta = readMeta(caPaths(dir));
  const block = pemBlocks(csrPem, 'CERTIFICATE REQUEST')[0] ?? pemBlocks(csrPem, 'NEW CERTIFICATE REQUEST')[0];
  if (block === undefined) throw new Error('not a PEM certificate request (no BEGIN CERTIFICATE REQUEST block)');
  let csr: Pkcs10CertificateRequest;
  try {
    csr = new Pkcs10CertificateRequest(block.replace('NEW CERTIFICATE REQUEST', 'CERTIFICATE REQUEST'));
  } catch (err) {
    throw new Error(`the certificate request does not parse: ${(err as Error).message}`);
  }
  checkWorkloadKey(csr.publicKey.algorithm as { name: string; namedCurve?: string; modulusLength?: number });
  let verified = false;
  try {
    verified = await csr.verify();
  } catch {
    verified = false;
  }
  if (!verified) throw new Error('the certificate request signature does not verify');
  const san = csr.extensions.find((ext) => ext instanceof SubjectAlternativeNameExtension);
  const names = san?.names.items ?? [];
  const uris = names.filter((name) => name.type === 'url').map((name) => name.value);
  if (uris.length !== 1)
    throw new Error(`the certificate request must have exactly one URI SAN (a SPIFFE id), it has ${uris.length}`);
  const spiffe = parseSpiffeIdIn(uris[0], meta.trustDomain);
  if (options.requireId !== undefined && spiffe.uri !== options.requireId)
    throw new IdentityMismatch(
      `the certificate request names ${spiffe.uri}; this caller may only have ${options.requireId}`,
    );
  const dnsNames = [...(options.dnsNames ?? []), ...names.filter((n) => n.type === 'dns').map((n) => n.value)];
  for (const dns of dnsNames) checkDnsName(dns);
  const leafIsRsa = csr.publicKey.algorithm.name.startsWith('RSA');
  return signLeaf(dir, csr.publicKey, leafIsRsa, spiffe, { ...options, dnsNames });
}
