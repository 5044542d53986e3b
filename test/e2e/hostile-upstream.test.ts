// Nothing an upstream sends may stop the proxy: a raw-socket upstream answers with forbidden fields, broken
// framing, bad status lines, an HTTP/2 frame... Each case runs through an HTTP/1.1 client and an h2c client
// against one `skein proxy` process, and after each the same process must answer a normal request and /live.
import { writeFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.ts';
import { h2Get } from '../support/h2-client.ts';
import { type HostileAnswer, type HostileUpstream, startHostileUpstream } from '../support/hostile-upstream.ts';
import { httpGet } from '../support/http-client.ts';
import { freePort, killAllSkein, type RunningSkein, startSkeinProxy } from '../support/process.ts';
import { type Upstream, startH2EchoUpstream } from '../support/proxy.ts';
import { headerMap, RawConnection } from '../support/raw-http.ts';

/** A response head plus `rest`, closed afterwards. */
function answer(head: string, rest = ''): HostileAnswer {
  return { bytes: `${head}\r\n\r\n${rest}`, then: 'close' };
}

interface HostileCase {
  name: string;
  answer: HostileAnswer | null;
}

const CASES: HostileCase[] = [
  {
    name: 'http2-settings',
    answer: answer('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA', 'ok\n'),
  },
];
const byName = new Map(CASES.map((c) => [c.name, c]));

let dir = '';
let hostile: HostileUpstream;
let h2app: Upstream;
let proxy: RunningSkein;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skein-hostile-'));
  hostile = await startHostileUpstream((path) => {
    const c = byName.get(path.slice(1));
    if (c === undefined) throw new Error(`no case for ${path}`);
    return c.answer;
  });
  h2app = await startH2EchoUpstream('h2app');
  const adminPort = await freePort();
  const config: ConfigInput = {
    service: 'hostile-e2e',
    admin: { address: `127.0.0.1:${adminPort}` },
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1:0',
        routes: [
          { name: 'to-h2', match: { pathPrefix: '/h2app' }, cluster: 'h2app' },
          { name: 'hostile', cluster: 'hostile' },
        ],
      },
    ],
    clusters: [
      // protocol http1: h2c clients reach the HTTP/1.1 upstream too (auto would pick h2c for them).
      { name: 'hostile', protocol: 'http1', discovery: { type: 'static', endpoints: [{ address: hostile.address }] } },
      { name: 'h2app', protocol: 'http2', discovery: { type: 'static', endpoints: [{ address: h2app.address }] } },
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
  await rm(dir, { recursive: true, force: true });
});

/** The same process still serves: a normal request through the hostile upstream's cluster, and /live. */
async function expectStillServing(): Promise<void> {
  expect(proxy.exitStatus).toBeNull();
  const next = await httpGet(`${proxy.url()}/ok`);
  expect(next.status).toBe(200);
  expect(next.body).toBe('ok\n');
  expect((await httpGet(`${proxy.adminUrl}/live`)).status).toBe(200);
}

describe('an HTTP/1.1 upstream answering an h2c client', () => {
  it('with an HTTP2-Settings field: the field is dropped, the client gets the response, the proxy stays up', async () => {
    const r = await h2Get(proxy.url(), '/http2-settings');
    expect(r.status).toBe(200);
    expect(r.body).toBe('ok\n');
    expect(r.headers['http2-settings']).toBeUndefined();
    await expectStillServing();
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
