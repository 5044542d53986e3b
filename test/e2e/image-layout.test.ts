// The Docker image's runtime layout, without Docker (there is no engine on the test machines): the runtime
// stage's COPY, ENV, USER and ENTRYPOINT lines are read from the Dockerfile and replayed into a temp directory.
// What they take from the build stage is replayed too: dist/ is the build stage's own `tsc -p <config>` run into
// a temp directory, and node_modules holds only the packages `npm prune --omit=dev` keeps (package-lock.json's
// non-dev entries, each a symlink to this checkout's copy). Then `skein probe`, `skein control` and `skein bench`
// run from it as the image runs them: as a non-root user, with a PATH that has no bpftrace (the image installs
// none). If the Dockerfile stops copying something they need, or they start importing a dev dependency, these
// tests fail; so do they if what the Kubernetes manifests run from the image (iptables, the sample service) is
// not there. A second layout leaves probes/scripts/ out, as the image did before, to check that a missing script
// is an error with its code, not a crash.
import { execFileSync, type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { api, useToken } from '../support/control.ts';
import { waitFor, waitForAsync } from '../support/wait-for.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const IS_ROOT = process.getuid?.() === 0;
/** Who the image's `USER node` becomes here: nobody, when the test runs as root. */
const UNPRIVILEGED = ['--reuid=65534', '--regid=65534', '--clear-groups'];

interface Copy {
  readonly from: string | undefined;
  readonly sources: readonly string[];
  readonly dest: string;
}

interface Stage {
  readonly name: string | undefined;
  workdir: string;
  readonly copies: Copy[];
  readonly env: Record<string, string>;
  readonly runs: string[];
  user: string | undefined;
  entrypoint: string[] | undefined;
}

/** The Dockerfile's stages with the instructions this test replays (continuation lines joined, comments dropped). */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  for (const line of lines) {
    const [instruction, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    const stage = stages.at(-1);
    switch (instruction.toUpperCase()) {
      case 'FROM':
        stages.push({
          name: /\bAS\s+(\S+)/i.exec(args)?.[1],
          workdir: '/',
          copies: [],
          env: {},
          runs: [],
          user: undefined,
          entrypoint: undefined,
        });
        break;
      case 'WORKDIR':
        stage!.workdir = posix.resolve(stage!.workdir, args);
        break;
      case 'COPY': {
        const words = args.split(/\s+/);
        const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
        const paths = words.filter((w) => !w.startsWith('--'));
        stage!.copies.push({ from, sources: paths.slice(0, -1), dest: paths.at(-1)! });
        break;
      }
      case 'ENV':
        for (const m of args.matchAll(/(\w+)=(\S+)/g)) stage!.env[m[1]] = m[2];
        break;
      case 'RUN':
        stage!.runs.push(args);
        break;
      case 'USER':
        stage!.user = args;
        break;
      case 'ENTRYPOINT':
        stage!.entrypoint = JSON.parse(args) as string[];
        break;
    }
  }
  return stages;
}

const DOCKERFILE = parseDockerfile(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
const RUNTIME = DOCKERFILE.at(-1)!;
const DOCKERIGNORE = readFileSync(join(REPO, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim().replace(/\/$/, ''))
  .filter((l) => l !== '' && !l.startsWith('#'));

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The build stage's dist/: its `tsc -p <config>` command, run once into a temp directory. */
let builtDist: string | undefined;
function buildStageDist(stage: Stage): string {
  if (builtDist !== undefined) return builtDist;
  const tsc = stage.runs.map((r) => /\btsc -p (\S+)/.exec(r)?.[1]).find((c) => c !== undefined);
  if (tsc === undefined) throw new Error(`the ${stage.name} stage runs no \`tsc -p <config>\``);
  const out = mkdtempSync(join(tmpdir(), 'skein-image-dist-'));
  dirs.push(out);
  chmodSync(out, 0o755);
  execFileSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', tsc, '--outDir', out], {
    cwd: REPO,
    stdio: 'inherit',
  });
  builtDist = out;
  return out;
}

/** The build stage's node_modules after `npm prune --omit=dev`: the lockfile's non-dev packages, symlinked. */
let prunedModules: string | undefined;
function buildStageNodeModules(stage: Stage): string {
  if (prunedModules !== undefined) return prunedModules;
  if (!stage.runs.some((r) => r.includes('npm prune --omit=dev'))) {
    throw new Error(`the ${stage.name} stage does not run \`npm prune --omit=dev\``);
  }
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean }>;
  };
  const out = mkdtempSync(join(tmpdir(), 'skein-image-modules-'));
  dirs.push(out);
  chmodSync(out, 0o755);
  for (const [path, entry] of Object.entries(lock.packages)) {
    // Top-level packages only: nested node_modules come along inside their parent.
    const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)$/.exec(path);
    if (m === null || entry.dev === true || !existsSync(join(REPO, path))) continue;
    mkdirSync(resolve(out, m[1], '..'), { recursive: true });
    symlinkSync(join(REPO, path), join(out, m[1]));
  }
  prunedModules = out;
  return out;
}

/**
 * Replays the runtime stage's COPY lines into a temp directory (the image's WORKDIR). A `--from=<stage>` source
 * is that stage's path relative to its WORKDIR: dist/ and node_modules are replayed from the build stage's RUN
 * lines (above), anything else is taken from this checkout; a plain source comes from the build context, this
 * checkout.
 */
function buildRuntimeLayout(omit: readonly string[] = []): string {
  const root = mkdtempSync(join(tmpdir(), 'skein-image-layout-'));
  dirs.push(root);
  chmodSync(root, 0o755); // readable by the unprivileged user the image runs as
  for (const copy of RUNTIME.copies) {
    const fromStage = copy.from === undefined ? undefined : DOCKERFILE.find((s) => s.name === copy.from);
    if (copy.from !== undefined && fromStage === undefined) throw new Error(`COPY --from=${copy.from}: no such stage`);
    for (const source of copy.sources) {
      const rel = fromStage === undefined ? posix.normalize(source) : posix.relative(fromStage.workdir, source);
      if (omit.includes(rel)) continue;
      const from =
        fromStage !== undefined && rel === 'dist'
          ? buildStageDist(fromStage)
          : fromStage !== undefined && rel === 'node_modules'
            ? buildStageNodeModules(fromStage)
            : join(REPO, rel);
      if (!existsSync(from)) {
        throw new Error(`${source} (${from}) does not exist: run \`tsc -p tsconfig.build.json\` for dist/`);
      }
      const destPath = resolve(root, posix.relative(RUNTIME.workdir, posix.resolve(RUNTIME.workdir, copy.dest)));
      const into = copy.dest.endsWith('/') || copy.dest === '.' ? join(destPath, basename(rel)) : destPath;
      mkdirSync(resolve(into, '..'), { recursive: true });
      if (rel === 'node_modules') symlinkSync(from, into);
      else cpSync(from, into, { recursive: true });
    }
  }
  // What the image's PATH holds of the tools probes look for: setpriv (util-linux is in the base image), no
  // bpftrace.
  const bin = join(root, '.image-bin');
  mkdirSync(bin);
  for (const tool of ['setpriv']) {
    const found = ['/usr/bin', '/bin'].map((d) => join(d, tool)).find((p) => existsSync(p));
    if (found !== undefined) symlinkSync(found, join(bin, tool));
  }
  return root;
}

/** The image's ENTRYPOINT with `args`, run from `root` as the image's user and environment. */
function runImage(root: string, args: string[]): ChildProcess {
  const [node, ...entry] = RUNTIME.entrypoint!;
  expect(node).toBe('node');
  const argv = [process.execPath, ...entry, ...args];
  const asUser = IS_ROOT && RUNTIME.user !== undefined && RUNTIME.user !== 'root';
  const child = spawn(asUser ? 'setpriv' : argv[0], asUser ? [...UNPRIVILEGED, ...argv] : argv.slice(1), {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '', PATH: join(root, '.image-bin'), ...RUNTIME.env },
  });
  children.push(child);
  return child;
}

async function runToExit(root: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = runImage(root, args);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const code = await new Promise<number | null>((done) => child.once('close', done));
  return { code, out, err };
}

async function startControl(root: string): Promise<{ url: string; pid: number }> {
  const data = mkdtempSync(join(root, 'control-data-')); // one per control started from this layout
  chmodSync(data, 0o777);
  const child = runImage(root, ['control', '--listen', '127.0.0.1:0', '--data-dir', data]);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const url = await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`skein control exited ${child.exitCode}: ${err}`);
    return /listening on (http:\/\/\S+)/.exec(out)?.[1];
  }, 15_000);
  // A new data dir: control made an API token and printed it once; writes need it.
  useToken(url, await waitFor(() => /new API token in \S+: (\S+)/.exec(out)?.[1], 15_000));
  return { url, pid: child.pid! };
}

interface StatusBody {
  error?: { code: string; message: string; problems: string[] };
  available: boolean;
  problems: string[];
  warnings: string[];
  running: unknown[];
  recent: unknown[];
}

describe('the Docker image runtime layout (replayed from the Dockerfile, no Docker engine)', () => {
  it('takes every COPY source of the runtime stage from the build context or the build stage, none dockerignored', () => {
    const context = RUNTIME.copies.filter((c) => c.from === undefined).flatMap((c) => c.sources);
    for (const source of context) {
      const ignored = DOCKERIGNORE.find((entry) => source === entry || source.startsWith(`${entry}/`));
      expect(ignored, `${source} is excluded by .dockerignore`).toBeUndefined();
    }
    expect(RUNTIME.user, 'the image runs as a non-root user').toBeDefined();
    expect(RUNTIME.user).not.toBe('root');
    expect(statSync(join(REPO, 'dist', 'probes', 'cli.js')).isFile()).toBe(true);
  });

  describe('as the Dockerfile builds it', () => {
    const root = buildRuntimeLayout();

    it('has what the Kubernetes manifests run from it: iptables for the redirect init container, the sample service', async () => {
      // The sidecar overlay's init container runs `skein redirect install` from this image, as root.
      expect(RUNTIME.runs.some((r) => /\bapt-get install\b.*\biptables\b/.test(r))).toBe(true);
      // Its app container runs the bundled sample service by its path in the image.
      expect(RUNTIME.workdir).toBe('/opt/skein');
      const sidecar = readFileSync(join(REPO, 'manifests/overlays/sidecar/sidecar.yaml'), 'utf8');
      const paths = [...sidecar.matchAll(/\/opt\/skein\/([\w./-]+\.js)/g)].map((m) => m[1]);
      expect(paths).toContain('dist/examples/sample-service.js');
      for (const p of paths) expect(existsSync(join(root, p)), p).toBe(true);
      const sample = (await import(join(root, 'dist/examples/sample-service.js'))) as Record<string, unknown>;
      expect(typeof sample.startSampleService).toBe('function');
    });

    it('skein probe --help answers with its usage', async () => {
      const { code, out } = await runToExit(root, ['probe', '--help']);
      expect(code).toBe(0);
      expect(out).toMatch(/^Usage: skein probe run --pid/);
    });

    it('skein ca runs from the image: its runtime dependencies (@peculiar/x509, reflect-metadata) survive the prune', async () => {
      const ca = mkdtempSync(join(root, 'ca-'));
      chmodSync(ca, 0o777);
      const init = await runToExit(root, ['ca', 'init', '--dir', join(ca, 'd')]);
      expect(init.err).toBe('');
      expect(init.code).toBe(0);
      const issue = await runToExit(root, [
        'ca',
        'issue',
        '--dir',
        join(ca, 'd'),
        '--id',
        'spiffe://cluster.local/ns/a/sa/b',
        '--out',
        join(ca, 'b'),
      ]);
      expect(issue.err).toBe('');
      expect(issue.out).toMatch(/^issued spiffe:\/\/cluster\.local\/ns\/a\/sa\/b /);
    });

    it('skein probe run says in one line what is missing (root, bpftrace; not the scripts) and exits 1', async () => {
      const { code, out, err } = await runToExit(root, ['probe', 'run', '--pid', String(process.pid)]);
      expect(code).toBe(1);
      expect(out).toBe('');
      const lines = err.trimEnd().split('\n');
      expect(lines, err).toHaveLength(1);
      expect(lines[0]).toMatch(/^skein probe: cannot run probes here: /);
      expect(lines[0]).toMatch(/need root/);
      expect(lines[0]).toMatch(/bpftrace is not installed/);
      expect(lines[0]).not.toMatch(/scripts are missing/);
    });

    it('carries the SO_ORIGINAL_DST addon where dist/ finds it, and skein redirect (the init container command)', async () => {
      const probe = `import(${JSON.stringify(join(root, 'dist/proxy/original-dst.js'))}).then((m) => console.log(JSON.stringify(m.originalDstAddon().why)))`;
      const why = execFileSync(process.execPath, ['-e', probe], { cwd: root, encoding: 'utf8' });
      expect(JSON.parse(why)).toBe('');
      const args = [
        'redirect',
        'install',
        '--proxy-uid',
        '1337',
        '--outbound-port',
        '15001',
        '--inbound-port',
        '15006',
      ];
      const { code, out } = await runToExit(root, [...args, '--dry-run']);
      expect(code).toBe(0);
      expect(out).toContain('-A SKEIN_REDIRECT -p tcp -j REDIRECT --to-ports 15001');
    });

    it('has the runtime dependencies and not the bench harness’s (hdr-histogram-js)', () => {
      const modules = join(root, 'node_modules');
      // ws is there too now, as a dependency of @kubernetes/client-node (control's Kubernetes discovery).
      for (const dep of ['undici', 'yaml', 'zod', 'pino', '@kubernetes/client-node'])
        expect(existsSync(join(modules, dep)), dep).toBe(true);
      for (const dep of ['hdr-histogram-js']) expect(existsSync(join(modules, dep)), dep).toBe(false);
      expect(existsSync(join(root, 'dist', 'bench', 'cli.js')), 'dist/bench/cli.js').toBe(false);
    });

    it('skein bench says in one line that the harness is not in this image and how to run it, and exits 1', async () => {
      for (const args of [['bench'], ['bench', 'run', '--help']]) {
        const { code, out, err } = await runToExit(root, args);
        expect(code, args.join(' ')).toBe(1);
        expect(out).toBe('');
        expect(err.trimEnd().split('\n'), err).toHaveLength(1);
        expect(err).toMatch(/^skein bench: the bench harness is not in this image; run it from a clone: /);
        expect(err).toContain('npm ci && bin/skein.js bench');
      }
    });

    it('skein control takes a bench job and fails it with that one line as its error', async () => {
      const control = await startControl(root);
      const body = { localTargets: ['direct'], scenarios: ['http1-max'], rounds: 1, durationS: 1, probes: false };
      const started = await api<{ id: string }>(control.url, 'POST', '/benchmarks/start', body);
      expect(started.status, JSON.stringify(started.body)).toBe(202);
      const job = await waitForAsync(async () => {
        const j = await api<{ status: string; error?: string }>(
          control.url,
          'GET',
          `/benchmarks/jobs/${started.body.id}`,
        );
        return j.body.status === 'queued' || j.body.status === 'running' ? undefined : j.body;
      }, 20_000);
      expect(job.status).toBe('failed');
      expect(job.error).toMatch(/^skein bench: the bench harness is not in this image; run it from a clone: /);
    }, 30_000);

    it('skein control answers /ebpf/probe/status and /ebpf/probe/start with 503 naming what is missing', async () => {
      const control = await startControl(root);
      const status = await api<StatusBody>(control.url, 'GET', '/ebpf/probe/status');
      expect(status.status).toBe(503);
      expect(status.body.error?.code).toBe('SKEIN_UNAVAILABLE');
      expect(status.body.available).toBe(false);
      expect(status.body.error?.problems).toEqual(status.body.problems);
      const text = status.body.problems.join('\n');
      expect(text).toMatch(/need root/);
      expect(text).toMatch(/bpftrace is not installed/);
      expect(text).not.toMatch(/scripts are missing/);
      expect(status.body).toMatchObject({ running: [], recent: [] });

      const start = await api<StatusBody>(control.url, 'POST', '/ebpf/probe/start', { pids: [control.pid] });
      expect(start.status).toBe(503);
      expect(start.body.error?.code).toBe('SKEIN_UNAVAILABLE');
      expect(start.body.error?.problems.join('\n')).toMatch(/need root/);
    }, 30_000);
  });

  describe('without probes/scripts/ (as the image was before it copied them)', () => {
    const root = buildRuntimeLayout(['probes/scripts']);

    it('skein probe run names the missing scripts in one line and exits 1, without a stack trace', async () => {
      const { code, err } = await runToExit(root, ['probe', 'run', '--pid', String(process.pid)]);
      expect(code).toBe(1);
      expect(err.trimEnd().split('\n'), err).toHaveLength(1);
      expect(err).toMatch(/^skein probe: cannot run probes here: .*probe scripts are missing \(.*tcp-lifecycle\.bt/);
    });

    it('skein control answers /ebpf/probe/status with 503 naming the missing scripts, not 500', async () => {
      const control = await startControl(root);
      const status = await api<StatusBody>(control.url, 'GET', '/ebpf/probe/status');
      expect(status.status).toBe(503);
      expect(status.body.error?.code).toBe('SKEIN_UNAVAILABLE');
      expect(status.body.problems.join('\n')).toMatch(/probe scripts are missing/);
    }, 30_000);
  });
});
