// `skein bench`: the side-by-side proxy benchmark (run, the default), the comparison of two reports (compare) and
// the multi-protocol origin the benchmark forwards to (origin, also what a Kubernetes bench Job measures behind a
// mesh). bin/skein.js dispatches here; this file only picks the subcommand.
import { parseArgs } from 'node:util';
import { startOrigin } from './load/index.ts';
import { runCompare } from './report/index.ts';
import { parseRunOptions, RUN_HELP, UsageError } from './run/options.ts';
import { executeRun } from './run/runner.ts';

export const ORIGIN_HELP = `Usage: skein bench origin [--listen HOST:PORT]

Serve the benchmark origin until SIGTERM or SIGINT: HTTP/1.1 and h2c (prior knowledge) on one port (a GET gets
200 "ok", a POST the length of its body), gRPC skein.bench.Echo/Unary and /ServerStream, WebSocket echo at /ws.
Run it behind a mesh and point \`skein bench --remote NAME=MESH:URL\` at it.

Options:
  --listen HOST:PORT   Where to listen (default 0.0.0.0:8080).
  -h, --help           Show this help.`;

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

async function run(argv: string[]): Promise<number> {
  let opts;
  try {
    opts = parseRunOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`skein bench: ${err.message}\n\nRun \`skein bench --help\` for usage.\n`);
    return 1;
  }
  if (opts === 'help') {
    process.stdout.write(`${RUN_HELP}\n`);
    return 0;
  }
  try {
    const { report } = await executeRun(opts, {
      stderr: process.stderr,
      stdout: process.stdout,
      handleSignals: true,
      command: ['skein bench', ...argv.map(shellQuote)].join(' '),
    });
    if (report.targets.every((t) => t.results.length === 0)) {
      process.stderr.write('skein bench: no target produced figures; the report says why\n');
      return 1;
    }
    return 0;
  } catch (err) {
    process.stderr.write(`skein bench: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

async function origin(argv: string[]): Promise<number> {
  let listen: string;
  try {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: { listen: { type: 'string', default: '0.0.0.0:8080' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help === true) {
      process.stdout.write(`${ORIGIN_HELP}\n`);
      return 0;
    }
    listen = values.listen;
  } catch (err) {
    process.stderr.write(`skein bench origin: ${(err as Error).message}\n\n${ORIGIN_HELP}\n`);
    return 1;
  }
  const m = /^(.+):(\d{1,5})$/.exec(listen);
  if (m === null || Number(m[2]) > 65535) {
    process.stderr.write(`skein bench origin: --listen must be HOST:PORT, got '${listen}'\n`);
    return 1;
  }
  const server = await startOrigin({ host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) });
  process.stderr.write(`skein bench origin listening on ${m[1]}:${server.port}\n`);
  const stop = () => void server.close().finally(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return -1; // keep running
}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case undefined:
      return run([]);
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${RUN_HELP}\n`);
      return 0;
    case 'run':
      return run(rest);
    case 'compare':
      return runCompare(rest);
    case 'origin':
      return origin(rest);
    default:
      if (sub.startsWith('-')) return run(argv);
      process.stderr.write(`skein bench: unknown subcommand '${sub}'\n\n${RUN_HELP}\n`);
      return 1;
  }
}

// Run directly (node bench/cli.ts …, as the harness starts its origin) rather than imported by bin/skein.js.
if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  if (code >= 0) process.exitCode = code;
}
