// Warnings well before a certificate the proxy depends on expires: its own leaf (which should have been
// renewed at half its life, so a quarter left means renewal is failing), the intermediate that signed it and
// the roots it trusts (30 days ahead: those are rotated by an operator, and the mesh stops when they lapse).
import type { Logger } from '../../src/log.ts';
import type { MeshIdentity } from './identity.ts';

const DAY_MS = 24 * 3600_000;
const CA_WARN_MS = 30 * DAY_MS;
const CHECK_EVERY_MS = 10 * 60_000;

export interface ExpiryWarning {
  readonly what: 'leaf' | 'intermediate' | 'root';
  readonly subject: string;
  readonly notAfter: string;
  readonly leftMs: number;
}

/** What is close to its end at `nowMs`. */
export function expiryWarnings(identity: MeshIdentity, nowMs: number): ExpiryWarning[] {
  const out: ExpiryWarning[] = [];
  identity.chain.forEach((cert, i) => {
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    const left = to - nowMs;
    const threshold = i === 0 ? Math.min(7 * DAY_MS, (to - from) / 4) : CA_WARN_MS;
    if (left < threshold)
      out.push({
        what: i === 0 ? 'leaf' : 'intermediate',
        subject: cert.subject,
        notAfter: cert.validTo,
        leftMs: left,
      });
  });
  for (const root of identity.roots) {
    const left = Date.parse(root.validTo) - nowMs;
    if (left < CA_WARN_MS) out.push({ what: 'root', subject: root.subject, notAfter: root.validTo, leftMs: left });
  }
  return out;
}

export class ExpiryWatch {
  readonly #identity: MeshIdentity;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | null = null;
  /** Said once per certificate (subject and end) and state, not at every check. */
  readonly #said = new Set<string>();

  constructor(identity: MeshIdentity, log: Logger) {
    this.#identity = identity;
    this.#log = log;
  }

  start(): void {
    this.#timer = setInterval(() => this.check(), CHECK_EVERY_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
  }

  check(): void {
    for (const w of expiryWarnings(this.#identity, Date.now())) {
      const expired = w.leftMs <= 0;
      const key = `${w.subject}|${w.notAfter}|${expired}`;
      if (this.#said.has(key)) continue;
      this.#said.add(key);
      const fields = {
        what: w.what,
        subject: w.subject,
        notAfter: w.notAfter,
        hoursLeft: +(w.leftMs / 3600_000).toFixed(1),
      };
      if (expired) this.#log.error('mtls: a certificate in use has expired', fields);
      else this.#log.warn('mtls: a certificate in use expires soon', fields);
    }
  }
}
