#!/usr/bin/env node
// Builds the one native addon, native/original-dst.node (native/original-dst.c: SO_ORIGINAL_DST for transparent
// capture), with the system's C compiler ($CC, else cc). Run by `npm run build` and `npm ci` (prepare) and by the
// Dockerfile's build stage. It needs no Node headers (the C file declares the Node-API functions it uses). When
// it cannot build (no compiler, not Linux) it says so and exits 0: the proxy then runs without it, and a
// listener with `originalDst: true` logs that original-destination routing is unavailable. --required (the
// Dockerfile) makes that an error instead.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = join(root, 'native', 'original-dst.c');
const target = join(root, 'native', 'original-dst.node');
const required = process.argv.includes('--required');

function unavailable(why) {
  const msg = `build-native: native/original-dst.node not built (${why}); transparent capture's original-destination routing will be unavailable`;
  if (required) {
    console.error(msg);
    process.exit(1);
  }
  console.warn(msg);
  process.exit(0);
}

if (process.platform !== 'linux') unavailable(`SO_ORIGINAL_DST is Linux-only; this is ${process.platform}`);
if (existsSync(target) && statSync(target).mtimeMs >= statSync(source).mtimeMs) process.exit(0); // up to date
const cc = process.env.CC || 'cc';
// Built beside, then renamed: a proxy loading the file never sees half of it.
const dir = mkdtempSync(join(tmpdir(), 'skein-native-'));
const out = join(dir, 'original-dst.node');
const r = spawnSync(cc, ['-O2', '-Wall', '-Wextra', '-fPIC', '-shared', '-o', out, source], { encoding: 'utf8' });
if (r.error !== undefined || r.status !== 0) {
  rmSync(dir, { recursive: true, force: true });
  unavailable(r.error !== undefined ? `${cc}: ${r.error.message}` : `${cc} failed:\n${r.stderr.trim()}`);
}
try {
  renameSync(out, target);
} catch {
  // Another filesystem: copy through a rename in the target directory.
  const { copyFileSync } = await import('node:fs');
  copyFileSync(out, `${target}.tmp`);
  renameSync(`${target}.tmp`, target);
}
rmSync(dir, { recursive: true, force: true });
