// Traffic rules through a running proxy, with real clients: a cookie (curl's -b) and a query parameter pick v2
// over v1, and a source-service condition routes by the calling service — on an inbound listener the service
// the caller's own Skein proxy vouched for, on an outbound listener this proxy's own service (an app's
// x-source-service cannot pose as another caller there).
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { curl } from '../support/curl.ts';
import { httpGet } from '../support/http-client.ts';
import { type EchoBody, startEchoUpstream, startProxy, type RunningProxy, type Upstream } from '../support/proxy.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function upstream(name: string): Promise<Upstream> {
  const u = await startEchoUpstream(name);
  cleanups.push(() => u.close());
  return u;
}

async function proxy(config: ConfigInput): Promise<RunningProxy> {
  const p = await startProxy(config);
  cleanups.push(() => p.close());
  return p;
}

function clusters(v1: Upstream, v2: Upstream): ConfigInput['clusters'] {
  return [
    { name: 'v1', discovery: { type: 'static', endpoints: [{ address: v1.address }] } },
    { name: 'v2', discovery: { type: 'static', endpoints: [{ address: v2.address }] } },
  ];
}

const servedBy = (body: string | Buffer) => (JSON.parse(body.toString()) as EchoBody).server;

describe('traffic rules on cookies, query parameters and the calling service', () => {
  it('sends requests with cookie canary=1 to v2 and all others to v1', async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')];
    const p = await proxy({
      service: 'frontend',
      listeners: [
        {
          name: 'out',
          address: '127.0.0.1:0',
          routes: [
            { name: 'canary', match: { cookies: [{ name: 'canary', exact: '1' }] }, cluster: 'v2' },
            { name: 'stable', cluster: 'v1' },
          ],
        },
      ],
      clusters: clusters(v1, v2),
    });
    const get = async (args: string[]) => servedBy((await curl([...args, `${p.url()}/cart`])).body);
    expect(await get(['-b', 'canary=1'])).toBe('v2');
    expect(await get(['-b', 'session=abc; canary=1; theme=dark'])).toBe('v2');
    expect(await get(['-b', 'canary=0'])).toBe('v1');
    expect(await get(['-b', 'canary=10'])).toBe('v1');
    expect(await get(['-b', 'notcanary=1'])).toBe('v1');
    expect(await get([])).toBe('v1'); // no Cookie header at all
    // The cookie reaches the upstream untouched.
    const echoed = JSON.parse((await curl(['-b', 'canary=1; a=b=c', `${p.url()}/`])).body.toString()) as EchoBody;
    expect(echoed.headers.cookie).toBe('canary=1; a=b=c');
  });

  it('sends ?beta=true to v2 (percent-encoded too) and keeps the query for the upstream', async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')];
    const p = await proxy({
      service: 'frontend',
      listeners: [
        {
          name: 'out',
          address: '127.0.0.1:0',
          routes: [
            { name: 'beta', match: { queryParams: [{ name: 'beta', exact: 'true' }] }, cluster: 'v2' },
            { name: 'stable', cluster: 'v1' },
          ],
        },
      ],
      clusters: clusters(v1, v2),
    });
    const res = await httpGet(`${p.url()}/search?q=shoes&beta=true`);
    expect(servedBy(res.body)).toBe('v2');
    expect((JSON.parse(res.body) as EchoBody).url).toBe('/search?q=shoes&beta=true');
    expect(servedBy((await httpGet(`${p.url()}/search?beta=%74rue`)).body)).toBe('v2');
    expect(servedBy((await httpGet(`${p.url()}/search?beta=false`)).body)).toBe('v1');
    expect(servedBy((await httpGet(`${p.url()}/search?beta=false&beta=true`)).body)).toBe('v1'); // first wins
    expect(servedBy((await httpGet(`${p.url()}/search`)).body)).toBe('v1');
    expect(servedBy((await curl([`${p.url()}/search?beta=true`])).body)).toBe('v2');
  });

  it("routes an inbound listener's requests by the calling service its caller's proxy names", async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')];
    // The callee's proxy: checkout's calls go to v2 of the local app, everyone else's to v1.
    const callee = await proxy({
      service: 'orders',
      listeners: [
        {
          name: 'in',
          address: '127.0.0.1:0',
          direction: 'inbound',
          routes: [
            { name: 'from-checkout', match: { sourceServices: ['checkout'] }, cluster: 'v2' },
            { name: 'others', cluster: 'v1' },
          ],
        },
      ],
      clusters: clusters(v1, v2),
    });
    // Two callers' proxies, each with its own service, calling through their outbound listener.
    const caller = (service: string) =>
      proxy({
        service,
        listeners: [{ name: 'out', address: '127.0.0.1:0', routes: [{ cluster: 'orders' }] }],
        clusters: [
          {
            name: 'orders',
            discovery: { type: 'static', endpoints: [{ address: `127.0.0.1:${callee.port()}` }] },
          },
        ],
      });
    const checkout = await caller('checkout');
    const frontend = await caller('frontend');
    const viaCheckout = JSON.parse((await httpGet(`${checkout.url()}/orders/1`)).body) as EchoBody;
    expect(viaCheckout.server).toBe('v2');
    expect(viaCheckout.headers['x-source-service']).toBe('checkout');
    expect(servedBy((await httpGet(`${frontend.url()}/orders/1`)).body)).toBe('v1');
    // The app behind the frontend proxy claims to be checkout: its proxy vouches for frontend instead.
    const spoofed = await httpGet(`${frontend.url()}/orders/1`, { headers: { 'x-source-service': 'checkout' } });
    expect(servedBy(spoofed.body)).toBe('v1');
    // Straight to the inbound listener without a caller's proxy: no source service, the default route.
    expect(servedBy((await httpGet(`${callee.url()}/orders/1`)).body)).toBe('v1');
  });

  it("matches an outbound listener's source-service condition against this proxy's own service", async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')];
    const config = (service: string): ConfigInput => ({
      service,
      listeners: [
        {
          name: 'out',
          address: '127.0.0.1:0',
          routes: [{ match: { sourceServices: ['checkout', 'cart'] }, cluster: 'v2' }, { cluster: 'v1' }],
        },
      ],
      clusters: clusters(v1, v2),
    });
    const cart = await proxy(config('cart'));
    const frontend = await proxy(config('frontend'));
    expect(servedBy((await httpGet(`${cart.url()}/`)).body)).toBe('v2');
    const res = await httpGet(`${frontend.url()}/`, { headers: { 'x-source-service': 'cart' } });
    expect(servedBy(res.body)).toBe('v1');
  });
});
