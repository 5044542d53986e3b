// Trace context on the wire, without sockets: what the tracer accepts from callers (W3C, B3 single, B3 multi,
// the seed's x-trace-id), what it writes, and that OpenTelemetry's own propagators read our headers the same way
// and we read theirs.
import {
  ROOT_CONTEXT,
  type SpanContext,
  TraceFlags,
  createTraceState,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { describe, expect, it } from 'vitest';
import {
  IncomingContext,
  type PropagationFormat,
  extractContext,
  newSpanId,
  newTraceId,
  propagationHeaderNames,
  ratioSampled,
  writeContext,
} from '../../src/telemetry/trace-context.ts';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const SPAN = 'b7ad6b7169203331';
const OUR_SPAN = '00f067aa0ba902b7';
const PARENT = 'e457b5a2e4d86bd1';

function read(formats: PropagationFormat[], headers: Record<string, string>): IncomingContext | null {
  const out = new IncomingContext();
  return extractContext(formats, (n) => headers[n], out) ? out : null;
}

function toRecord(flat: string[]): Record<string, string> {
  const r: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) r[flat[i]] = flat[i + 1];
  return r;
}

function write(formats: PropagationFormat[], sampled: boolean, debug = false, traceState = ''): Record<string, string> {
  const out: string[] = [];
  writeContext(formats, TRACE, OUR_SPAN, PARENT, sampled, debug, traceState, out);
  return toRecord(out);
}

describe('reading the caller’s trace context', () => {
  it('takes a W3C traceparent with its sampled flag and tracestate', () => {
    const c = read(['w3c'], { traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'a=1,b=2' });
    expect(c).toMatchObject({ traceId: TRACE, spanId: SPAN, sampled: 1, traceState: 'a=1,b=2' });
    expect(read(['w3c'], { traceparent: `00-${TRACE}-${SPAN}-00` })?.sampled).toBe(0);
  });

  it('rejects malformed traceparents: upper case, version ff, zero ids, extra fields on version 00', () => {
    for (const tp of [
      `00-${TRACE.toUpperCase()}-${SPAN}-01`,
      `ff-${TRACE}-${SPAN}-01`,
      `00-${'0'.repeat(32)}-${SPAN}-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `00-${TRACE}-${SPAN}-01-extra`,
      `00-${TRACE}-${SPAN}`,
      'garbage',
    ]) {
      expect(read(['w3c'], { traceparent: tp }), tp).toBeNull();
    }
  });

  it('accepts a later traceparent version with fields appended', () => {
    expect(read(['w3c'], { traceparent: `01-${TRACE}-${SPAN}-01-whatever` })).toMatchObject({ traceId: TRACE });
  });

  it('takes a B3 single header, padding a 64-bit trace id to 128 bits', () => {
    expect(read(['b3'], { b3: `${TRACE}-${SPAN}-1-${PARENT}` })).toMatchObject({
      traceId: TRACE,
      spanId: SPAN,
      sampled: 1,
    });
    expect(read(['b3'], { b3: `8448eb211c80319c-${SPAN}` })).toMatchObject({
      traceId: '00000000000000008448eb211c80319c',
      sampled: -1,
    });
    expect(read(['b3'], { b3: `${TRACE}-${SPAN}-d` })).toMatchObject({ sampled: 1, debug: true });
  });

  it('takes a bare B3 decision ("b3: 0") as a decision without ids', () => {
    expect(read(['b3'], { b3: '0' })).toMatchObject({ traceId: '', spanId: '', sampled: 0 });
    expect(read(['b3multi'], { 'x-b3-sampled': '0' })).toMatchObject({ traceId: '', sampled: 0 });
  });

  it('takes B3 multi-headers, with x-b3-flags: 1 as debug', () => {
    expect(
      read(['b3multi'], {
        'x-b3-traceid': TRACE,
        'x-b3-spanid': SPAN,
        'x-b3-parentspanid': PARENT,
        'x-b3-sampled': '1',
      }),
    ).toMatchObject({ traceId: TRACE, spanId: SPAN, sampled: 1, debug: false });
    expect(read(['b3multi'], { 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-flags': '1' })).toMatchObject({
      sampled: 1,
      debug: true,
    });
    expect(read(['b3multi'], { 'x-b3-traceid': TRACE, 'x-b3-spanid': 'nothex' })).toBeNull();
  });

  it('uses the first configured format present, and ignores formats not configured', () => {
    const headers = { traceparent: `00-${TRACE}-${SPAN}-01`, b3: `${'1'.repeat(32)}-${PARENT}-0` };
    expect(read(['w3c', 'b3'], headers)?.spanId).toBe(SPAN);
    expect(read(['b3', 'w3c'], headers)?.spanId).toBe(PARENT);
    expect(read(['b3multi'], headers)).toBeNull();
  });

  it('falls back to a malformed format’s successor, then to the seed’s x-trace-id (no decision)', () => {
    expect(read(['w3c', 'b3'], { traceparent: 'bad', b3: `${TRACE}-${SPAN}-1` })?.spanId).toBe(SPAN);
    expect(read(['w3c'], { 'x-trace-id': TRACE })).toMatchObject({ traceId: TRACE, spanId: '', sampled: -1 });
    expect(read(['w3c'], { 'x-trace-id': 'not-an-id' })).toBeNull();
  });
});

describe('writing our trace context', () => {
  it('writes each configured format and the seed headers, all naming the same span', () => {
    const h = write(['w3c', 'b3', 'b3multi'], true, false, 'a=1');
    expect(h).toEqual({
      traceparent: `00-${TRACE}-${OUR_SPAN}-01`,
      tracestate: 'a=1',
      b3: `${TRACE}-${OUR_SPAN}-1-${PARENT}`,
      'x-b3-traceid': TRACE,
      'x-b3-spanid': OUR_SPAN,
      'x-b3-parentspanid': PARENT,
      'x-b3-sampled': '1',
      'x-trace-id': TRACE,
      'x-span-id': OUR_SPAN,
    });
  });

  it('says "not sampled" in every format, and debug as debug', () => {
    const h = write(['w3c', 'b3', 'b3multi'], false);
    expect(h.traceparent.endsWith('-00')).toBe(true);
    expect(h.b3).toBe(`${TRACE}-${OUR_SPAN}-0-${PARENT}`);
    expect(h['x-b3-sampled']).toBe('0');
    const d = write(['b3', 'b3multi'], true, true);
    expect(d.b3).toBe(`${TRACE}-${OUR_SPAN}-d-${PARENT}`);
    expect(d['x-b3-flags']).toBe('1');
    expect(d['x-b3-sampled']).toBeUndefined();
  });

  it('lists every header it reads or rewrites, so the proxy does not copy them too', () => {
    expect([...propagationHeaderNames(['w3c'])].sort()).toEqual([
      'traceparent',
      'tracestate',
      'x-span-id',
      'x-trace-id',
    ]);
    expect(propagationHeaderNames(['b3', 'b3multi'])).toEqual(
      new Set([
        'b3',
        'x-b3-traceid',
        'x-b3-spanid',
        'x-b3-parentspanid',
        'x-b3-sampled',
        'x-b3-flags',
        'x-trace-id',
        'x-span-id',
      ]),
    );
  });
});

describe('agreement with OpenTelemetry’s propagators', () => {
  const w3c = new W3CTraceContextPropagator();
  const b3single = new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER });
  const b3multi = new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER });
  const cases: [PropagationFormat, W3CTraceContextPropagator | B3Propagator][] = [
    ['w3c', w3c],
    ['b3', b3single],
    ['b3multi', b3multi],
  ];

  for (const [format, propagator] of cases) {
    it(`${format}: they read what we write`, () => {
      for (const sampled of [true, false]) {
        const out: string[] = [];
        writeContext([format], TRACE, OUR_SPAN, PARENT, sampled, false, format === 'w3c' ? 'k=v' : '', out);
        const ctx = propagator.extract(ROOT_CONTEXT, toRecord(out), defaultTextMapGetter);
        const sc = trace.getSpanContext(ctx);
        expect(sc).toMatchObject({
          traceId: TRACE,
          spanId: OUR_SPAN,
          traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
          isRemote: true,
        });
        if (format === 'w3c') expect(sc?.traceState?.serialize()).toBe('k=v');
      }
    });

    it(`${format}: we read what they write`, () => {
      for (const traceFlags of [TraceFlags.SAMPLED, TraceFlags.NONE]) {
        const sc: SpanContext = { traceId: TRACE, spanId: SPAN, traceFlags, traceState: createTraceState('k=v') };
        const carrier: Record<string, string> = {};
        propagator.inject(trace.setSpanContext(ROOT_CONTEXT, sc), carrier, defaultTextMapSetter);
        expect(read([format], carrier)).toMatchObject({
          traceId: TRACE,
          spanId: SPAN,
          sampled: traceFlags === TraceFlags.SAMPLED ? 1 : 0,
          traceState: format === 'w3c' ? 'k=v' : '',
        });
      }
    });
  }
});

describe('ids and the ratio decision', () => {
  it('draws lowercase hex ids of the right length, different every time', () => {
    const traces = new Set<string>();
    const spans = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      traces.add(newTraceId());
      spans.add(newSpanId());
    }
    expect(traces.size).toBe(3000);
    expect(spans.size).toBe(3000);
    for (const id of traces) expect(id).toMatch(/^[0-9a-f]{32}$/);
    for (const id of spans) expect(id).toMatch(/^[0-9a-f]{16}$/);
  });

  it('samples about the configured share, the same way for the same trace id, and monotonically in the ratio', () => {
    const ids = Array.from({ length: 20_000 }, () => newTraceId());
    const share = (ratio: number) => ids.filter((id) => ratioSampled(id, ratio)).length / ids.length;
    expect(share(0)).toBe(0);
    expect(share(1)).toBe(1);
    expect(share(0.1)).toBeGreaterThan(0.08);
    expect(share(0.1)).toBeLessThan(0.12);
    for (const id of ids.slice(0, 500)) {
      expect(ratioSampled(id, 0.3)).toBe(ratioSampled(id, 0.3));
      if (ratioSampled(id, 0.3)) expect(ratioSampled(id, 0.6)).toBe(true);
    }
  });
});
