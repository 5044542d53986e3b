// Nothing an upstream sends may stop the proxy: a raw-socket upstream answers with forbidden fields, broken
// framing, bad status lines, an HTTP/2 frame... Each case runs through an HTTP/1.1 client and an h2c client
// against one `skein proxy` process, and after each the same process must answer a normal request and /live.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.ts';
import { h2Get } from '../support/h2-client.ts';
import {
  type HostileAnswer,
  type HostileUpstream,
  startHostileH2Upstream,
  okResponse,
  startHostileUpstream,
} from '../support/hostile-upstream.ts';
import { httpGet } from '../support/http-client.ts';
import { freePort, killAllSkein, type RunningSkein, startSkeinProxy } from '../support/process.ts';
import { type Upstream, startH2EchoUpstream } from '../support/proxy.ts';
import { headerMap, RawConnection } from '../support/raw-http.ts';
import { waitFor } from '../support/wait-for.ts';

/** A response head plus `rest`, closed afterwards. */
function answer(head: string, rest = ''): HostileAnswer {
  return { bytes: `${head}\r\n\r\n${rest}`, then: 'close' };
}

/** What a client sees: a complete response, or 'reset' (the head went out, then the stream/connection was cut). */
type Outcome =
  { status: number; flag?: string; body?: string; absent?: string[]; present?: Record<string, string> } | 'reset';

interface HostileCase {
  name: string;
  /** null: the upstream closes the connection as soon as the request arrives. */
  answer: HostileAnswer | null;
  h1: Outcome;
  h2: Outcome;
}

const UPE: Outcome = { status: 502, flag: 'UPE' };
const HOP_BY_HOP_SENT = ['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'http2-settings', 'te', 'trailer'];
// An HTTP/2 client preface and an empty SETTINGS frame, as an h2c server would send them.
const H2_BYTES = Buffer.concat([
  Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
  Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
]);

const CASES: HostileCase[] = [
  {
    name: 'hop-by-hop-fields',
    answer: answer(
      'HTTP/1.1 200 OK\r\ncontent-length: 3\r\nConnection: keep-alive, X-Hop\r\nConnection: x-hop-2\r\n' +
        'Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\nTE: gzip\r\nTrailer: x-t\r\n' +
        'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nX-Hop: 1\r\nx-hop-2: 2\r\nX-Kept: yes',
      'ok\n',
    ),
    h1: { status: 200, body: 'ok\n', absent: [...HOP_BY_HOP_SENT, 'x-hop', 'x-hop-2'], present: { 'x-kept': 'yes' } },
    h2: { status: 200, body: 'ok\n', absent: [...HOP_BY_HOP_SENT, 'x-hop', 'x-hop-2'], present: { 'x-kept': 'yes' } },
  },
  {
    // Transfer-Encoding is the upstream's framing: the h2c client gets DATA frames, never the field.
    name: 'chunked',
    answer: answer('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked', '3\r\nok\n\r\n0\r\n\r\n'),
    h1: { status: 200, body: 'ok\n' },
    h2: { status: 200, body: 'ok\n', absent: ['transfer-encoding'] },
  },
  {
    // A gRPC-typed response makes the HTTP/2 side send trailers: hop-by-hop fields there would throw too.
    name: 'hop-by-hop-trailer',
    answer: answer(
      'HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked',
      '3\r\nok\n\r\n0\r\nconnection: close\r\nkeep-alive: timeout=5\r\ngrpc-status: 0\r\n\r\n',
    ),
    h1: { status: 200, body: 'ok\n' },
    h2: { status: 200, body: 'ok\n' },
  },
  {
    // Trailers HTTP/2 cannot carry, after the body went out: the stream is reset instead of ended cleanly.
    name: 'repeated-single-value-trailer',
    answer: answer(
      'HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked',
      '3\r\nok\n\r\n0\r\ncontent-type: a\r\ncontent-type: b\r\n\r\n',
    ),
    h1: { status: 200, body: 'ok\n' },
    h2: 'reset',
  },
  {
    // A second response nobody asked for: dropped with its connection, never handed to the next request.
    name: 'two-responses',
    answer: { bytes: `${okResponse('/first')}${okResponse('/unsolicited')}`, then: 'keep' },
    h1: { status: 200, body: '/first\n' },
    h2: { status: 200, body: '/first\n' },
  },
  { name: 'status-not-a-number', answer: answer('HTTP/1.1 abc OK\r\ncontent-length: 0'), h1: UPE, h2: UPE },
  { name: 'status-600', answer: answer('HTTP/1.1 600 Odd\r\ncontent-length: 0'), h1: UPE, h2: UPE },
  { name: 'status-099', answer: answer('HTTP/1.1 099 Early\r\ncontent-length: 0'), h1: UPE, h2: UPE },
  { name: 'not-http', answer: answer('SSH-2.0-OpenSSH_9.6'), h1: UPE, h2: UPE },
  {
    name: 'content-length-and-chunked',
    answer: answer('HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked', '3\r\nok\n\r\n0\r\n\r\n'),
    h1: UPE,
    h2: UPE,
  },
  {
    name: 'unsolicited-101',
    answer: {
      bytes: 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n',
      then: 'keep',
    },
    h1: UPE,
    h2: UPE,
  },
  {
    // Some body went out with the head: the only honest signal left is the cut (flag UC).
    name: 'truncated-body',
    answer: answer('HTTP/1.1 200 OK\r\ncontent-length: 100', 'partial'),
    h1: 'reset',
    h2: 'reset',
  },
  {
    // Broken before any body byte: HTTP/1.1 still holds the head back (it goes out with the first bytes) and
    // answers 502; HTTP/2 has sent its HEADERS frame already, so the stream is reset.
    name: 'bad-chunking',
    answer: answer('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked', 'zz\r\nok\r\n'),
    h1: UPE,
    h2: 'reset',
  },
  {
    name: 'control-character',
    answer: answer('HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-bad: a\x01b'),
    h1: UPE,
    h2: UPE,
  },
  {
    // obs-text (bytes 0x80-0xff) is legal in a field value in both protocols: passed on as is.
    name: 'obs-text',
    answer: answer('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx-latin: caf\xe9', 'ok\n'),
    h1: { status: 200, body: 'ok\n', present: { 'x-latin': 'caf\xe9' } },
    h2: { status: 200, body: 'ok\n', present: { 'x-latin': 'caf\xe9' } },
  },
  { name: 'folded-field', answer: answer('HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-a: a\r\n b'), h1: UPE, h2: UPE },
  { name: 'bad-content-length', answer: answer('HTTP/1.1 200 OK\r\ncontent-length: -1'), h1: UPE, h2: UPE },
  {
    name: 'huge-head',
    answer: answer(`HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-big: ${'a'.repeat(100_000)}`),
    h1: UPE,
    h2: UPE,
  },
  { name: 'http2-frames', answer: { bytes: H2_BYTES, then: 'keep' }, h1: UPE, h2: UPE },
  { name: 'immediate-close', answer: null, h1: { status: 503, flag: 'UC' }, h2: { status: 503, flag: 'UC' } },
  {
    // Valid HTTP/1.1, but HTTP/2 allows content-type once: node:http2 throws converting it. The exception
    // boundary turns that throw into a 502 UPE for this request (no field-by-field rule covers every such case).
    name: 'repeated-single-value-field',
    answer: answer(
      'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-type: text/plain\r\ncontent-type: text/html',
      'ok\n',
    ),
    h1: { status: 200, body: 'ok\n' },
    h2: UPE,
  },
];
const byName = new Map(CASES.map((c) => [c.name, c]));

let dir = '';
let hostile: HostileUpstream;
let h2app: Upstream;
let h2status700: Upstream;
let proxy: RunningSkein;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skein-hostile-'));
  hostile = await startHostileUpstream((path) => {
    const c = byName.get(path.slice(1));
    if (c === undefined) throw new Error(`no case for ${path}`);
    return c.answer;
  });
  h2app = await startH2EchoUpstream('h2app');
  h2status700 = await startHostileH2Upstream('700');
  const adminPort = await freePort();
  const config: ConfigInput = {
    service: 'hostile-e2e',
    admin: { address: `127.0.0.1:${adminPort}` },
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1:0',
        // One attempt per request: the table says what one hostile answer becomes.
        stages: { retry: { maxRetries: 0 } },
        routes: [
          { name: 'to-h2', match: { pathPrefix: '/h2app' }, cluster: 'h2app' },
          { name: 'to-h2-700', match: { pathPrefix: '/h2-status-700' }, cluster: 'h2status700' },
          { name: 'hostile', cluster: 'hostile' },
        ],
      },
    ],
    clusters: [
      // protocol http1: h2c clients reach the HTTP/1.1 upstream too (auto would pick h2c for them).
      { name: 'hostile', protocol: 'http1', discovery: { type: 'static', endpoints: [{ address: hostile.address }] } },
      { name: 'h2app', protocol: 'http2', discovery: { type: 'static', endpoints: [{ address: h2app.address }] } },
      {
        name: 'h2status700',
        protocol: 'http2',
        discovery: { type: 'static', endpoints: [{ address: h2status700.address }] },
      },
    ],
  };
  const file = join(dir, 'skein.yaml');
  await writeFile(file, stringify(config));
  proxy = await startSkeinProxy(['--config', file], { adminPort });
});

afterAll(async () => {
  await killAllSkein();
  await hostile?.close();
  await h2app?.close();
  await h2status700?.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * The same process still serves: a normal request through the hostile upstream's cluster, then two at once
 * (each must get its own answer: the pool holds no connection twice), and /live.
 */
async function expectStillServing(): Promise<void> {
  expect(proxy.exitStatus).toBeNull();
  const next = await httpGet(`${proxy.url()}/ok`);
  expect(next.status).toBe(200);
  expect(next.body).toBe('ok\n');
  const [a, b] = await Promise.all([httpGet(`${proxy.url()}/ok-a`), httpGet(`${proxy.url()}/ok-b`)]);
  expect([a.body, b.body]).toEqual(['/ok-a\n', '/ok-b\n']);
  expect((await httpGet(`${proxy.adminUrl}/live`)).status).toBe(200);
}

interface Seen {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The head arrived, then the stream was reset (RST_STREAM CANCEL, the session left open) or the
   *  connection closed before the body's end. */
  cut: boolean;
}

async function viaHttp1(path: string): Promise<Seen> {
  const conn = await RawConnection.open(proxy.port());
  conn.write(`GET ${path} HTTP/1.1\r\nhost: app\r\n\r\n`, ['GET']);
  await waitFor(() => conn.responses.length > 0 || conn.closed, 10_000);
  conn.destroy();
  const r = conn.responses[0];
  if (r === undefined) {
    const status = /^HTTP\/1\.1 (\d{3})/.exec(conn.pendingText);
    return { status: status === null ? 0 : Number(status[1]), headers: {}, body: '', cut: true };
  }
  return { status: r.status, headers: headerMap(r.headers), body: r.body.toString(), cut: false };
}

async function viaH2(path: string): Promise<Seen> {
  const r = await h2Get(proxy.url(), path, 10_000);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) if (v !== undefined) headers[k] = String(v);
  return {
    status: r.status,
    headers,
    body: r.body,
    cut: !r.complete && r.resetCode === http2.constants.NGHTTP2_CANCEL,
  };
}

function expectOutcome(seen: Seen, outcome: Outcome): void {
  if (outcome === 'reset') {
    expect(seen.status).toBe(200); // the head went out...
    expect(seen.cut).toBe(true); // ...and then the client was told the response is broken
    return;
  }
  expect(seen.cut).toBe(false);
  expect(seen.status).toBe(outcome.status);
  expect(seen.headers['x-skein-flags']).toBe(outcome.flag);
  if (outcome.body !== undefined) expect(seen.body).toBe(outcome.body);
  for (const name of outcome.absent ?? []) expect(seen.headers[name], name).toBeUndefined();
  for (const [name, value] of Object.entries(outcome.present ?? {})) expect(seen.headers[name]).toBe(value);
}

describe.each([
  { client: 'HTTP/1.1', request: viaHttp1, pick: (c: HostileCase) => c.h1 },
  { client: 'h2c', request: viaH2, pick: (c: HostileCase) => c.h2 },
])('a hostile HTTP/1.1 upstream, $client client', ({ request, pick }) => {
  it.each(CASES)('$name: the client gets what the table says and the proxy serves the next request', async (c) => {
    expectOutcome(await request(`/${c.name}`), pick(c));
    await expectStillServing();
  });
});

describe.each([
  { client: 'HTTP/1.1', request: viaHttp1 },
  { client: 'h2c', request: viaH2 },
])('a hostile h2c upstream, $client client', ({ request }) => {
  it('answering :status 700: 502 UPE, and the proxy serves the next request', async () => {
    expectOutcome(await request('/h2-status-700'), UPE);
    await expectStillServing();
  });
});

describe('the exception boundary', () => {
  it('logs a conversion that threw with the request id and counts it under UPE', async () => {
    const seen = await viaH2('/repeated-single-value-field');
    expect(seen.status).toBe(502);
    const requestId = seen.headers['x-request-id'];
    expect(requestId).toBeTruthy();
    const line = await proxy.waitForLog((l) => l.msg === 'request failed' && l.requestId === requestId);
    expect(line.level).toBe('error');
    expect(line.flag).toBe('UPE');
    expect(String(line.error)).toContain('content-type');
    const metrics = (await httpGet(`${proxy.adminUrl}/metrics`)).body;
    expect(metrics).toMatch(
      /service_mesh_requests_total\{[^}]*response_code="502"[^}]*response_flag="UPE"[^}]*\} [1-9]/,
    );
  });
});

describe('an HTTP/1.1 client calling an h2c upstream', () => {
  it('with an HTTP2-Settings field its Connection does not name: the field is dropped, the request served', async () => {
    const conn = await RawConnection.open(proxy.port());
    conn.write('GET /h2app/x HTTP/1.1\r\nhost: app\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n', ['GET']);
    const [r] = await conn.waitForResponses(1);
    conn.destroy();
    expect(r.status).toBe(200);
    const echoed = JSON.parse(r.body.toString());
    expect(echoed.server).toBe('h2app');
    expect(echoed.headers['http2-settings']).toBeUndefined();
    expect(headerMap(r.headers)['x-skein-flags']).toBeUndefined();
    await expectStillServing();
  });
});
