// Traces across a hop, as Jaeger would receive them: app → proxy A (outbound, service "frontend") → proxy B
// (inbound, service "backend") → the backend app, both proxies exporting OTLP/HTTP protobuf to one receiver that
// decodes what arrives. One trace, four spans parented across the hop; and exporting resumes after the collector
// restarts, without a request failing meanwhile.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TracingConfig } from '../../src/config/schema.ts';
import { httpGet } from '../support/http-client.ts';
import {
  type OtlpReceiver,
  type ReceivedSpan,
  SPAN_KIND,
  STATUS_CODE,
  startOtlpReceiver,
} from '../support/otlp-receiver.ts';
import { type EchoBody, type RunningProxy, startEchoUpstream, startProxy, type Upstream } from '../support/proxy.ts';
import { waitFor, waitForAsync } from '../support/wait-for.ts';

const APP_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const APP_SPAN = '00f067aa0ba902b7';

describe('tracing across two proxies', () => {
  let receiver: OtlpReceiver;
  let app: Upstream;
  let inbound: RunningProxy;
  let outbound: RunningProxy;

  const tracing = (): Partial<TracingConfig> => ({
    enabled: true,
    endpoint: receiver.url,
    samplingRatio: 1,
    scheduledDelayMs: 50,
    exportTimeoutMs: 500,
  });

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    app = await startEchoUpstream('backend-app');
    inbound = await startProxy({
      service: 'backend',
      telemetry: { tracing: tracing() },
      listeners: [
        {
          name: 'inbound',
          direction: 'inbound',
          address: '127.0.0.1:0',
          routes: [{ name: 'local', cluster: 'local-app' }],
        },
      ],
      clusters: [
        { name: 'local-app', service: 'backend', discovery: { type: 'static', endpoints: [{ address: app.address }] } },
      ],
    });
    outbound = await startProxy({
      service: 'frontend',
      telemetry: { tracing: tracing() },
      listeners: [{ name: 'outbound', address: '127.0.0.1:0', routes: [{ name: 'to-backend', cluster: 'backend' }] }],
      clusters: [
        {
          name: 'backend',
          service: 'backend',
          discovery: { type: 'static', endpoints: [{ address: `127.0.0.1:${inbound.port()}` }] },
        },
      ],
    });
  });

  afterAll(async () => {
    await outbound?.close();
    await inbound?.close();
    await app?.close();
    await receiver?.close();
  });

  function spansOf(traceId: string): ReceivedSpan[] {
    return receiver.spans.filter((s) => s.traceId === traceId);
  }

  /** The four spans of one request through both proxies, once all have arrived. */
  async function fourSpans(
    traceId: string,
  ): Promise<Record<'aServer' | 'aClient' | 'bServer' | 'bClient', ReceivedSpan>> {
    const spans = await waitFor(() => (spansOf(traceId).length >= 4 ? spansOf(traceId) : null), 10_000);
    const pick = (service: string, kind: number) => {
      const found = spans.filter((s) => s.resource['service.name'] === service && s.kind === kind);
      expect(found, `${service} kind ${kind}`).toHaveLength(1);
      return found[0];
    };
    return {
      aServer: pick('frontend', SPAN_KIND.SERVER),
      aClient: pick('frontend', SPAN_KIND.CLIENT),
      bServer: pick('backend', SPAN_KIND.SERVER),
      bClient: pick('backend', SPAN_KIND.CLIENT),
    };
  }

  it('records one trace whose spans are parented across the hop, and the app sees the last span', async () => {
    const res = await httpGet(`${outbound.url()}/orders/42`, {
      headers: { traceparent: `00-${APP_TRACE}-${APP_SPAN}-01`, 'user-agent': 'trace-test/1' },
    });
    expect(res.status).toBe(200);
    const echoed = JSON.parse(res.body) as EchoBody;

    const { aServer, aClient, bServer, bClient } = await fourSpans(APP_TRACE);
    expect(aServer.parentSpanId).toBe(APP_SPAN);
    expect(aClient.parentSpanId).toBe(aServer.spanId);
    expect(bServer.parentSpanId).toBe(aClient.spanId);
    expect(bClient.parentSpanId).toBe(bServer.spanId);
    expect(echoed.headers.traceparent).toBe(`00-${APP_TRACE}-${bClient.spanId}-01`);
    expect(echoed.headers['x-trace-id']).toBe(APP_TRACE);
    expect(echoed.headers['x-span-id']).toBe(bClient.spanId);

    // The hops nest in time too: exactly within a proxy, and within the two tracers' clock readings (whole
    // milliseconds of Date.now()) across the hop.
    expect(aServer.startNs <= aClient.startNs && aClient.endNs <= aServer.endNs).toBe(true);
    expect(bServer.startNs <= bClient.startNs && bClient.endNs <= bServer.endNs).toBe(true);
    const skewNs = 2_000_000n;
    expect(aClient.startNs - skewNs <= bServer.startNs && bServer.endNs <= aClient.endNs + skewNs).toBe(true);

    for (const s of [aServer, aClient, bServer, bClient]) {
      expect(s.attributes['http.request.method']).toBe('GET');
      expect(s.attributes['http.response.status_code']).toBe(200);
      expect(s.status.code).toBe(STATUS_CODE.UNSET);
    }
    expect(aServer.attributes).toMatchObject({
      'url.path': '/orders/42',
      'url.scheme': 'http',
      'server.address': '127.0.0.1',
      'server.port': outbound.port(),
      'network.protocol.version': '1.1',
      'client.address': expect.stringContaining('127.0.0.1'),
      'user_agent.original': 'trace-test/1',
      'skein.direction': 'outbound',
      'skein.source_service': 'frontend',
      'skein.destination_service': 'backend',
      'skein.upstream_cluster': 'backend',
      'skein.upstream_host': `127.0.0.1:${inbound.port()}`,
      'skein.route': 'to-backend',
    });
    expect(aServer.attributes['skein.request_id']).toBe(echoed.headers['x-request-id']);
    expect(aClient.attributes).toMatchObject({
      'network.peer.address': '127.0.0.1',
      'network.peer.port': inbound.port(),
    });
    expect(bServer.attributes).toMatchObject({
      'skein.direction': 'inbound',
      'skein.source_service': 'frontend',
      'skein.destination_service': 'backend',
      'skein.upstream_host': app.address,
      'skein.request_id': echoed.headers['x-request-id'],
    });
  });

  it('starts a trace at the first proxy when the app sent none', async () => {
    const res = await httpGet(`${outbound.url()}/fresh`);
    const echoed = JSON.parse(res.body) as EchoBody;
    const traceId = String(echoed.headers['x-trace-id']);
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    const { aServer, bServer, aClient } = await fourSpans(traceId);
    expect(aServer.parentSpanId).toBe('');
    expect(bServer.parentSpanId).toBe(aClient.spanId);
  });

  it('passes an unsampled trace on through both proxies without recording it', async () => {
    const unsampledTrace = 'a3ce929d0e0e47364bf92f3577b34da6';
    const res = await httpGet(`${outbound.url()}/quiet`, {
      headers: { traceparent: `00-${unsampledTrace}-${APP_SPAN}-00` },
    });
    const echoed = JSON.parse(res.body) as EchoBody;
    expect(echoed.headers.traceparent).toMatch(new RegExp(`^00-${unsampledTrace}-[0-9a-f]{16}-00$`));
    // A sampled request sent afterwards arrives; the unsampled one never does.
    const after = await httpGet(`${outbound.url()}/loud`);
    await fourSpans(String((JSON.parse(after.body) as EchoBody).headers['x-trace-id']));
    expect(spansOf(unsampledTrace)).toEqual([]);
  });

  it('keeps serving while the collector is down, and traces flow again once it is back', async () => {
    await receiver.stop();
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const res = await httpGet(`${outbound.url()}/while-down/${i}`);
      expect(res.status).toBe(200);
      expect(performance.now() - started).toBeLessThan(1000);
    }

    await receiver.restart();
    const traceId = await waitForAsync(
      async () => {
        const res = await httpGet(`${outbound.url()}/after-restart`);
        const id = String((JSON.parse(res.body) as EchoBody).headers['x-trace-id']);
        await new Promise((r) => setTimeout(r, 200));
        return spansOf(id).length > 0 ? id : null;
      },
      15_000,
      100,
    );
    const { bServer, aClient } = await fourSpans(traceId);
    expect(bServer.parentSpanId).toBe(aClient.spanId);
  });
});

describe('propagation headers the config does not write', () => {
  let receiver: OtlpReceiver;
  let app: Upstream;
  let proxy: RunningProxy;
  const OTHER_TRACE = 'a3ce929d0e0e47364bf92f3577b34da6';
  const OTHER_SPAN = 'b7ad6b7169203331';

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    app = await startEchoUpstream('app');
    proxy = await startProxy({
      service: 'frontend',
      telemetry: {
        tracing: {
          enabled: true,
          endpoint: receiver.url,
          samplingRatio: 1,
          propagation: ['w3c', 'b3multi'],
          scheduledDelayMs: 50,
          exportTimeoutMs: 500,
        },
      },
      listeners: [{ name: 'outbound', address: '127.0.0.1:0', routes: [{ name: 'all', cluster: 'app' }] }],
      clusters: [{ name: 'app', service: 'app', discovery: { type: 'static', endpoints: [{ address: app.address }] } }],
    });
  });

  afterAll(async () => {
    await proxy?.close();
    await app?.close();
    await receiver?.close();
  });

  async function seenByApp(headers: Record<string, string>): Promise<EchoBody['headers']> {
    const res = await httpGet(`${proxy.url()}/`, { headers });
    expect(res.status).toBe(200);
    return (JSON.parse(res.body) as EchoBody).headers;
  }

  /** The one context the app sees, written in both configured formats, and no other. */
  function expectOneContext(h: EchoBody['headers'], traceId: string, sampled: '0' | '1'): void {
    expect(h.b3, 'a b3 single header is not configured: removed, not forwarded stale').toBeUndefined();
    expect(h.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-0${sampled}$`));
    const spanId = String(h.traceparent).slice(36, 52);
    expect(h['x-b3-traceid']).toBe(traceId);
    expect(h['x-b3-spanid']).toBe(spanId);
    expect(h['x-b3-sampled']).toBe(sampled);
    expect(h['x-trace-id']).toBe(traceId);
    expect(h['x-span-id']).toBe(spanId);
  }

  it('removes an incoming b3 single header beside the traceparent it continues', async () => {
    const h = await seenByApp({
      traceparent: `00-${APP_TRACE}-${APP_SPAN}-01`,
      b3: `${OTHER_TRACE}-${OTHER_SPAN}-1`,
    });
    expectOneContext(h, APP_TRACE, '1');
  });

  it('removes a lone b3 single header when it starts a trace of its own', async () => {
    const h = await seenByApp({ b3: `${OTHER_TRACE}-${OTHER_SPAN}-1` });
    const traceId = String(h['x-trace-id']);
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expectOneContext(h, traceId, '1');
  });

  it('keeps an unsampled request consistent too: no stale b3, every format unsampled', async () => {
    const h = await seenByApp({
      'x-b3-traceid': APP_TRACE,
      'x-b3-spanid': APP_SPAN,
      'x-b3-sampled': '0',
      'x-b3-parentspanid': OTHER_SPAN,
      b3: `${OTHER_TRACE}-${OTHER_SPAN}-1`,
      tracestate: 'vendor=stale',
    });
    expectOneContext(h, APP_TRACE, '0');
    expect(h['x-b3-parentspanid'], 'no parent span of the caller left behind').toBeUndefined();
    expect(h.tracestate, 'a tracestate without its traceparent is removed').toBeUndefined();
  });
});
