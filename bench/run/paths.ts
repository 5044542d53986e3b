// Where things are, whether the harness runs from the TypeScript sources (bench/run/) or from the build
// (dist/bench/run/): the repository root (bin/skein.js, bench/targets/) and the bench CLI module itself.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

/** The repository (or installed package) root: two levels up from bench/run/, three from dist/bench/run/. */
export function projectDir(): string {
  const up2 = resolve(HERE, '../..');
  return basename(up2) === 'dist' && existsSync(resolve(up2, '../package.json')) ? resolve(up2, '..') : up2;
}

/** bench/cli.ts or dist/bench/cli.js: the module `skein bench` runs, also used to start the origin process. */
export function benchCliPath(): string {
  return resolve(HERE, `../cli${extname(fileURLToPath(import.meta.url))}`);
}

function newestTs(dir: string): { file: string; mtimeMs: number } | undefined {
  let newest: { file: string; mtimeMs: number } | undefined;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = join(entry.parentPath, entry.name);
    const mtimeMs = statSync(file).mtimeMs;
    if (newest === undefined || mtimeMs > newest.mtimeMs) newest = { file, mtimeMs };
  }
  return newest;
}

/**
 * Why the skein targets would run something other than the sources in this checkout: bin/skein.js runs dist/,
 * which `npm run build` writes. undefined when the build is newer than every proxy/ and src/ file (or when there
 * are no sources, as in an image).
 */
export function staleBuildReason(root: string): string | undefined {
  const built = join(root, 'dist/proxy/cli.js');
  if (!existsSync(join(root, 'proxy')) || !existsSync(join(root, 'src'))) return undefined;
  if (!existsSync(built)) return 'dist/ is not built: run `npm run build` before measuring skein';
  const builtMs = statSync(built).mtimeMs;
  const newest = [newestTs(join(root, 'proxy')), newestTs(join(root, 'src'))]
    .filter((n) => n !== undefined)
    .sort((a, b) => b.mtimeMs - a.mtimeMs)[0];
  if (newest === undefined || newest.mtimeMs <= builtMs) return undefined;
  return (
    `dist/ is older than ${relative(root, newest.file)}: the skein targets ran the last build, not these sources ` +
    '(run `npm run build` first)'
  );
}
