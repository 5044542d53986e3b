// The control API's HTTP shell: routing with captures, and every kind of bad request answered with the one
// error shape and a stable code, while an unexpected failure is logged for the operator and never leaks.
import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ApiError, createApiServer, listen, MAX_BODY_BYTES, parseWith } from '../../control/http.ts';

let server: http.Server;
let base = '';
const failures: string[] = [];

beforeAll(async () => {
  server = createApiServer({
    routes: [
      { method: 'GET', path: '/things/:id', handle: (req) => ({ json: { id: req.params.id, q: req.query.get('q') } }) },
      {
        method: 'POST',
        path: '/things',
        handle: (req) => ({ status: 201, json: parseWith(z.strictObject({ name: z.string().min(1) }), req.body) }),
      },
      {
        method: 'GET',
        path: '/busy',
        handle: () => {
          throw new ApiError('SKEIN_CONFLICT', 'busy right now');
        },
      },
      {
        method: 'GET',
        path: '/broken',
        handle: () => {
          throw new Error('secret internal detail');
        },
      },
    ],
    onError: (err) => failures.push(String(err)),
  });
  const addr = await listen(server, '127.0.0.1', 0);
  base = `http://127.0.0.1:${addr.port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

async function call(method: string, path: string, body?: string, type = 'application/json') {
  const res = await fetch(`${base}${path}`, { method, body, headers: body ? { 'content-type': type } : {} });
  return { status: res.status, allow: res.headers.get('allow'), json: (await res.json()) as any };
}

describe('control API HTTP shell', () => {
  it('routes by method and path, with captures and the query string', async () => {
    expect((await call('GET', '/things/t-1?q=x')).json).toEqual({ id: 't-1', q: 'x' });
    expect((await call('POST', '/things', '{"name":"a"}')).status).toBe(201);
  });

  it('answers each bad request with its status, a stable code and the field path of each problem', async () => {
    const invalid = await call('POST', '/things', '{"name":"","extra":1}');
    expect(invalid.status).toBe(400);
    expect(invalid.json.error.code).toBe('SKEIN_BAD_REQUEST');
    expect(invalid.json.error.problems).toEqual(expect.arrayContaining([expect.stringMatching(/^name: /)]));
    expect(invalid.json.error.problems.join('\n')).toMatch(/extra/);

    const notJson = await call('POST', '/things', '{"name":');
    expect(notJson.status).toBe(400);
    expect(notJson.json.error.problems[0]).toMatch(/^\(body\): /);

    expect((await call('POST', '/things', 'name=a', 'application/x-www-form-urlencoded')).json.error.code).toBe(
      'SKEIN_UNSUPPORTED_MEDIA_TYPE',
    );
    const big = await call('POST', '/things', JSON.stringify({ name: 'x'.repeat(MAX_BODY_BYTES) }));
    expect(big.status).toBe(413);
    expect((await call('GET', '/nothing')).json.error.code).toBe('SKEIN_NOT_FOUND');
    const wrong = await call('DELETE', '/things/t-1');
    expect(wrong.status).toBe(405);
    expect(wrong.allow).toBe('GET');
    expect((await call('GET', '/busy')).json.error).toEqual({ code: 'SKEIN_CONFLICT', message: 'busy right now' });
  });

  it('turns an unexpected failure into a 500 without its details, and hands the error to the operator log', async () => {
    const res = await call('GET', '/broken');
    expect(res.status).toBe(500);
    expect(JSON.stringify(res.json)).not.toContain('secret');
    expect(failures.some((f) => f.includes('secret internal detail'))).toBe(true);
    expect((await call('GET', '/things/still-up')).status).toBe(200);
  });
});
