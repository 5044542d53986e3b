// Headless Chromium for the report.html test: finds the binary and dumps a page's DOM after its scripts ran. The
// browser runs in its own process group with a throwaway profile, is killed (by that group's id) when it overstays
// its time, and the group is killed again after it exits so no helper process outlives the test.
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Debian's `chromium` package first (scripts/test.sh installs it), then the usual other names; CHROMIUM_BIN wins. */
export function findChromium(): string | undefined {
  const names = [process.env.CHROMIUM_BIN, 'chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome'];
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  for (const name of names) {
    if (name === undefined || name === '') continue;
    for (const candidate of isAbsolute(name) ? [name] : dirs.map((d) => join(d, name))) {
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // Not here; try the next one.
      }
    }
  }
  return undefined;
}

export interface DumpedDom {
  readonly dom: string;
  readonly stderr: string;
  readonly code: number | null;
  readonly timedOut: boolean;
}

const killGroup = (pid: number) => {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is gone already.
  }
};

/** Loads `file` in headless Chromium and returns the DOM serialized after the load event (scripts have run). */
export function dumpDom(bin: string, file: string, timeoutMs = 45_000): Promise<DumpedDom> {
  const profile = mkdtempSync(join(tmpdir(), 'skein-chromium-'));
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--no-first-run',
    '--no-default-browser-check',
    '--disable-extensions',
    `--user-data-dir=${profile}`,
    '--dump-dom',
    pathToFileURL(file).href,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let dom = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => (dom += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid);
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      rmSync(profile, { recursive: true, force: true });
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (child.pid !== undefined) killGroup(child.pid);
      rmSync(profile, { recursive: true, force: true });
      resolve({ dom, stderr, code, timedOut });
    });
  });
}

/** The attributes of every `<tag …>` in `html` (enough for serialized DOM, which always quotes attributes). */
export function tagsOf(html: string, tag: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const m of html.matchAll(new RegExp(`<${tag}(\\s[^>]*)?>`, 'g'))) {
    const attrs: Record<string, string> = {};
    for (const a of (m[1] ?? '').matchAll(/([\w:-]+)(?:="([^"]*)")?/g)) attrs[a[1]] = a[2] ?? '';
    out.push(attrs);
  }
  return out;
}

/** The inner HTML of each `<figure>` with its attributes (figures do not nest in report.html). */
export function figuresOf(html: string): { attrs: Record<string, string>; inner: string }[] {
  return [...html.matchAll(/<figure(\s[^>]*)>([\s\S]*?)<\/figure>/g)].map((m) => ({
    attrs: tagsOf(`<figure${m[1]}>`, 'figure')[0],
    inner: m[2],
  }));
}
