// Key pairs for the CA and for workloads: ECDSA P-256 (the default) or RSA 2048/3072, made and loaded through
// WebCrypto (what @peculiar/x509 signs with) and kept on disk as PKCS#8 PEM.
import { webcrypto } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export type KeyType = 'ec' | 'rsa2048' | 'rsa3072';
export const KEY_TYPES: readonly KeyType[] = ['ec', 'rsa2048', 'rsa3072'];

const subtle = webcrypto.subtle;

export function keyAlgorithm(type: KeyType): webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams {
  return type === 'ec' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
}

/** The signature algorithm a key of this type signs certificates and CRLs with. */
export function signingAlgorithm(type: KeyType): webcrypto.Algorithm | webcrypto.EcdsaParams {
  return type === 'ec' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' };
}

export async function generateKeyPair(type: KeyType): Promise<CryptoKeyPair> {
  const algorithm =
    type === 'ec'
      ? { name: 'ECDSA', namedCurve: 'P-256' }
      : {
          name: 'RSASSA-PKCS1-v1_5',
          modulusLength: type === 'rsa2048' ? 2048 : 3072,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: 'SHA-256',
        };
  return (await subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
}

export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await subtle.exportKey('pkcs8', key));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

export async function privateKeyFromPem(pem: string, type: KeyType): Promise<CryptoKey> {
  const body = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, '');
  return subtle.importKey('pkcs8', Buffer.from(body, 'base64'), keyAlgorithm(type), false, ['sign']);
}
