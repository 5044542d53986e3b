// A stand-in for Jaeger's OTLP/HTTP endpoint: a real HTTP server (127.0.0.1, port 0) that accepts protobuf POSTs
// on /v1/traces, decodes them with the official OTLP protobuf definitions and keeps the spans for assertions.
// It can be stopped and started again on the same port, to test that exporting resumes.
//
// The definitions: OpenTelemetry JS's own protobufjs root generated from opentelemetry-proto, as shipped by
// @opentelemetry/otlp-transformer 0.57 (devDependency alias otlp-transformer-0.57). Later versions of that
// package encode by hand and no longer ship it; no other installed package carries the .proto files.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import otlp from 'otlp-transformer-0.57/build/src/generated/root.js';

/** The two generated message classes used here (the package's root.d.ts types the root only as a Root). */
interface GeneratedMessage {
  decode(body: Uint8Array): unknown;
  encode(message: unknown): { finish(): Uint8Array };
  create(properties: object): unknown;
}
const traceService = (
  otlp as unknown as {
    opentelemetry: { proto: { collector: { trace: { v1: Record<string, GeneratedMessage> } } } };
  }
).opentelemetry.proto.collector.trace.v1;
const ExportTraceServiceRequest = traceService.ExportTraceServiceRequest;
const ExportTraceServiceResponse = traceService.ExportTraceServiceResponse;
const EMPTY_RESPONSE = Buffer.from(ExportTraceServiceResponse.encode(ExportTraceServiceResponse.create({})).finish());

/** OTLP span kinds (Span.SpanKind). */
export const SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;
/** OTLP status codes (Status.StatusCode). */
export const STATUS_CODE = { UNSET: 0, OK: 1, ERROR: 2 } as const;

export type AttributeValue = string | number | boolean | AttributeValue[] | null;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  traceState: string;
  flags: number;
  name: string;
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, AttributeValue>;
  events: { name: string; attributes: Record<string, AttributeValue> }[];
  status: { code: number; message: string };
  resource: Record<string, AttributeValue>;
  scope: string;
}

export interface OtlpReceiver {
  readonly port: number;
  /** The OTLP/HTTP traces URL to configure as the tracing endpoint. */
  readonly url: string;
  /** Every span received so far, in arrival order (kept across restarts). */
  readonly spans: ReceivedSpan[];
  /** Export requests answered. */
  readonly requests: number;
  /** Stops listening (and cuts open connections); the port stays reserved for restart() by convention. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

// Decoded messages are reflection objects; these are the fields read from them.
interface PbKeyValue {
  key: string;
  value?: PbAnyValue | null;
}
interface PbAnyValue {
  value?: string;
  stringValue?: string;
  boolValue?: boolean;
  intValue?: unknown;
  doubleValue?: number;
  arrayValue?: { values?: PbAnyValue[] };
  kvlistValue?: { values?: PbKeyValue[] };
  bytesValue?: Uint8Array;
}
interface PbSpan {
  traceId: Uint8Array;
  spanId: Uint8Array;
  traceState: string;
  parentSpanId: Uint8Array | null;
  flags: number;
  name: string;
  kind: number;
  startTimeUnixNano: unknown;
  endTimeUnixNano: unknown;
  attributes?: PbKeyValue[];
  events?: { name: string; attributes?: PbKeyValue[] }[];
  status?: { code?: number; message?: string } | null;
}
interface PbRequest {
  resourceSpans?: {
    resource?: { attributes?: PbKeyValue[] } | null;
    scopeSpans?: { scope?: { name?: string } | null; spans?: PbSpan[] }[];
  }[];
}

const hex = (b: Uint8Array | null | undefined): string => (b == null ? '' : Buffer.from(b).toString('hex'));

function anyValue(v: PbAnyValue | null | undefined): AttributeValue {
  if (v === null || v === undefined || v.value === undefined) return null;
  switch (v.value) {
    case 'stringValue':
      return v.stringValue!;
    case 'boolValue':
      return v.boolValue!;
    case 'intValue':
      return Number(String(v.intValue));
    case 'doubleValue':
      return v.doubleValue!;
    case 'arrayValue':
      return (v.arrayValue?.values ?? []).map(anyValue);
    case 'bytesValue':
      return hex(v.bytesValue);
    default:
      return null;
  }
}

function attributes(kvs: PbKeyValue[] | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const kv of kvs ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

/** Decodes one ExportTraceServiceRequest body into flat spans. */
export function decodeExportRequest(body: Uint8Array): ReceivedSpan[] {
  const req = ExportTraceServiceRequest.decode(body) as unknown as PbRequest;
  const spans: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        spans.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          traceState: s.traceState,
          flags: s.flags,
          name: s.name,
          kind: s.kind,
          startNs: BigInt(String(s.startTimeUnixNano)),
          endNs: BigInt(String(s.endTimeUnixNano)),
          attributes: attributes(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attributes(e.attributes) })),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          resource,
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return spans;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  let requests = 0;
  let port = 0;
  let server: http.Server | null = null;

  const handle: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      let body = Buffer.concat(chunks);
      try {
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        spans.push(...decodeExportRequest(body));
      } catch (err) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(String(err));
        return;
      }
      requests++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': EMPTY_RESPONSE.length });
      res.end(EMPTY_RESPONSE);
    });
  };

  const listen = async (): Promise<void> => {
    const s = http.createServer(handle);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        s.off('error', reject);
        resolve();
      });
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  };

  const stop = async (): Promise<void> => {
    const s = server;
    if (s === null) return;
    server = null;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  await listen();
  return {
    get port() {
      return port;
    },
    get url() {
      return `http://127.0.0.1:${port}/v1/traces`;
    },
    spans,
    get requests() {
      return requests;
    },
    stop,
    restart: async () => {
      await stop();
      await listen();
    },
    close: stop,
  };
}
