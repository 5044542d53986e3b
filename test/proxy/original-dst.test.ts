// The original-destination read (native addon) and the protocol sniff of captured connections, without iptables:
// a connection that was not redirected has no original destination (test/e2e/transparent-capture.test.ts has the
// redirected ones).
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { looksLikeHttp1 } from '../../proxy/listener.ts';
import { originalDstAddon, parseOriginalDstKey, readOriginalDst } from '../../proxy/original-dst.ts';

describe('original destination', () => {
  it('is built and loads on Linux (npm run build compiles native/original-dst.c)', () => {
    expect(originalDstAddon().why).toBe('');
    expect(originalDstAddon().addon).not.toBeNull();
  });

  it('is null for a connection that was not redirected, and the addon says ENOENT / ENOTSOCK', async () => {
    const server = net.createServer();
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const accepted = new Promise<net.Socket>((done) => server.once('connection', done));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const socket = await accepted;
    try {
      expect(readOriginalDst(socket, (server.address() as net.AddressInfo).port)).toBeNull();
      const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
      expect(originalDstAddon().addon!.originalDst(fd)).toBeLessThan(0);
      expect(() => originalDstAddon().addon!.originalDst(-1)).toThrow(TypeError);
    } finally {
      client.destroy();
      socket.destroy();
      server.close();
    }
  });

  it('splits the addon keys into host and port', () => {
    expect(parseOriginalDstKey('10.96.0.10:80')).toEqual({ key: '10.96.0.10:80', host: '10.96.0.10', port: 80 });
    expect(parseOriginalDstKey('[fd00::10]:443')).toEqual({ key: '[fd00::10]:443', host: 'fd00::10', port: 443 });
  });

  it('tells HTTP/1.x from other first bytes on a captured port', () => {
    for (const yes of ['GET / HTTP/1.1\r\n', 'OPTIONS * HTTP/1.1\r\n', 'PROPFIND /', 'GE', 'DELETE'])
      expect(looksLikeHttp1(Buffer.from(yes)), yes).toBe(true);
    for (const no of ['\x16\x03\x01\x02\x00', 'get / HTTP/1.1', 'GO /', '\x00\x00\x00\x08', 'ABCDEFGHIJKLMNOPQRSTU'])
      expect(looksLikeHttp1(Buffer.from(no, 'latin1')), JSON.stringify(no)).toBe(false);
  });
});
