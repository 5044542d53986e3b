// The API token writes need until proxies and operators have mTLS identities: one bearer token in a file
// (mode 0600), generated on first start when the file is absent. Compared in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import { dirname } from 'node:path';
import { ApiError } from './http.ts';

export interface ApiToken {
  readonly file: string;
  /** True when this start generated it (the caller prints it once). */
  readonly created: boolean;
  readonly token: string;
}

/** `what` names the token in errors (the API token, or the bootstrap token proxies get certificates with). */
export function loadOrCreateToken(file: string, what = 'API token'): ApiToken {
  try {
    const token = readFileSync(file, 'utf8').trim();
    if (token.length < 16) throw new Error(`${file}: the ${what} must be at least 16 characters`);
    return { file, created: false, token };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dirname(file), { recursive: true });
  const token = randomBytes(32).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return { file, created: true, token };
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The createApiServer authorize hook: a write needs `Authorization: Bearer <token>`. Who: x-skein-actor, if given. */
export function bearerAuthorizer(token: string, what = 'API token'): (req: http.IncomingMessage) => string {
  const want = digest(token);
  return (req) => {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (m === null || !timingSafeEqual(digest(m[1]), want))
      throw new ApiError(
        'SKEIN_UNAUTHORIZED',
        header === '' ? `this write needs the ${what}: Authorization: Bearer <token>` : `wrong ${what}`,
      );
    const claimed = req.headers['x-skein-actor'];
    const who = typeof claimed === 'string' ? claimed.replace(/[^\w.@:-]/g, '').slice(0, 64) : '';
    return who === '' ? 'token' : `token:${who}`;
  };
}
