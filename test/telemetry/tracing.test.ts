// The tracer driven the way the proxy drives it (start → inject → end, with request records and header readers),
// exporting to a real OTLP/HTTP receiver that decodes the protobuf: spans, parents, attributes, sampling, and a
// collector that goes away and comes back.
import net, { type AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TracingConfig } from '../../src/config/schema.ts';
import { OtelRequestTracer, type RequestTrace, createTracer } from '../../src/telemetry/tracing.ts';
import type { RequestRecord } from '../../src/telemetry/types.ts';
import {
  type OtlpReceiver,
  type ReceivedSpan,
  SPAN_KIND,
  STATUS_CODE,
  startOtlpReceiver,
} from '../support/otlp-receiver.ts';
import { waitFor } from '../support/wait-for.ts';

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

type MutableRecord = { -readonly [K in keyof RequestRecord]: RequestRecord[K] };

function record(over: Partial<MutableRecord> = {}): MutableRecord {
  return {
    listenerName: 'outbound',
    direction: 'outbound',
    protocol: 'HTTP/1.1',
    method: 'GET',
    authority: 'backend.mesh:8080',
    path: '/hello',
    scheme: 'http',
    isGrpc: false,
    remoteAddress: '127.0.0.1',
    userAgent: 'curl/8.0',
    requestId: 'req-1',
    startMs: performance.now(),
    endMs: 0,
    upstreamStartMs: 0,
    upstreamHeadersMs: 0,
    status: 0,
    grpcStatus: -1,
    flag: '',
    requestBytes: 0,
    responseBytes: 0,
    upstreamHost: '10.1.2.3:9000',
    clusterName: 'backend',
    routeName: 'default',
    sourceService: 'frontend',
    destinationService: 'backend',
    destinationVersion: 'v2',
    traceId: '',
    spanId: '',
    ...over,
  };
}

function config(receiver: OtlpReceiver, over: Partial<TracingConfig> = {}): TracingConfig {
  return {
    enabled: true,
    endpoint: receiver.url,
    samplingRatio: 1,
    parentBased: true,
    propagation: ['w3c', 'b3multi'],
    maxQueueSize: 2048,
    maxExportBatchSize: 512,
    scheduledDelayMs: 20,
    exportTimeoutMs: 1000,
    ...over,
  };
}

function headers(flat: string[]): Record<string, string> {
  const h: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) h[flat[i]] = flat[i + 1];
  return h;
}

/** One request through the tracer: start with `incoming`, inject, finish with `outcome`. */
function run(
  tracer: OtelRequestTracer,
  incoming: Record<string, string> = {},
  over: Partial<MutableRecord> = {},
  outcome: Partial<MutableRecord> = { status: 200 },
): { state: RequestTrace; out: Record<string, string> } {
  const rec = record(over);
  const state = tracer.start(rec, (name) => incoming[name]);
  const flat: string[] = [];
  rec.upstreamStartMs = performance.now();
  tracer.inject(state, rec, flat);
  Object.assign(rec, { endMs: performance.now() }, outcome);
  tracer.end(state, rec);
  return { state, out: headers(flat) };
}

/**
 * Runs `count` sampled requests, yielding to the event loop now and then so exports (and their failures) run
 * in between, as they would beside real traffic. start/inject/end are synchronous: a request that waited on the
 * collector would show up as one call taking a whole export timeout.
 */
/** The slowest of `count` traced requests. Not a speed test: a request that waited on an export would take the
 *  whole export timeout (300 ms here), which no scheduling noise comes near. */
async function timeRequests(t: OtelRequestTracer, count: number): Promise<{ slowestMs: number }> {
  let slowest = 0;
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    run(t);
    slowest = Math.max(slowest, performance.now() - t0);
    if (i % 250 === 0) await new Promise((r) => setTimeout(r, 15));
  }
  return { slowestMs: slowest };
}

function byKind(spans: ReceivedSpan[], traceId: string, kind: number): ReceivedSpan[] {
  return spans.filter((s) => s.traceId === traceId && s.kind === kind);
}

/** The first span of this trace and kind to arrive at the receiver (waits for it). */
function arrived(receiver: OtlpReceiver, traceId: string, kind: number, timeoutMs = 5_000): Promise<ReceivedSpan> {
  return waitFor(() => byKind(receiver.spans, traceId, kind)[0], timeoutMs);
}

describe('tracer', () => {
  let receiver: OtlpReceiver;
  const tracers: OtelRequestTracer[] = [];

  function tracer(over: Partial<TracingConfig> = {}, service = 'frontend'): OtelRequestTracer {
    const t = new OtelRequestTracer(config(receiver, over), service);
    tracers.push(t);
    return t;
  }

  beforeEach(async () => {
    receiver = await startOtlpReceiver();
  });
  afterEach(async () => {
    await Promise.all(tracers.splice(0).map((t) => t.shutdown()));
    await receiver.close();
  });

  it('records a server span parented on the caller’s traceparent and a client span beneath it, and sends that on', async () => {
    const t = tracer({ samplingRatio: 0 }); // parent-based: the caller's sampled flag decides
    const { state, out } = run(t, { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`, tracestate: 'vendor=x' });
    expect(state.traceId).toBe(CALLER_TRACE);

    const server = await arrived(receiver, CALLER_TRACE, SPAN_KIND.SERVER);
    const client = await arrived(receiver, CALLER_TRACE, SPAN_KIND.CLIENT);
    expect(server.parentSpanId).toBe(CALLER_SPAN);
    expect(server.spanId).toBe(state.spanId);
    expect(client.parentSpanId).toBe(server.spanId);
    expect(out.traceparent).toBe(`00-${CALLER_TRACE}-${client.spanId}-01`);
    expect(out.tracestate).toBe('vendor=x');
    expect(out['x-b3-spanid']).toBe(client.spanId);
    expect(out['x-b3-parentspanid']).toBe(server.spanId);
    expect(out['x-trace-id']).toBe(CALLER_TRACE);
    expect(out['x-span-id']).toBe(client.spanId);
    expect(server.traceState).toBe('vendor=x');
    expect(client.startNs).toBeGreaterThanOrEqual(server.startNs);
    expect(client.endNs).toBeLessThanOrEqual(server.endNs);

    expect(server.name).toBe('GET');
    expect(server.resource['service.name']).toBe('frontend');
    expect(server.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/hello',
      'url.scheme': 'http',
      'server.address': 'backend.mesh',
      'server.port': 8080,
      'http.response.status_code': 200,
      'network.protocol.version': '1.1',
      'client.address': '127.0.0.1',
      'user_agent.original': 'curl/8.0',
      'skein.request_id': 'req-1',
      'skein.upstream_cluster': 'backend',
      'skein.upstream_host': '10.1.2.3:9000',
      'skein.source_service': 'frontend',
      'skein.destination_service': 'backend',
      'skein.route': 'default',
    });
    expect(server.attributes['error.type']).toBeUndefined();
    expect(server.status.code).toBe(STATUS_CODE.UNSET);
    expect(client.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.full': 'http://backend.mesh:8080/hello',
      'server.address': 'backend.mesh',
      'network.peer.address': '10.1.2.3',
      'network.peer.port': 9000,
      'http.response.status_code': 200,
    });
  });

  it('starts a new trace when the caller sent none', async () => {
    const t = tracer();
    const { state, out } = run(t);
    expect(state.traceId).toMatch(/^[0-9a-f]{32}$/);
    const server = await arrived(receiver, state.traceId, SPAN_KIND.SERVER);
    expect(server.parentSpanId).toBe('');
    expect(out.traceparent).toMatch(new RegExp(`^00-${state.traceId}-[0-9a-f]{16}-01$`));
  });

  it('reads and writes a B3 single header', async () => {
    const t = tracer({ propagation: ['b3'], samplingRatio: 0 });
    const { out } = run(t, { b3: `a3ce929d0e0e4736-${CALLER_SPAN}-1` });
    const traceId = '0000000000000000a3ce929d0e0e4736';
    const server = await arrived(receiver, traceId, SPAN_KIND.SERVER);
    const client = await arrived(receiver, traceId, SPAN_KIND.CLIENT);
    expect(server.parentSpanId).toBe(CALLER_SPAN);
    expect(out.b3).toBe(`${traceId}-${client.spanId}-1-${server.spanId}`);
    expect(out.traceparent).toBeUndefined();
    // Every format it understands is replaced, the configured one written: no stale traceparent or x-b3-*.
    for (const name of ['b3', 'traceparent', 'tracestate', 'x-b3-traceid', 'x-b3-sampled', 'x-trace-id'])
      expect(t.headerNames.has(name), name).toBe(true);
  });

  it('reads and writes B3 multi-headers', async () => {
    const t = tracer({ propagation: ['b3multi'], samplingRatio: 0 });
    const { out } = run(t, { 'x-b3-traceid': CALLER_TRACE, 'x-b3-spanid': CALLER_SPAN, 'x-b3-sampled': '1' });
    const server = await arrived(receiver, CALLER_TRACE, SPAN_KIND.SERVER);
    const client = await arrived(receiver, CALLER_TRACE, SPAN_KIND.CLIENT);
    expect(server.parentSpanId).toBe(CALLER_SPAN);
    expect(out).toMatchObject({
      'x-b3-traceid': CALLER_TRACE,
      'x-b3-spanid': client.spanId,
      'x-b3-parentspanid': server.spanId,
      'x-b3-sampled': '1',
    });
  });

  it('at ratio 0 exports nothing but still passes on a valid, unsampled trace context', async () => {
    const t = tracer({ samplingRatio: 0 });
    const fresh = run(t);
    expect(fresh.out.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(fresh.out.traceparent).toBe(`00-${fresh.state.traceId}-${fresh.state.spanId}-00`);
    expect(fresh.out['x-b3-sampled']).toBe('0');
    expect(fresh.out['x-trace-id']).toBe(fresh.state.traceId);

    // An unsampled caller keeps its trace id; this proxy's hop gets its own parent id.
    const joined = run(t, { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-00` });
    expect(joined.out.traceparent).toMatch(new RegExp(`^00-${CALLER_TRACE}-[0-9a-f]{16}-00$`));
    expect(joined.out.traceparent).not.toContain(CALLER_SPAN);
    expect(joined.state.server).toBeNull();

    await t.shutdown();
    expect(receiver.requests).toBe(0);
    expect(receiver.spans).toEqual([]);
  });

  it('follows the caller’s sampled flag when parent-based, and its own ratio when not', async () => {
    const unsampledParent = { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-00` };
    const parentBased = run(tracer({ samplingRatio: 1 }), unsampledParent);
    expect(parentBased.state.sampled).toBe(false);
    expect(parentBased.out.traceparent.endsWith('-00')).toBe(true);

    const own = run(tracer({ samplingRatio: 1, parentBased: false }), unsampledParent);
    expect(own.state.sampled).toBe(true);
    expect(own.out.traceparent.endsWith('-01')).toBe(true);
    const spans = await waitFor(() => (receiver.spans.length >= 2 ? receiver.spans : null));
    expect(spans.every((s) => s.traceId === CALLER_TRACE && s.resource['service.name'] === 'frontend')).toBe(true);

    // A B3 caller that leaves the decision to us gets the ratio's.
    const deferred = run(tracer({ samplingRatio: 0, propagation: ['b3multi'] }), {
      'x-b3-traceid': CALLER_TRACE,
      'x-b3-spanid': CALLER_SPAN,
    });
    expect(deferred.state.sampled).toBe(false);
  });

  it('records gRPC calls with the RPC conventions and their status', async () => {
    const t = tracer();
    const { state } = run(
      t,
      {},
      { isGrpc: true, method: 'POST', path: '/echo.v1.Echo/Say', protocol: 'HTTP/2' },
      { status: 200, grpcStatus: 14 },
    );
    const server = await arrived(receiver, state.traceId, SPAN_KIND.SERVER);
    const client = await arrived(receiver, state.traceId, SPAN_KIND.CLIENT);
    expect(server.name).toBe('echo.v1.Echo/Say');
    expect(server.attributes).toMatchObject({
      'rpc.system': 'grpc',
      'rpc.system.name': 'grpc',
      'rpc.service': 'echo.v1.Echo',
      'rpc.method': 'echo.v1.Echo/Say',
      'rpc.grpc.status_code': 14,
      'rpc.status_code': 'UNAVAILABLE',
      'network.protocol.version': '2',
      'error.type': 'UNAVAILABLE',
    });
    expect(server.attributes['http.request.method']).toBeUndefined();
    expect(server.status.code).toBe(STATUS_CODE.ERROR);
    expect(client.status.code).toBe(STATUS_CODE.ERROR);
  });

  it('marks a response flag and a 5xx as errors, and a 4xx only on the client span', async () => {
    const t = tracer();
    const failed = run(t, {}, {}, { status: 503, flag: 'UF' }).state;
    const missing = run(t, {}, {}, { status: 404 }).state;
    const fs = await arrived(receiver, failed.traceId, SPAN_KIND.SERVER);
    expect(fs.attributes).toMatchObject({ 'skein.response_flag': 'UF', 'error.type': 'UF' });
    expect(fs.status).toEqual({ code: STATUS_CODE.ERROR, message: 'UF' });

    const ms = await arrived(receiver, missing.traceId, SPAN_KIND.SERVER);
    const mc = await arrived(receiver, missing.traceId, SPAN_KIND.CLIENT);
    expect(ms.status.code).toBe(STATUS_CODE.UNSET);
    expect(mc.status.code).toBe(STATUS_CODE.ERROR);
    expect(mc.attributes['error.type']).toBe('404');
  });

  it('records a local reply (no upstream request) as a server span alone', async () => {
    const t = tracer();
    const rec = record({ clusterName: '', upstreamHost: '' });
    const state = t.start(rec, () => undefined);
    Object.assign(rec, { endMs: performance.now(), status: 404, flag: 'NR' });
    t.end(state, rec);
    const server = await arrived(receiver, state.traceId, SPAN_KIND.SERVER);
    expect(server.attributes['skein.response_flag']).toBe('NR');
    expect(server.status.code).toBe(STATUS_CODE.ERROR);
    await t.shutdown();
    expect(byKind(receiver.spans, state.traceId, SPAN_KIND.CLIENT)).toEqual([]);
  });

  it('records a retry as an event and gives each attempt its own client span', async () => {
    const t = tracer();
    const rec = record();
    const state = t.start(rec, () => undefined);
    const first: string[] = [];
    t.inject(state, rec, first);
    t.retry(state, { status: 0, flag: 'UF' });
    const second: string[] = [];
    t.inject(state, rec, second);
    Object.assign(rec, { endMs: performance.now(), status: 200 });
    t.end(state, rec);

    const clients = await waitFor(() => {
      const c = byKind(receiver.spans, state.traceId, SPAN_KIND.CLIENT);
      return c.length === 2 ? c : null;
    });
    const server = await arrived(receiver, state.traceId, SPAN_KIND.SERVER);
    const failedAttempt = clients.find((c) => c.attributes['error.type'] === 'UF')!;
    const retried = clients.find((c) => c !== failedAttempt)!;
    expect(headers(first)['x-span-id']).toBe(failedAttempt.spanId);
    expect(headers(second)['x-span-id']).toBe(retried.spanId);
    expect(retried.attributes['http.request.resend_count']).toBe(1);
    expect(clients.every((c) => c.parentSpanId === server.spanId)).toBe(true);
    expect(server.events).toEqual([
      { name: 'retry', attributes: { 'http.request.resend_count': 1, 'error.type': 'UF' } },
    ]);
  });

  it('flushes queued spans on shutdown', async () => {
    const t = tracer({ scheduledDelayMs: 60_000 });
    const { state } = run(t);
    await t.shutdown();
    expect(byKind(receiver.spans, state.traceId, SPAN_KIND.SERVER)).toHaveLength(1);
  });

  it('never slows or fails a request while the collector is down, and exports again once it is back', async () => {
    await receiver.stop();
    const t = tracer({ maxQueueSize: 64, maxExportBatchSize: 16, scheduledDelayMs: 10, exportTimeoutMs: 300 });
    const timing = await timeRequests(t, 3000);
    expect(timing.slowestMs).toBeLessThan(300); // waiting on an export would take its whole timeout
    expect(receiver.spans).toEqual([]);

    await receiver.restart();
    const after = await waitFor(
      () => {
        const { state } = run(t);
        return receiver.spans.length > 0 ? state : null;
      },
      10_000,
      100,
    );
    await arrived(receiver, after.traceId, SPAN_KIND.SERVER, 10_000);
  });

  it('never waits for a collector that accepts connections but never answers', async () => {
    const held: net.Socket[] = [];
    const blackHole = net.createServer((socket) => {
      held.push(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => blackHole.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(blackHole.address() as AddressInfo).port}/v1/traces`;
    try {
      const t = tracer({
        endpoint,
        maxQueueSize: 64,
        maxExportBatchSize: 16,
        scheduledDelayMs: 10,
        exportTimeoutMs: 300,
      });
      const timing = await timeRequests(t, 2000);
      expect(timing.slowestMs).toBeLessThan(300);
      expect(held.length).toBeGreaterThan(0); // exports were attempted, and hung
      const started = performance.now();
      await t.shutdown();
      expect(performance.now() - started).toBeLessThan(2000);
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => blackHole.close(r));
    }
  });

  it('shuts down within its export timeout when the collector is down', async () => {
    await receiver.stop();
    const t = tracer({ scheduledDelayMs: 60_000, exportTimeoutMs: 300 });
    for (let i = 0; i < 10; i++) run(t);
    const started = performance.now();
    await t.shutdown();
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('is what createTracer returns, and several live side by side without global registration', async () => {
    const a = createTracer(config(receiver), 'alpha');
    const b = createTracer(config(receiver), 'beta');
    const recA = record();
    const recB = record();
    const sa = a.start(recA, () => undefined)!;
    const sb = b.start(recB, () => undefined)!;
    for (const [tr, s, r] of [
      [a, sa, recA],
      [b, sb, recB],
    ] as const) {
      Object.assign(r, { endMs: performance.now(), status: 200 });
      tr.end(s, r);
    }
    await Promise.all([a.shutdown(), b.shutdown()]);
    expect(receiver.spans.find((s) => s.traceId === sa.traceId)?.resource['service.name']).toBe('alpha');
    expect(receiver.spans.find((s) => s.traceId === sb.traceId)?.resource['service.name']).toBe('beta');
  });
});
