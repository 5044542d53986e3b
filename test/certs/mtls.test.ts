// The CA's certificates in a real mutual-TLS handshake with node:tls: both sides present a leaf, both trust
// bundle.pem, and each checks the other's SPIFFE id.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type PeerCertificate, type TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initCa, issueForId, type IssuedCertificate } from '../../certs/ca.ts';
import { rotateRoot } from '../../certs/rotate.ts';
import { tempDir } from './openssl.ts';

function spiffeOf(cert: PeerCertificate): string | undefined {
  return cert.subjectaltname?.match(/URI:(spiffe:\/\/[^,\s]+)/)?.[1];
}

describe('mTLS with the CA', () => {
  let dir: string;
  let cleanup: () => void;
  const closers: (() => void)[] = [];
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => {
    for (const close of closers.splice(0)) close();
    cleanup();
  });

  async function server(ca: string, leaf: IssuedCertificate) {
    const clientIds: string[] = [];
    const clientErrors: Error[] = [];
    const srv = createServer(
      {
        key: leaf.keyPem,
        cert: leaf.chainPem,
        ca: readFileSync(join(ca, 'bundle.pem')),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket: TLSSocket) => {
        clientIds.push(spiffeOf(socket.getPeerCertificate()) ?? '');
        socket.end('hello');
      },
    );
    srv.on('tlsClientError', (err) => clientErrors.push(err));
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    closers.push(() => srv.close());
    return { port: (srv.address() as AddressInfo).port, clientIds, clientErrors };
  }

  function client(port: number, ca: string, leaf: IssuedCertificate, expectedServer: string) {
    return new Promise<string>((resolve, reject) => {
      const socket = connect({
        host: '127.0.0.1',
        port,
        key: leaf.keyPem,
        cert: leaf.chainPem,
        ca: readFileSync(join(ca, 'bundle.pem')),
        rejectUnauthorized: true,
        // Mesh peers are named by SPIFFE id, not by host name.
        checkServerIdentity: (_host, cert) =>
          spiffeOf(cert) === expectedServer
            ? undefined
            : new Error(`server is ${spiffeOf(cert)}, not ${expectedServer}`),
      });
      let data = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk) => (data += chunk));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
  }

  it.each(['ec', 'rsa2048'] as const)(
    'completes a handshake where each side authenticates the other by its SPIFFE id (%s CA)',
    async (keyType) => {
      const ca = join(dir, 'ca');
      await initCa(ca, { keyType });
      const serverLeaf = await issueForId(ca, 'spiffe://cluster.local/ns/shop/sa/api');
      const clientLeaf = await issueForId(ca, 'spiffe://cluster.local/ns/shop/sa/web');
      const srv = await server(ca, serverLeaf);
      expect(await client(srv.port, ca, clientLeaf, 'spiffe://cluster.local/ns/shop/sa/api')).toBe('hello');
      expect(srv.clientIds).toEqual(['spiffe://cluster.local/ns/shop/sa/web']);
    },
  );

  it('keeps working across a root rotation: a peer on the old intermediate and one on the new trust each other', async () => {
    const ca = join(dir, 'ca');
    await initCa(ca);
    const serverLeaf = await issueForId(ca, 'spiffe://cluster.local/ns/shop/sa/api');
    await rotateRoot(ca);
    const clientLeaf = await issueForId(ca, 'spiffe://cluster.local/ns/shop/sa/web');
    const srv = await server(ca, serverLeaf); // both read the rotated bundle.pem
    expect(await client(srv.port, ca, clientLeaf, 'spiffe://cluster.local/ns/shop/sa/api')).toBe('hello');
    expect(srv.clientIds).toEqual(['spiffe://cluster.local/ns/shop/sa/web']);
  });

  it('refuses a client whose certificate comes from a different CA', async () => {
    const ca = join(dir, 'ca');
    const other = join(dir, 'other');
    await initCa(ca);
    await initCa(other); // same trust domain name, different keys
    const serverLeaf = await issueForId(ca, 'spiffe://cluster.local/ns/shop/sa/api');
    const intruder = await issueForId(other, 'spiffe://cluster.local/ns/shop/sa/web');
    const srv = await server(ca, serverLeaf);
    // The intruder trusts our bundle, so only the server's check of the client certificate can stop it.
    // Under TLS 1.3 the client may finish its half before the server's verdict arrives: then it sees the server
    // close (an alert or an empty stream), never the greeting.
    const outcome = await client(srv.port, ca, intruder, 'spiffe://cluster.local/ns/shop/sa/api').catch(
      (err: Error) => err,
    );
    expect(outcome).not.toBe('hello');
    expect(srv.clientIds).toEqual([]);
    // The server never ran its connection handler and reported the failed handshake.
    for (let i = 0; i < 100 && srv.clientErrors.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(srv.clientErrors.length).toBeGreaterThan(0);
  });

  it('is refused by a client when the server certificate comes from a different CA', async () => {
    const ca = join(dir, 'ca');
    const other = join(dir, 'other');
    await initCa(ca);
    await initCa(other);
    const rogueServer = await issueForId(other, 'spiffe://cluster.local/ns/shop/sa/api');
    const clientLeaf = await issueForId(ca, 'spiffe://cluster.local/ns/shop/sa/web');
    const srv = await server(other, rogueServer);
    await expect(client(srv.port, ca, clientLeaf, 'spiffe://cluster.local/ns/shop/sa/api')).rejects.toThrow(
      /unable to get local issuer certificate|self[- ]signed|unable to verify/i,
    );
    expect(srv.clientIds).toEqual([]);
  });
});
