// /openapi.json describes the API control serves: every path and method in it is answered by a route (never
// "no such resource" or 405), writes carry the token requirement (the API token, or for the certificate route the
// bootstrap token), and the rule schema in it is the one the API validates with (its condition types and operators
// are the model's).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONDITION_TYPES, OPERATORS } from '../../control/rules.ts';
import { type ControlServer, startControl } from '../../control/server.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'skein-openapi-'));
let control: ControlServer;

beforeAll(async () => {
  control = await startControl({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    caDir: join(dataDir, 'ca'),
    retentionDays: 30,
    log: () => {},
  });
});

afterAll(async () => {
  await control.close();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Operation {
  security?: Record<string, unknown>[];
  requestBody?: { content: Record<string, { schema: Record<string, any> }> };
}

describe('control /openapi.json', () => {
  it('lists only paths and methods the API answers, writes behind the API token', async () => {
    const doc = (await (await fetch(`${control.url}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, Operation>>;
    };
    expect(doc.openapi).toBe('3.1.0');
    const paths = Object.keys(doc.paths);
    for (const p of [
      '/v1/rules',
      '/v1/rules/{id}',
      '/v1/services',
      '/v1/authorization-policies',
      '/v1/authorization-policies/{id}',
      '/v1/push',
      '/v1/push/ack',
      '/proxies',
      '/v1/audit',
      '/v1/certificates',
      '/v1/trust-bundle',
      '/v1/crl',
    ])
      expect(paths).toContain(p);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (path === '/v1/push') continue; // a stream that never ends: opened in the push tests
        const url = `${control.url}${path.replace(/\{[^}]+\}/g, 'no-such-id')}`;
        const res = await fetch(url, { method: method.toUpperCase(), signal: AbortSignal.timeout(5_000) });
        const text = await res.text();
        expect(`${method} ${path} ${res.status}`).not.toMatch(/ 405$/);
        expect(text).not.toMatch(/no such resource/);
        const write = method !== 'get';
        // Open writes: the proxies' push acknowledgements and reports (no token), and certificate requests,
        // which need the bootstrap token instead of the API token.
        const scheme =
          !write || path.startsWith('/v1/push/') ? 'none' : path === '/v1/certificates' ? 'bootstrapToken' : 'apiToken';
        const schemes = (op.security ?? []).flatMap((s) => Object.keys(s));
        expect(`${method} ${path} token: ${schemes.join(',') || 'none'}`).toBe(`${method} ${path} token: ${scheme}`);
        if (scheme !== 'none') expect(res.status).toBe(401);
      }
    }
  });

  it('describes a rule with the schema the API validates: condition types and operators of the model', async () => {
    const doc = (await (await fetch(`${control.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, Operation>>;
    };
    const rule = doc.paths['/v1/rules'].post.requestBody!.content['application/json'].schema;
    const condition = rule.properties.conditions.items;
    expect(condition.properties.type.enum).toEqual([...CONDITION_TYPES]);
    expect(condition.properties.operator.enum).toEqual([...OPERATORS]);
    expect(rule.required).toEqual(expect.arrayContaining(['id', 'destinations']));
  });
});
