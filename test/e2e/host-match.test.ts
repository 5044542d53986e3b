// A route condition on `host` matches HTTP/1.1's Host header and HTTP/2's :authority alike (RFC 9113 §8.3.1
// makes :authority the HTTP/2 form of Host), so host-based routing — control's canary rules among it — splits
// h2c and gRPC traffic the same way as HTTP/1.1.
import http2 from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { httpGet } from '../support/http-client.ts';
import { type RunningProxy, startEchoUpstream, startProxy, type Upstream } from '../support/proxy.ts';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(): Promise<RunningProxy> {
  const ups: Upstream[] = [await startEchoUpstream('v1'), await startEchoUpstream('v2')];
  for (const u of ups) cleanups.push(() => u.close());
  const config: ConfigInput = {
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1:0',
        routes: [
          { name: 'by-host', match: { headers: [{ name: 'host', regex: 'app\\.example(:[0-9]+)?' }] }, cluster: 'v2' },
          { name: 'default', cluster: 'v1' },
        ],
      },
    ],
    clusters: ups.map((u, i) => ({
      name: `v${i + 1}`,
      discovery: { type: 'static' as const, endpoints: [{ address: u.address }] },
    })),
  };
  const proxy = await startProxy(config);
  cleanups.push(() => proxy.close());
  return proxy;
}

function h2Get(url: string, authority: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on('error', reject);
    const req = session.request({ ':path': '/', ':authority': authority });
    req.on('response', (h) => {
      resolve(String(h['x-served-by']));
      session.close();
    });
    req.on('error', reject);
    req.end();
  });
}

describe('host conditions', () => {
  it('match the Host of HTTP/1.1 requests and the :authority of HTTP/2 requests', async () => {
    const proxy = await setup();
    expect((await httpGet(`${proxy.url()}/`, { headers: { host: 'app.example' } })).headers['x-served-by']).toBe('v2');
    expect((await httpGet(`${proxy.url()}/`, { headers: { host: 'other.example' } })).headers['x-served-by']).toBe(
      'v1',
    );
    expect(await h2Get(proxy.url(), 'app.example:8080')).toBe('v2');
    expect(await h2Get(proxy.url(), 'other.example')).toBe('v1');
  });
});
