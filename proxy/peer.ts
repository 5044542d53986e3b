// Who is on the other end of a downstream connection, as its mTLS handshake proved: the SPIFFE id in the
// client certificate's URI SAN and the SHA-256 of that certificate (DER, lowercase hex). Set once per
// connection by the listener after the handshake is verified (proxy/mtls/), read by every request on it:
// the authorization stage decides on it, and inbound requests tell the app through x-forwarded-client-cert,
// x-mesh-mtls and x-mesh-cert-fingerprint.
import type { Socket } from 'node:net';

export interface PeerIdentity {
  /** spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>; '' when the certificate carries none. */
  readonly spiffeId: string;
  /** SHA-256 of the peer certificate's DER, lowercase hex. */
  readonly certSha256: string;
}

/** Where a verified connection keeps its peer (a symbol, so nothing else on the socket can set it). */
export const kPeer = Symbol('skein.peer');

export function peerOf(socket: Socket): PeerIdentity | null {
  return (socket as Socket & { [kPeer]?: PeerIdentity })[kPeer] ?? null;
}

export function setPeer(socket: Socket, peer: PeerIdentity): void {
  (socket as Socket & { [kPeer]?: PeerIdentity })[kPeer] = peer;
}
