// Runs the system's curl (a real HTTP/1.1 client, not Node's) and parses what it printed with -i: the
// final response's status and headers (interim 1xx blocks skipped) and the body as bytes.
import { execFile } from 'node:child_process';

export const CURL = '/usr/bin/curl';

export interface CurlResponse {
  status: number;
  /** Lowercase names; repeated fields joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

export interface CurlRun {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** curl with `args` (plus -sS); resolves with its exit code and output, never rejects on a non-zero exit. */
export function runCurl(args: string[], opts: { input?: Buffer | string; timeoutMs?: number } = {}): Promise<CurlRun> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      CURL,
      ['-sS', ...args],
      { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024, timeout: opts.timeoutMs ?? 15_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : (err as { code?: unknown }).code;
        if (typeof code !== 'number') return reject(err);
        resolve({ code, stdout, stderr: stderr.toString() });
      },
    );
    // curl stops reading its input when the server answers early (an error reply before the upload ends).
    child.stdin!.on('error', () => {});
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

/** One request; `args` are curl options and the URL. Rejects when curl itself fails. */
export async function curl(
  args: string[],
  opts: { input?: Buffer | string; timeoutMs?: number } = {},
): Promise<CurlResponse> {
  const run = await runCurl(['-i', ...args], opts);
  if (run.code !== 0) throw new Error(`curl exited with ${run.code}: ${run.stderr.trim()}`);
  return parseResponse(run.stdout);
}

function parseResponse(out: Buffer): CurlResponse {
  let rest = out;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    const head = (end < 0 ? rest : rest.subarray(0, end)).toString('latin1');
    const lines = head.split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    rest = end < 0 ? Buffer.alloc(0) : rest.subarray(end + 4);
    if (status >= 100 && status < 200 && rest.length > 0) continue;
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    return { status, headers, body: rest };
  }
}
