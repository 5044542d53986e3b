#!/usr/bin/env -S node --max-semi-space-size=2
// The `skein` executable: picks a subcommand and hands it the rest of the arguments. Each subcommand lives
// with the process it starts (proxy/cli.ts, ...); this file only knows their names. It runs the JavaScript
// that `npm run build` (also run by `npm ci`) emits into dist/: loading the TypeScript sources directly would
// work on Node 24 but keeps the type stripper (~20 MB) resident in every proxy.
// The shebang caps V8's young generation at 2 MB per semi-space: a proxy allocates many short-lived objects
// per request and keeps few, so a small nursery costs no CPU and saves ~25 MB of RSS under load (measured:
// README "Design numbers"). `node [flags] bin/skein.js` runs it with whatever flags you choose instead.
import { existsSync } from 'node:fs';

const COMMANDS = {
  proxy: ['../dist/proxy/cli.js', 'Start the sidecar proxy (config file or --listen/--upstream quick form).'],
  mesh: ['../dist/proxy/mesh.js', 'Start a local mesh: a sample service behind inbound and outbound proxies.'],
  control: ['../dist/control/cli.js', 'Start the control process (rules, push, bench jobs, probes; file or Redis).'],
  canary: ['../dist/control/canary-cli.js', 'Start, watch, promote or roll back canary rollouts through control.'],
  config: ['../dist/src/config/cli.js', 'Validate a config file, or print the config JSON Schema.'],
  ca: ['../dist/certs/cli.js', 'Run the mesh CA: init, issue certificates, inspect, revoke, CRLs, root rotation.'],
  redirect: [
    '../dist/proxy/redirect-cli.js',
    "Send the pod's TCP through the proxy (iptables; transparent capture): install or remove.",
  ],
  probe: ['../dist/probes/cli.js', 'Measure what processes cost in the kernel (eBPF: TCP, socket I/O, CPU).'],
  bench: ['../dist/bench/cli.js', 'Benchmark proxies side by side (skein, nginx, HAProxy, Node peers, meshes).'],
};

const HELP = `Usage: skein <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, [, what]]) => `  ${name.padEnd(8)} ${what}`)
  .join('\n')}

Run \`skein <command> --help\` for a command's options.`;

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `skein needs Node.js 24 or newer (this is ${process.version}); run it through npm (npx skein, npm start), which uses the pinned Node 24.\n`,
  );
  process.exit(1);
}

const [name, ...rest] = process.argv.slice(2);
if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
  process.stdout.write(`${HELP}\n`);
  process.exit(name === undefined ? 1 : 0);
}
const entry = COMMANDS[name];
if (entry === undefined) {
  process.stderr.write(`skein: unknown command '${name}'\n\n${HELP}\n`);
  process.exit(1);
}
// The Docker image carries what the proxy and control need, not the bench harness (bench/ and the dev
// dependencies it loads: ws, hdr-histogram-js); a clone built without dev dependencies lacks the latter too.
const NO_BENCH =
  'skein bench: the bench harness is not in this image; run it from a clone: npm ci && bin/skein.js bench';
const target = new URL(entry[0], import.meta.url);
if (!existsSync(target)) {
  const built = existsSync(new URL(COMMANDS.proxy[0], import.meta.url));
  if (name === 'bench' && built) process.stderr.write(`${NO_BENCH}\n`);
  else process.stderr.write(`skein: ${target.pathname} is missing: run \`npm run build\` (npm ci runs it too)\n`);
  process.exit(1);
}
let mod;
try {
  mod = await import(target.href);
} catch (err) {
  // Only a missing package (not a missing file of ours, which is a bug to see in full) means "no bench here".
  const missingPackage = err?.code === 'ERR_MODULE_NOT_FOUND' && /Cannot find package '/.test(String(err.message));
  if (name !== 'bench' || !missingPackage) throw err;
  process.stderr.write(`${NO_BENCH}\n`);
  process.exit(1);
}
const code = await mod.main(rest);
if (code >= 0) process.exitCode = code;
