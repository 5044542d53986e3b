// A listener at run time: the bound socket, protocol detection on it (HTTP/1.1 or h2c by the connection
// preface; h2 or HTTP/1.1 by ALPN under TLS; raw TCP), and the scope new requests take (scope.ts: the
// compiled listener and its stage chain). A reload swaps that one reference; requests in flight keep theirs.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import type { ListenerConfig } from '../src/config/schema.ts';
import { parseHostPort } from '../src/discovery/address.ts';
import { Http1Connections, type Http1Limits } from './http1-connections.ts';
import { onHttp2Stream } from './http2.ts';
import type { Logger } from '../src/log.ts';
import type { ListenerScope, ScopeSource } from './scope.ts';
import type { ProxyStats } from './stats.ts';
import { onTcpConnection } from './tcp.ts';
import { originalDstAddon, readOriginalDst, setOriginalDst } from './original-dst.ts';
import type { MeshIdentity } from './mtls/identity.ts';
import { setPeer } from './peer.ts';
import { RefusalLog } from './mtls/upstream.ts';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0');
/** The first byte of a TLS record carrying a handshake (a ClientHello): how permissive mTLS tells TLS from
 *  plaintext on one port. No HTTP method and no h2c preface starts with it. */
const TLS_HANDSHAKE = 0x16;
const HTTP_ALPN = ['h2', 'http/1.1'];

/**
 * A captured connection's first bytes look like HTTP/1.x: a method token (A-Z, as every registered method is
 * spelled) then a space. A read that ends inside the token still counts (a request line split across writes); a
 * token longer than any method, or any other byte, does not: TLS, a database protocol, … go through as TCP.
 */
export function looksLikeHttp1(first: Buffer): boolean {
  const n = Math.min(first.length, 18);
  for (let i = 0; i < n; i++) {
    const b = first[i];
    if (b === 0x20) return i >= 3;
    if (b < 0x41 || b > 0x5a) return false;
  }
  return first.length < 18;
}

/**
 * Same socket and protocol: a reload can keep the bound socket. TLS on both sides counts as the same binding
 * whatever the files: a new certificate is swapped into the running server (prepareTls/applyTls).
 */
export function sameBinding(a: ListenerConfig, b: ListenerConfig): boolean {
  return (
    a.address === b.address &&
    a.protocol === b.protocol &&
    a.originalDst === b.originalDst && // read at accept by the bound server's callbacks
    (a.tls === undefined) === (b.tls === undefined)
  );
}

/** A listener's certificate and key as read from its files; `digest` tells a changed pair from the same one. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly digest: string;
}

/** Reads the pair; compared by contents, so a certificate replaced in place under the same path is seen. */
export function readTlsMaterial(tlsConfig: { certFile: string; keyFile: string }): TlsMaterial {
  const cert = readFileSync(tlsConfig.certFile);
  const key = readFileSync(tlsConfig.keyFile);
  const digest = createHash('sha256').update(cert).update('\0').update(key).digest('hex');
  return { cert, key, digest };
}

export class ListenerRuntime implements ScopeSource {
  readonly name: string;
  readonly log: Logger;
  readonly stats: ProxyStats;
  /** What a request arriving now runs with; replaced whole by a reload. */
  scope: ListenerScope;
  private server: net.Server | null = null;
  private tlsMaterial: TlsMaterial | null = null;
  private readonly h1: Http1Connections;
  private readonly h2: http2.Http2Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private draining = false;
  /** The port the server is bound to (known once listening): readOriginalDst's loop check. */
  private boundPort = -1;
  /** Handshakes of mTLS connections (never bound: sockets are handed to it); built when a mode needs it. */
  private mtlsServer: tls.Server | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly refusals = new RefusalLog();

  constructor(scope: ListenerScope) {
    this.scope = scope;
    this.name = scope.name;
    const log = (this.log = scope.log);
    this.stats = scope.stats;
    this.h1 = new Http1Connections(this, http1Limits(scope.compiled.config));
    this.h2 = http2.createServer({ maxSessionMemory: 64, settings: { maxConcurrentStreams: 1000 } });
    this.h2.on('stream', (stream, headers, flags) => onHttp2Stream(this.scope, stream, headers, flags));
    this.h2.on('session', (session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      if (this.draining) session.close();
    });
    this.h2.on('sessionError', (err) => log.debug('h2 session error', { listener: this.name, error: err.message }));
  }

  /** A new Snapshot's version of this listener (same binding). Limits and timeouts apply to new connections. */
  update(scope: ListenerScope): void {
    this.scope = scope;
    this.h1.limits = http1Limits(scope.compiled.config);
  }

  get address(): net.AddressInfo | null {
    const a = this.server?.address();
    return a !== null && typeof a === 'object' ? a : null;
  }

  listen(): Promise<void> {
    const cfg = this.scope.compiled.config;
    const { host, port } = parseHostPort(cfg.address);
    // Transparent capture: one getsockopt per accepted connection, on these listeners only (original-dst.ts).
    const captured = cfg.originalDst;
    if (captured && originalDstAddon().addon === null)
      this.log.error('original-destination routing unavailable: every connection goes to the listener cluster', {
        listener: this.name,
        cluster: cfg.cluster,
        why: originalDstAddon().why,
      });
    let server: net.Server;
    if (cfg.protocol === 'tcp') {
      // allowHalfOpen: a client's FIN must not end the reply direction (tcp.ts passes it on upstream).
      server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
        this.track(socket);
        if (captured) setOriginalDst(socket, readOriginalDst(socket, this.boundPort));
        if (this.scope.compiled.config.mtls === 'disabled') onTcpConnection(this.scope, socket);
        else this.detect(socket);
      });
    } else if (cfg.tls !== undefined) {
      const material = readTlsMaterial(cfg.tls);
      this.tlsMaterial = material;
      server = tls.createServer(
        { cert: material.cert, key: material.key, ALPNProtocols: ['h2', 'http/1.1'] },
        (socket) => {
          this.track(socket);
          if (captured) setOriginalDst(socket, readOriginalDst(socket, this.boundPort));
          if (socket.alpnProtocol === 'h2') this.h2.emit('connection', socket);
          else this.h1.accept(socket, null);
        },
      );
    } else {
      server = net.createServer({ noDelay: true }, (socket) => {
        this.track(socket);
        if (captured) setOriginalDst(socket, readOriginalDst(socket, this.boundPort));
        this.detect(socket);
      });
    }
    server.on('error', (err) => this.log.error('listener error', { listener: this.name, error: err.message }));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, backlog: 4096 }, () => {
        server.off('error', reject);
        this.boundPort = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  /**
   * For a reload that keeps this listener's socket: the new certificate and key when their contents differ from
   * the running ones, checked by building a secure context (throws on an unreadable file or a key that does not
   * match), or null when nothing changed. Nothing is swapped yet, so a failure leaves the listener as it was.
   */
  prepareTls(next: ListenerConfig): TlsMaterial | null {
    if (next.tls === undefined || this.tlsMaterial === null) return null;
    const material = readTlsMaterial(next.tls);
    if (material.digest === this.tlsMaterial.digest) return null;
    tls.createSecureContext({ cert: material.cert, key: material.key });
    return material;
  }

  /**
   * Swap the certificate on the running server: handshakes from now on get it; connections already open keep
   * the one they were made with, and nothing is dropped.
   */
  applyTls(material: TlsMaterial): void {
    (this.server as tls.Server).setSecureContext({ cert: material.cert, key: material.key });
    this.tlsMaterial = material;
  }

  /**
   * Plaintext HTTP on a shared port: read the first bytes without putting the socket in flowing mode and hand
   * the socket to HTTP/1.1 with them, or put them back for the HTTP/2 server (node:http2 feeds a socket's
   * buffered bytes to nghttp2). Both then consume the socket natively.
   */
  private detect(socket: net.Socket): void {
    const cfg = this.scope.compiled.config;
    // A captured port carries whatever the app speaks: silence past the detection timeout (a server-first
    // protocol) or bytes that are not HTTP go through as TCP, to the same destination.
    const passthrough = this.scope.tcpPassthrough;
    const detectMs = passthrough !== null ? cfg.protocolDetectionTimeoutMs : 0;
    const timeoutMs = detectMs > 0 ? detectMs : cfg.headersTimeoutMs;
    if (timeoutMs > 0)
      socket.setTimeout(timeoutMs, () => {
        // A strict mTLS listener passes nothing through in the clear: a mesh peer speaks first (its ClientHello).
        if (detectMs === 0 || cfg.mtls === 'strict') return void socket.destroy();
        socket.setTimeout(0);
        socket.removeAllListeners('readable');
        this.passThrough(passthrough!, socket, null);
      });
    socket.once('readable', () => {
      const first: Buffer | null = socket.read();
      if (first === null) return; // closed before sending anything
      if (timeoutMs > 0) socket.setTimeout(0);
      const mode = this.scope.compiled.config.mtls;
      if (mode !== 'disabled') {
        if (first[0] === TLS_HANDSHAKE) return this.acceptMtls(socket, first);
        if (mode === 'strict') {
          this.refused('plaintext', 'a plaintext connection on a strict mTLS listener', socket.remoteAddress);
          socket.destroy();
          return;
        }
      }
      if (this.scope.compiled.config.protocol === 'tcp') {
        socket.unshift(first);
        onTcpConnection(this.scope, socket);
        return;
      }
      const n = Math.min(first.length, H2_PREFACE.length);
      if (first.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) {
        socket.unshift(first);
        this.h2.emit('connection', socket);
      } else if (passthrough === null || looksLikeHttp1(first)) this.h1.accept(socket, first);
      else this.passThrough(passthrough, socket, first);
    });
  }

  /** A captured connection that is not HTTP: TCP passthrough (tcp.ts) by its original destination. */
  private passThrough(scope: ListenerScope, socket: net.Socket, first: Buffer | null): void {
    // As a tcp listener's sockets are: a client's FIN is passed on, the reply direction stays open.
    socket.allowHalfOpen = true;
    if (first !== null) socket.unshift(first);
    onTcpConnection(scope, socket);
  }

  /**
   * A TLS ClientHello on an mTLS listener: the handshake runs on this listener's TLS server (never bound; the
   * socket is handed to it, the bytes read so far put back), with the identity's current certificate. The
   * client's certificate is checked after (identity.verify), then the connection goes to HTTP/2 or HTTP/1.1 by
   * ALPN, or to TCP passthrough, with its peer on the socket for every request (peer.ts).
   */
  private acceptMtls(socket: net.Socket, first: Buffer): void {
    const identity = this.scope.identity;
    if (identity === null || !identity.ready) {
      this.refused('no-identity', 'this proxy has no certificate yet', socket.remoteAddress);
      socket.destroy();
      return;
    }
    socket.unshift(first);
    this.ensureMtlsServer(identity).emit('connection', socket);
  }

  private ensureMtlsServer(identity: MeshIdentity): tls.Server {
    if (this.mtlsServer !== null) return this.mtlsServer;
    const tcp = this.scope.compiled.config.protocol === 'tcp';
    const server = tls.createServer({
      ...identity.contextOptions,
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: tcp ? [] : HTTP_ALPN,
      handshakeTimeout: this.scope.compiled.config.headersTimeoutMs || 10_000,
    });
    server.on('secureConnection', (socket: tls.TLSSocket) => this.onMtlsConnection(socket));
    server.on('tlsClientError', (err, socket) => {
      this.stats.mtlsHandshake('inbound', 'handshake-error');
      this.logRefusal('handshake-error', err.message, socket.remoteAddress);
    });
    // A rotated certificate, a new bundle or CRL: handshakes from now on use them; open connections keep theirs.
    this.unsubscribe = identity.subscribe((id) => {
      const options = id.contextOptions;
      if (options !== null) server.setSecureContext(options);
    });
    this.mtlsServer = server;
    return server;
  }

  private onMtlsConnection(socket: tls.TLSSocket): void {
    const identity = this.scope.identity!;
    const check = identity.verify(socket, null);
    if (!check.ok) {
      this.refused(check.reason, check.detail, socket.remoteAddress);
      socket.destroy();
      return;
    }
    this.stats.mtlsHandshake('inbound', 'ok');
    setPeer(socket, { spiffeId: check.spiffeId, certSha256: check.certSha256 });
    socket.on('error', () => {}); // reported through the request or session that owns it
    // Captured: the TLS socket is a new object over the same fd; its original destination is read again.
    if (this.scope.compiled.config.originalDst) setOriginalDst(socket, readOriginalDst(socket, this.boundPort));
    const passthrough = this.scope.tcpPassthrough;
    if (this.scope.compiled.config.protocol === 'tcp') onTcpConnection(this.scope, socket);
    else if (socket.alpnProtocol === 'h2') this.h2.emit('connection', socket);
    // A peer's proxy offers no ALPN for raw TCP: on a captured http listener that is TCP passthrough.
    else if (passthrough !== null && socket.alpnProtocol !== 'http/1.1') this.passThrough(passthrough, socket, null);
    else this.h1.accept(socket, null);
  }

  /** A connection refused by mTLS: counted by reason, and logged (at most once a second per reason). */
  private refused(reason: string, detail: string, remote: string | undefined): void {
    this.stats.mtlsHandshake('inbound', reason);
    this.logRefusal(reason, detail, remote);
  }

  private logRefusal(reason: string, detail: string, remote: string | undefined): void {
    if (!this.refusals.due(reason)) return;
    this.log.warn('mtls: connection refused', { listener: this.name, reason, detail, remote });
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    this.stats.downstreamConnections(this.name, +1);
    socket.on('error', () => {}); // reported through the request or session that owns it
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.stats.downstreamConnections(this.name, -1);
    });
    if (this.draining) socket.destroy();
  }

  /** Stop accepting; ask keep-alive and h2 clients to go away once their requests finish. */
  startDrain(): void {
    this.draining = true;
    this.server?.close();
    // HTTP/1.1: idle connections close now, busy ones get `connection: close` on their response.
    this.h1.startDrain();
    for (const s of this.sessions) s.close(); // GOAWAY: streams in flight finish
  }

  /** Cut whatever is left. */
  destroy(): void {
    this.unsubscribe?.();
    this.server?.close();
    this.h1.closeAll();
    for (const s of this.sessions) s.destroy();
    for (const s of this.sockets) s.destroy();
  }

  get openConnections(): number {
    return this.sockets.size;
  }
}

function http1Limits(cfg: ListenerConfig): Http1Limits {
  return {
    maxHeaderBytes: cfg.maxHeaderBytes,
    headersTimeoutMs: cfg.headersTimeoutMs,
    idleTimeoutMs: cfg.idleTimeoutMs,
  };
}
