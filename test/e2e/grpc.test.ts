// gRPC through the proxy end to end: a real grpc-js client calls the proxy's listener, which forwards to a
// real grpc-js server (or, where a test needs to misbehave on the wire, a raw node:http2 server).
// Covers every call shape, metadata and trailers, statuses, deadlines, cancellation in both directions and
// the proxy's own errors, which must be gRPC statuses carrying the response flag.
import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeGrpcMessage } from '../../proxy/http2.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import {
  type EchoClient,
  type EchoHandlers,
  type EchoReply,
  type EchoRequest,
  echoClient,
  echoMethods,
  grpcError,
  grpcFrame,
  startGrpcUpstream,
  unary,
} from '../support/grpc-echo.ts';
import { startH2Upstream } from '../support/h2-upstream.ts';
import { quickConfig, type RunningProxy, startProxy, type Upstream } from '../support/proxy.ts';
import { waitFor } from '../support/wait-for.ts';

const Status = grpc.status;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  // Last started, first closed: clients, then the proxy, then upstreams.
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function proxyTo(addresses: string[], extra: Partial<ConfigInput> = {}): Promise<RunningProxy> {
  const proxy = await startProxy(quickConfig(addresses, extra));
  cleanups.push(() => proxy.close());
  return proxy;
}

function clientOf(proxy: RunningProxy): EchoClient {
  const client = echoClient(`127.0.0.1:${proxy.port()}`);
  cleanups.push(() => client.close());
  return client;
}

/** A grpc-js Echo server behind a proxy, and a client pointed at the proxy. */
async function echoThroughProxy(
  handlers: Partial<EchoHandlers> = {},
  extra: Partial<ConfigInput> = {},
): Promise<{ client: EchoClient; proxy: RunningProxy }> {
  const upstream = await startGrpcUpstream(handlers);
  cleanups.push(() => upstream.close());
  const proxy = await proxyTo([upstream.address], extra);
  return { client: clientOf(proxy), proxy };
}

/** An h2c server whose streams the test answers by hand, closed after the test. */
async function startRawH2Upstream(onStream: (stream: http2.ServerHttp2Stream) => void): Promise<Upstream> {
  const upstream = await startH2Upstream(onStream);
  cleanups.push(() => upstream.close());
  return upstream;
}

/** A 127.0.0.1 port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Collects a server stream's messages and its final status (OK or not). */
function drain(
  call: grpc.ClientReadableStream<EchoReply>,
): Promise<{ replies: EchoReply[]; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    const replies: EchoReply[] = [];
    call.on('data', (r: EchoReply) => replies.push(r));
    call.on('error', () => {}); // the status below carries it
    call.on('status', (status: grpc.StatusObject) => resolve({ replies, status }));
  });
}

describe('gRPC through the proxy', () => {
  it('round-trips a unary call with request metadata, response headers and custom trailers', async () => {
    let seen: grpc.Metadata | undefined;
    const { client } = await echoThroughProxy({
      Unary(call, callback) {
        seen = call.metadata;
        const initial = new grpc.Metadata();
        initial.set('x-server-initial', 'hello');
        call.sendMetadata(initial);
        const trailer = new grpc.Metadata();
        trailer.set('x-server-trailer', 'bye');
        trailer.set('x-server-trailer-bin', Buffer.from([0, 1, 2, 255]));
        callback(null, { message: `echo:${call.request.message}`, index: 7 }, trailer);
      },
    });

    const md = new grpc.Metadata();
    md.set('x-client-tag', 'abc');
    md.set('x-client-bin', Buffer.from([9, 8, 7]));
    const { headers, reply, status } = await new Promise<{
      headers: grpc.Metadata;
      reply: EchoReply;
      status: grpc.StatusObject;
    }>((resolve, reject) => {
      let headers = new grpc.Metadata();
      let reply: EchoReply | undefined;
      const call = client.Unary({ message: 'hi' }, md, {}, (err, r) => (err ? reject(err) : (reply = r)));
      call.on('metadata', (m: grpc.Metadata) => {
        headers = m;
      });
      // grpc-js emits 'status' after the callback.
      call.on('status', (status: grpc.StatusObject) => resolve({ headers, reply: reply!, status }));
    });

    expect(headers.get('x-server-initial')).toEqual(['hello']);
    expect(reply).toEqual({ message: 'echo:hi', index: 7 });
    expect(status.code).toBe(Status.OK);
    expect(status.metadata.get('x-server-trailer')).toEqual(['bye']);
    expect(status.metadata.get('x-server-trailer-bin')).toEqual([Buffer.from([0, 1, 2, 255])]);
    expect(seen!.get('x-client-tag')).toEqual(['abc']);
    expect(seen!.get('x-client-bin')).toEqual([Buffer.from([9, 8, 7])]);
    // The mesh's own headers reach a gRPC server as metadata too.
    expect(seen!.get('x-request-id')).toHaveLength(1);
    expect(seen!.get('x-source-service')).toEqual(['test-client']);
  });

  it('delivers every message of a server stream in order', async () => {
    const { client } = await echoThroughProxy();
    const { replies, status } = await drain(client.ServerStream({ message: 'm', count: 100 }));
    expect(status.code).toBe(Status.OK);
    expect(replies).toEqual(Array.from({ length: 100 }, (_, i) => ({ message: `m-${i}`, index: i })));
  });

  it('delivers every message of a client stream and its single reply', async () => {
    const { client } = await echoThroughProxy();
    const reply = await new Promise<EchoReply>((resolve, reject) => {
      const call = client.ClientStream(new grpc.Metadata(), {}, (err, r) => (err ? reject(err) : resolve(r!)));
      for (const m of ['a', 'b', 'c', 'd', 'e']) call.write({ message: m, count: 0 });
      call.end();
    });
    expect(reply).toEqual({ message: 'a,b,c,d,e', index: 5 });
  });

  it('interleaves a bidi stream: each reply arrives before the next request is sent', async () => {
    const { client } = await echoThroughProxy();
    const call = client.BidiStream();
    const received: EchoReply[] = [];
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    let waiting: ((r: EchoReply) => void) | null = null;
    call.on('data', (r: EchoReply) => {
      received.push(r);
      waiting?.(r);
    });
    for (let i = 0; i < 10; i++) {
      const next = new Promise<EchoReply>((resolve) => {
        waiting = resolve;
      });
      call.write({ message: `ping-${i}`, count: 0 });
      expect(await next).toEqual({ message: `ping-${i}`, index: i });
    }
    call.end();
    expect((await status).code).toBe(Status.OK);
    expect(received).toHaveLength(10);
  });

  it('passes an error status from the server through with its code and message', async () => {
    const { client } = await echoThroughProxy({
      Unary(_call, callback) {
        callback({ code: Status.NOT_FOUND, details: 'no echo named "x" (100%)' });
      },
    });
    const err = await grpcError(unary(client, { message: 'x' }));
    expect(err.code).toBe(Status.NOT_FOUND);
    expect(err.details).toBe('no echo named "x" (100%)');
    expect(err.metadata.get('x-skein-flags')).toEqual([]);
  });

  it('passes an error status sent after some stream messages through in the trailers', async () => {
    const { client } = await echoThroughProxy({
      ServerStream(call) {
        call.write({ message: 'one', index: 0 });
        call.write({ message: 'two', index: 1 });
        call.emit('error', { code: Status.RESOURCE_EXHAUSTED, details: 'quota gone' });
      },
    });
    const { replies, status } = await drain(client.ServerStream({ message: 'm', count: 0 }));
    expect(replies.map((r) => r.message)).toEqual(['one', 'two']);
    expect(status.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(status.details).toBe('quota gone');
  });

  it("passes a client's cancel of a server-streaming call on to the server", async () => {
    let serverSawCancel = false;
    const { client } = await echoThroughProxy({
      ServerStream(call) {
        call.on('cancelled', () => {
          serverSawCancel = true;
        });
        call.write({ message: 'first', index: 0 });
        // ...and then nothing until the client gives up.
      },
    });
    const call = client.ServerStream({ message: 'm', count: 0 });
    const done = drain(call);
    call.once('data', () => call.cancel());
    const { replies, status } = await done;
    expect(replies).toEqual([{ message: 'first', index: 0 }]);
    expect(status.code).toBe(Status.CANCELLED);
    await waitFor(() => serverSawCancel);
  });

  it("passes a client's cancel of a bidi call on to the server mid-conversation", async () => {
    let serverSawCancel = false;
    let received = 0;
    const { client } = await echoThroughProxy({
      BidiStream(call) {
        call.on('cancelled', () => {
          serverSawCancel = true;
        });
        call.on('data', (req: EchoRequest) => {
          received++;
          call.write({ message: req.message, index: 0 });
        });
      },
    });
    const call = client.BidiStream();
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    call.on('error', () => {});
    call.write({ message: 'one', count: 0 });
    await new Promise((resolve) => call.once('data', resolve));
    call.cancel();
    expect((await status).code).toBe(Status.CANCELLED);
    await waitFor(() => serverSawCancel);
    expect(received).toBe(1);
  });

  describe('a stream the server resets', () => {
    const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

    /** An h2c gRPC server that sends `replies`, then resets the stream with `code` instead of trailers. */
    async function resettingUpstream(code: number, replies: EchoReply[]): Promise<Upstream> {
      return startRawH2Upstream((stream) => {
        if (replies.length === 0) {
          stream.close(code);
          return;
        }
        // waitForTrailers holds END_STREAM back, so the close below is a real RST_STREAM mid-response
        // (after a plain end(), node would send END_STREAM and drop the reset).
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.close(code));
        stream.end(Buffer.concat(replies.map((r) => grpcFrame(echoMethods.ServerStream.responseSerialize(r)))));
      });
    }

    it.each([
      ['INTERNAL_ERROR', NGHTTP2_INTERNAL_ERROR, Status.UNAVAILABLE],
      ['CANCEL', NGHTTP2_CANCEL, Status.CANCELLED],
    ])(
      'mid-response with %s: the client gets the messages before it, then a failed status',
      async (_name, code, expected) => {
        const upstream = await resettingUpstream(code, [{ message: 'before-reset', index: 0 }]);
        const client = clientOf(await proxyTo([upstream.address]));
        const { replies, status } = await drain(client.ServerStream({ message: 'm', count: 1 }));
        expect(replies.map((r) => r.message)).toEqual(['before-reset']);
        expect(status.code).toBe(expected);
        expect(status.metadata.get('x-skein-flags')).toEqual(['UC']);
      },
    );

    it.each([
      // Each is retried (the default policy retries resets and refused streams), so the flag says URX too.
      ['INTERNAL_ERROR', NGHTTP2_INTERNAL_ERROR, Status.UNAVAILABLE, 'UC,URX'],
      ['CANCEL', NGHTTP2_CANCEL, Status.CANCELLED, 'UC,URX'],
      // REFUSED_STREAM: the server did not process the request, so it counts as a connect failure.
      ['REFUSED_STREAM', NGHTTP2_REFUSED_STREAM, Status.UNAVAILABLE, 'UF,URX'],
    ])('before responding with %s: the client gets a failed status', async (_name, code, expected, flag) => {
      const upstream = await resettingUpstream(code, []);
      const client = clientOf(await proxyTo([upstream.address]));
      const err = await grpcError(unary(client, { message: 'x' }));
      expect(err.code).toBe(expected);
      expect(err.metadata.get('x-skein-flags')).toEqual([flag]);
    });

    it('when the grpc-js server shuts down mid-stream, the client gets a failed status', async () => {
      const upstream = await startGrpcUpstream({
        ServerStream(call) {
          call.write({ message: 'first', index: 0 });
          // Holds the stream open: the test shuts the server down under it.
        },
      });
      cleanups.push(() => upstream.close());
      const client = clientOf(await proxyTo([upstream.address]));
      const call = client.ServerStream({ message: 'm', count: 0 });
      const done = drain(call);
      call.once('data', () => void upstream.close());
      const { replies, status } = await done;
      expect(replies).toHaveLength(1);
      expect([Status.CANCELLED, Status.INTERNAL, Status.UNAVAILABLE]).toContain(status.code);
    });
  });

  it('answers UNAVAILABLE with flag UF (and URX: the default retries ran out) when nothing listens upstream', async () => {
    const client = clientOf(await proxyTo([`127.0.0.1:${await closedPort()}`]));
    const err = await grpcError(unary(client, { message: 'x' }));
    expect(err.code).toBe(Status.UNAVAILABLE);
    // Percent-decoded by the client: no "%3A" or "%20" left over from the proxy's encoding.
    expect(err.details).toMatch(/^upstream connect error: .*ECONNREFUSED/);
    expect(err.metadata.get('x-skein-flags')).toEqual(['UF,URX']);
  });

  it('answers UNIMPLEMENTED with flag NR when no route matches the method path', async () => {
    const { client } = await echoThroughProxy(
      {},
      {
        listeners: [
          { name: 'main', address: '127.0.0.1:0', routes: [{ cluster: 'upstream', match: { path: '/nothing' } }] },
        ],
      },
    );
    const err = await grpcError(unary(client, { message: 'x' }));
    expect(err.code).toBe(Status.UNIMPLEMENTED);
    expect(err.details).toBe('no route');
    expect(err.metadata.get('x-skein-flags')).toEqual(['NR']);
  });

  it('tells the server the deadline the proxy enforces: the shorter of the client deadline and the route timeout', async () => {
    const remainingMs: number[] = [];
    const upstream = await startGrpcUpstream({
      Unary(call, callback) {
        // grpc-js turns the grpc-timeout it received into an absolute deadline.
        remainingMs.push(Number(call.getDeadline()) - Date.now());
        callback(null, { message: call.request.message, index: 0 });
      },
    });
    cleanups.push(() => upstream.close());
    const proxy = await proxyTo([upstream.address], {
      clusters: [
        {
          name: 'upstream',
          timeouts: { requestMs: 5_000 },
          discovery: { type: 'static', endpoints: [{ address: upstream.address }] },
        },
      ],
    });
    const client = clientOf(proxy);
    await unary(client, { message: 'long deadline' }, new grpc.Metadata(), { deadline: Date.now() + 60_000 });
    await unary(client, { message: 'short deadline' }, new grpc.Metadata(), { deadline: Date.now() + 2_000 });
    // 60 s asked, 5 s route timeout: the server learns 5 s. 2 s asked: the server learns (at most) 2 s.
    expect(remainingMs[0]).toBeGreaterThan(3_000);
    expect(remainingMs[0]).toBeLessThanOrEqual(5_000);
    expect(remainingMs[1]).toBeGreaterThan(0);
    expect(remainingMs[1]).toBeLessThanOrEqual(2_000);
  });

  describe('grpc-timeout shorter than the route timeout', () => {
    it('ends a grpc-js call with DEADLINE_EXCEEDED at its deadline, not at the route timeout, and cancels it on the server', async () => {
      let serverCall: grpc.ServerUnaryCall<EchoRequest, EchoReply> | undefined;
      let cancels = 0;
      const upstream = await startGrpcUpstream({
        Unary(call) {
          serverCall = call;
          call.on('cancelled', () => cancels++); // and never answers
        },
      });
      cleanups.push(() => upstream.close());
      const proxy = await proxyTo([upstream.address], {
        clusters: [
          {
            name: 'upstream',
            timeouts: { requestMs: 15_000 },
            discovery: { type: 'static', endpoints: [{ address: upstream.address }] },
          },
        ],
      });
      const client = clientOf(proxy);
      const started = Date.now();
      const err = await grpcError(unary(client, { message: 'x' }, new grpc.Metadata(), { deadline: Date.now() + 300 }));
      expect(err.code).toBe(Status.DEADLINE_EXCEEDED);
      expect(Date.now() - started).toBeLessThan(10_000);
      await waitFor(() => cancels === 1);
      expect(serverCall!.cancelled).toBe(true);
    });

    it('is enforced by the proxy itself: DEADLINE_EXCEEDED with flag UT, and the upstream stream is reset', async () => {
      // Neither side keeps a deadline of its own here (a grpc-js server or client would act on
      // grpc-timeout too), so whatever ends the call is the proxy.
      let upstreamReset = -1;
      const upstream = await startRawH2Upstream((stream) => {
        stream.on('close', () => {
          upstreamReset = stream.rstCode ?? -1;
        });
      });
      const proxy = await proxyTo([upstream.address], {
        clusters: [
          {
            name: 'upstream',
            timeouts: { requestMs: 15_000 },
            discovery: { type: 'static', endpoints: [{ address: upstream.address }] },
          },
        ],
      });
      const session = http2.connect(proxy.url());
      cleanups.push(() => session.destroy());
      const started = Date.now();
      const stream = session.request({
        ':method': 'POST',
        ':path': '/skein.test.Echo/Unary',
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': '300m',
      });
      stream.end(grpcFrame(echoMethods.Unary.requestSerialize({ message: 'x' })));
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
      stream.resume();
      expect(headers['grpc-status']).toBe(String(Status.DEADLINE_EXCEEDED));
      expect(headers['x-skein-flags']).toBe('UT');
      expect(Date.now() - started).toBeLessThan(10_000);
      await waitFor(() => upstreamReset === http2.constants.NGHTTP2_CANCEL);
    });
  });
});

describe('grpc-message encoding of proxy-generated statuses', () => {
  it('leaves printable ASCII as is and percent-encodes "%" and every non-ASCII byte', () => {
    expect(encodeGrpcMessage('upstream connect error: connect ECONNREFUSED 127.0.0.1:1')).toBe(
      'upstream connect error: connect ECONNREFUSED 127.0.0.1:1',
    );
    expect(encodeGrpcMessage('100% sûr\n')).toBe('100%25 s%C3%BBr%0A');
    expect(decodeURIComponent(encodeGrpcMessage('100% sûr\n'))).toBe('100% sûr\n');
  });
});
