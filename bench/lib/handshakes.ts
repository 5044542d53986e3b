// How many TLS handshakes a target has completed, read from the target itself before and after a measured run:
// the inbound skein's `skein_mtls_handshakes_total{direction="inbound",result="ok"}` (admin /metrics) or nginx's
// stub_status "accepts" (every accepted connection of nginx-tls is a full handshake: the generator resumes no
// sessions). Read over plaintext admin listeners, so a scrape costs no handshake of its own.
import { httpGetText } from './http-check.ts';
import { parseStubStatusAccepts } from './nginx-tls.ts';

export interface HandshakeCounter {
  readonly kind: 'skein-mtls' | 'nginx-stub-status';
  /** The admin or status listener on 127.0.0.1. */
  readonly port: number;
  readonly path: string;
}

/** Sum of `name`'s samples whose labels include every pair of `labels` (Prometheus text format); 0 when absent. */
export function promCounter(text: string, name: string, labels: Readonly<Record<string, string>>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m === null || m[1] !== name) continue;
    const set = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

/** The counter now; rejects when the listener does not answer 200 or the page has no such counter. */
export async function readHandshakes(c: HandshakeCounter): Promise<number> {
  const res = await httpGetText(c.port, c.path, 2000);
  if (res.status !== 200) throw new Error(`GET 127.0.0.1:${c.port}${c.path} answered ${res.status}`);
  if (c.kind === 'skein-mtls')
    return promCounter(res.body, 'skein_mtls_handshakes_total', { direction: 'inbound', result: 'ok' });
  const accepts = parseStubStatusAccepts(res.body);
  if (accepts === undefined) throw new Error(`no stub_status counters at 127.0.0.1:${c.port}${c.path}`);
  // Includes the status requests' own connections: one per read, nothing next to a run's handshakes.
  return accepts;
}
