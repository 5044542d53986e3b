// Small HTTP client helpers for the harness itself (not for load): readiness polling and fetching a status page.
// Each request uses a fresh connection (agent: false) so a check never leaves a pooled socket open on a target.
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface HttpText {
  readonly status: number;
  readonly body: string;
}

/** A TLS listener: the CA its certificate must chain to and the name it must carry. */
export interface TlsCheck {
  readonly caFile: string;
  readonly servername: string;
}

/** GET http(s)://127.0.0.1:<port><path>; rejects on connection errors or after `timeoutMs`. */
export function httpGetText(port: number, path = '/', timeoutMs = 2000, tls?: TlsCheck): Promise<HttpText> {
  return new Promise((resolve, reject) => {
    const base = { host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs };
    const onResponse = (res: http.IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    };
    const req =
      tls === undefined
        ? http.get(base, onResponse)
        : https.get({ ...base, ca: readFileSync(tls.caFile), servername: tls.servername }, onResponse);
    req.on('timeout', () => req.destroy(new Error(`GET :${port}${path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * Polls GET / every 100 ms until it answers 200, for at most `timeoutMs`.
 * `gaveUp` lets the caller stop early, e.g. when the process being waited for has already exited.
 * Returns undefined when ready, otherwise why not (the last status or error).
 */
export async function waitForHttpOk(
  port: number,
  timeoutMs: number,
  gaveUp: () => boolean = () => false,
  tls?: TlsCheck,
): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (gaveUp()) return `gave up (${last})`;
    try {
      const res = await httpGetText(port, '/', 1000, tls);
      if (res.status === 200) return undefined;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(100);
  }
  return `no 200 within ${timeoutMs / 1000} s (last: ${last})`;
}
