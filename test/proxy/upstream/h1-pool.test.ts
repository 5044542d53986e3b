// The HTTP/1.1 upstream pool against a real server: what a keep-alive connection must look like when it
// goes back to the pool, whatever the sink did with the response it just carried.
import { afterEach, describe, expect, it } from 'vitest';
import type { UpstreamError } from '../../../proxy/flags.ts';
import { H1Pool } from '../../../proxy/upstream/h1-pool.ts';
import type { OutboundRequest, ResponseSink } from '../../../proxy/upstream/types.ts';
import { startEchoUpstream, type Upstream } from '../../support/proxy.ts';

interface Outcome {
  status: number;
  body: string;
  error: UpstreamError | null;
}

/** A bodyless GET as the proxy would hand it to a pool. */
function getRequest(path: string, timeoutMs: number): OutboundRequest {
  return {
    method: 'GET',
    path,
    authority: 'upstream.test',
    scheme: 'http',
    headers: [],
    body: null,
    contentLength: 0,
    keptBody: null,
    timeoutMs,
    http1Fallback: false,
    attempts: 1,
  };
}

function poolTo(port: number): H1Pool {
  return new H1Pool({ host: '127.0.0.1', port, connectTimeoutMs: 1_000, idleTimeoutMs: 10_000, maxIdle: 4 });
}

/** Runs one GET through `pool`; `backpressure` makes the sink refuse every chunk and drain 20 ms later. */
function get(pool: H1Pool, path: string, backpressure: boolean): Promise<Outcome> {
  const req = getRequest(path, 2_000);
  return new Promise((resolve) => {
    const out: Outcome = { status: 0, body: '', error: null };
    const sink: ResponseSink = {
      onResponse: (status) => {
        out.status = status;
      },
      onData: (chunk) => {
        out.body += chunk.toString();
        if (backpressure) setTimeout(() => exchange.resume(), 20);
        return !backpressure;
      },
      onEnd: (_trailers, last) => {
        if (last !== null) out.body += last.toString();
        resolve(out);
      },
      onError: (err) => {
        out.error = err;
        resolve(out);
      },
    };
    const exchange = pool.request(req, sink);
  });
}

describe('H1Pool', () => {
  let upstream: Upstream;
  let pool: H1Pool;

  afterEach(async () => {
    pool.close();
    await upstream.close();
  });

  it('serves the next request on a connection whose response met backpressure', async () => {
    // Two reads: the first chunk goes to the sink (which pushes back), the second ends the response.
    upstream = await startEchoUpstream('small', (req, res) => {
      res.writeHead(200, { 'content-length': String(`answer to ${req.url}`.length) });
      res.write('answer ');
      setTimeout(() => res.end(`to ${req.url}`), 30);
    });
    pool = poolTo(upstream.port);

    // The sink says "full" on the first chunk: the connection pauses until it drains, then the response ends.
    const first = await get(pool, '/first', true);
    expect(first).toEqual({ status: 200, body: 'answer to /first', error: null });

    const second = await get(pool, '/second', false);
    expect(second.error?.message ?? null).toBeNull();
    expect(second).toEqual({ status: 200, body: 'answer to /second', error: null });
    expect(pool.connectionCount).toBe(1);
  });

  it('fails a request to an upstream that never answers with UT at its timeout', async () => {
    // An upstream that accepts and never answers.
    upstream = await startEchoUpstream('silent', () => {});
    pool = poolTo(upstream.port);
    const req = getRequest('/never', 300);
    const outcome = new Promise<UpstreamError>((resolve, reject) => {
      pool.request(req, {
        onResponse: () => reject(new Error('unexpected response')),
        onData: () => true,
        onEnd: () => reject(new Error('unexpected end')),
        onError: resolve,
      });
    });
    const err = await outcome;
    expect(err.flag).toBe('UT');
    expect(err.source).toBe('timeout');
    expect(err.message).toBe('upstream request timeout after 300 ms');
  });
});
