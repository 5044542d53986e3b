// TCP passthrough (`protocol: tcp` listeners) with real sockets: bytes round trip untouched, each side's
// end of stream reaches the other, connections are spread over the cluster's endpoints, and a dead
// upstream closes the downstream connection instead of leaving it hanging.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { type RunningProxy, startProxy } from '../support/proxy.ts';
import { waitFor } from '../support/wait-for.ts';

interface TcpUpstream {
  address: string;
  name: string;
  /** Connections accepted so far. */
  accepted: number;
  close(): Promise<void>;
}

/**
 * A raw TCP server. By default it echoes every byte and ends its side when the client ends its side
 * (allowHalfOpen, so the echo of the last bytes is written before the FIN).
 */
async function startTcpUpstream(name: string, onSocket?: (socket: net.Socket) => void): Promise<TcpUpstream> {
  const sockets = new Set<net.Socket>();
  const upstream: TcpUpstream = { address: '', name, accepted: 0, close: async () => {} };
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    upstream.accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (onSocket) onSocket(socket);
    else socket.pipe(socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  upstream.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  upstream.close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return upstream;
}

function tcpConfig(endpoints: string[]): ConfigInput {
  return {
    service: 'test-client',
    admin: { address: '127.0.0.1:0' },
    listeners: [{ name: 'tcp', address: '127.0.0.1:0', protocol: 'tcp', cluster: 'backend' }],
    clusters: [
      {
        name: 'backend',
        lb: { policy: 'round-robin' },
        timeouts: { connectMs: 1_000 },
        discovery: { type: 'static', endpoints: endpoints.map((address) => ({ address })) },
      },
    ],
  };
}

/** A free port with nothing listening on it: bind, note the port, release. */
async function deadAddress(): Promise<string> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  return `127.0.0.1:${port}`;
}

/** Everything the peer sends until it ends its side (or the socket closes), bounded by timeoutMs. */
function readToEnd(socket: net.Socket, timeoutMs = 5_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`no end of stream within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    const done = () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    };
    socket.once('end', done);
    socket.once('close', done);
  });
}

async function readBytes(socket: net.Socket, n: number, timeoutMs = 5_000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  const onData = (c: Buffer) => {
    chunks.push(c);
    got += c.length;
  };
  socket.on('data', onData);
  try {
    await waitFor(() => got >= n, timeoutMs);
  } finally {
    socket.off('data', onData);
  }
  return Buffer.concat(chunks);
}

function openConnections(proxy: RunningProxy): number {
  return (proxy.proxy.describeListeners() as { openConnections: number }[])[0].openConnections;
}

function activeOnEndpoints(proxy: RunningProxy): number {
  const cluster = proxy.proxy.snapshot.clusters.get('backend')!;
  const { endpoints } = cluster.describe() as { endpoints: { activeRequests: number }[] };
  return endpoints.reduce((sum, e) => sum + e.activeRequests, 0);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('tcp passthrough', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });

  async function setup(upstreams: TcpUpstream[]): Promise<RunningProxy> {
    for (const u of upstreams) cleanups.push(() => u.close());
    const proxy = await startProxy(tcpConfig(upstreams.map((u) => u.address)));
    cleanups.push(() => proxy.close());
    return proxy;
  }

  async function dial(proxy: RunningProxy, opts: { allowHalfOpen?: boolean } = {}): Promise<net.Socket> {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port('tcp'), allowHalfOpen: opts.allowHalfOpen });
    socket.on('error', () => {});
    cleanups.push(() => {
      socket.destroy();
    });
    await once(socket, 'connect');
    return socket;
  }

  it('echoes bytes through the proxy unchanged, including a multi-megabyte stream', async () => {
    const proxy = await setup([await startTcpUpstream('a')]);
    const socket = await dial(proxy);
    socket.write('ping\n');
    expect(String(await readBytes(socket, 5))).toBe('ping\n');

    const big = randomBytes(5 * 1024 * 1024);
    const echoed = readBytes(socket, big.length, 10_000);
    socket.write(big);
    const got = await echoed;
    expect(got.length).toBe(big.length);
    expect(sha256(got)).toBe(sha256(big));
  });

  it('keeps the reply direction open after the client half-closes, then ends it', async () => {
    // The upstream answers only once the client has finished sending, like a request/response protocol
    // that uses end of stream as its delimiter.
    const upstream = await startTcpUpstream('a', (socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', () => socket.end(`got ${Buffer.concat(chunks).length} bytes: ${Buffer.concat(chunks)}`));
    });
    const proxy = await setup([upstream]);
    const socket = await dial(proxy, { allowHalfOpen: true });
    const reply = readToEnd(socket);
    socket.end('question');
    expect(String(await reply)).toBe('got 8 bytes: question');
    // Both directions are done: the proxy closes its two sockets and releases the endpoint.
    await waitFor(() => socket.destroyed);
    await waitFor(() => openConnections(proxy) === 0 && activeOnEndpoints(proxy) === 0);
  });

  it('keeps the client-to-upstream direction open after the upstream half-closes', async () => {
    // The upstream sends a greeting and ends its side at once, but keeps reading what the client sends.
    let heard: Promise<string> = Promise.resolve('');
    const upstream = await startTcpUpstream('a', (socket) => {
      heard = readToEnd(socket).then(String);
      socket.end('greeting, and that is all from me');
    });
    const proxy = await setup([upstream]);
    const socket = await dial(proxy, { allowHalfOpen: true });
    expect(String(await readToEnd(socket))).toBe('greeting, and that is all from me');
    await waitFor(() => upstream.accepted === 1);
    socket.end('the client still had this to say');
    expect(await heard).toBe('the client still had this to say');
    await waitFor(() => openConnections(proxy) === 0 && activeOnEndpoints(proxy) === 0);
  });

  it('delivers everything the upstream wrote before it closed to a client that reads late', async () => {
    const big = randomBytes(2 * 1024 * 1024);
    let flushed = false;
    const upstream = await startTcpUpstream('a', (socket) => socket.end(big, () => (flushed = true)));
    const proxy = await setup([upstream]);
    const socket = await dial(proxy);
    // The client reads nothing until the upstream has written everything and sent its FIN, so the proxy
    // still holds part of the data for the client when the upstream side is finished.
    socket.pause();
    await waitFor(() => flushed);
    const all = readToEnd(socket, 10_000);
    socket.resume();
    const got = await all;
    expect(got.length).toBe(big.length);
    expect(sha256(got)).toBe(sha256(big));
  });

  it('spreads connections over two endpoints in turn', async () => {
    const a = await startTcpUpstream('a', (s) => s.end('a'));
    const b = await startTcpUpstream('b', (s) => s.end('b'));
    const proxy = await setup([a, b]);
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const socket = await dial(proxy);
      seen.push(String(await readToEnd(socket)));
    }
    expect(a.accepted).toBe(3);
    expect(b.accepted).toBe(3);
    // Round-robin alternates whatever endpoint it starts at.
    for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toBe(seen[i - 1]);
  });

  it('closes the downstream connection promptly when the upstream refuses it', async () => {
    const proxy = await startProxy(tcpConfig([await deadAddress()]));
    cleanups.push(() => proxy.close());
    const socket = await dial(proxy);
    const started = Date.now();
    await readToEnd(socket, 3_000);
    expect(Date.now() - started).toBeLessThan(3_000);
    await waitFor(() => socket.destroyed);
    const metrics = await (await fetch(`${proxy.adminUrl()}/metrics`)).text();
    expect(metrics).toMatch(/skein_tcp_connections_total\{listener="tcp",response_flag="UF"\} 1/);
  });

  it('closes the downstream connection when the upstream drops an established one', async () => {
    const held: net.Socket[] = [];
    const upstream = await startTcpUpstream('a', (s) => held.push(s));
    const proxy = await setup([upstream]);
    const socket = await dial(proxy);
    await waitFor(() => held.length === 1);
    const closed = once(socket, 'close');
    held[0].destroy();
    await closed;
    await waitFor(() => openConnections(proxy) === 0 && activeOnEndpoints(proxy) === 0);
  });
});
