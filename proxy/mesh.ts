// `skein mesh` (npm start): a local mesh on one machine with nothing else installed: the bundled sample
// service behind a sidecar with inbound and outbound listeners, from examples/mesh.yaml, and the control API
// with its embedded file store (benchmark jobs, eBPF probe runs). Prints how to call it.
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startSampleService } from '../examples/sample-service.ts';
import { ConfigError, loadConfigFile } from '../src/config/load.ts';
import { parseHostPort } from '../src/discovery/address.ts';
import { CONTROL_DEFAULTS, parseControlArgs, startControlProcess } from '../control/cli.ts';
import type { ControlServer } from '../control/server.ts';
import { runProxy } from './cli.ts';
import type { LogLevel } from '../src/log.ts';

export const MESH_HELP = `Usage: skein mesh [options]

Start a local mesh: the bundled sample service on --app, and a sidecar proxy with an outbound listener
(the app's way out), an inbound listener (the mesh's way in) and an admin listener, from the config file.

Options:
  -c, --config FILE     Mesh config (default: examples/mesh.yaml). Reloaded when it changes.
  --app HOST:PORT       Where the sample service listens (default 127.0.0.1:18080; must match the config).
  --control HOST:PORT   Where the control API listens, or "off" (default ${CONTROL_DEFAULTS.listen}).
  --data-dir DIR        Control's store and benchmark reports (default ${CONTROL_DEFAULTS.dataDir}).
  --log-level LEVEL     debug | info | warn | error (default info).
  -h, --help            Show this help.`;

/** examples/mesh.yaml at the project root, whether this runs from the sources or from dist/. */
function defaultMeshConfig(): string {
  for (const rel of ['../examples/mesh.yaml', '../../examples/mesh.yaml']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  return 'examples/mesh.yaml';
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c', default: defaultMeshConfig() },
      app: { type: 'string', default: '127.0.0.1:18080' },
      control: { type: 'string', default: CONTROL_DEFAULTS.listen },
      'data-dir': { type: 'string', default: CONTROL_DEFAULTS.dataDir },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${MESH_HELP}\n`);
    return 0;
  }
  let config: ReturnType<typeof loadConfigFile>;
  try {
    config = loadConfigFile(values.config);
  } catch (err) {
    process.stderr.write(`skein mesh: ${err instanceof ConfigError ? err.message : String(err)}\n`);
    return 1;
  }
  const app = parseHostPort(values.app);
  let controlArgs;
  try {
    controlArgs =
      values.control === 'off'
        ? undefined
        : parseControlArgs([
            '--listen',
            values.control,
            '--data-dir',
            values['data-dir'],
            '--log-level',
            values['log-level'],
          ]);
  } catch (err) {
    process.stderr.write(`skein mesh: ${(err as Error).message.replace('--listen', '--control')}\n`);
    return 1;
  }
  let control: ControlServer | undefined;
  try {
    await startSampleService(app.host, app.port);
    if (controlArgs !== undefined && controlArgs !== 'help') control = await startControlProcess(controlArgs);
    const proxy = await runProxy(
      {
        configFile: values.config,
        config,
        overrides: {},
        workers: 1,
        logLevel: values['log-level'] as LogLevel,
        check: false,
        // The sidecar takes its traffic rules from the embedded control, as a meshed proxy would.
        control: control?.url,
        nodeId: undefined,
        bootstrapTokenFile: undefined,
        spiffeId: undefined,
        stateDir: join(resolve(values['data-dir']), 'proxy'),
        statsIntervalMs: 5_000,
      },
      { onStop: () => control?.close() ?? Promise.resolve() },
    );
    const out = proxy.listenerAddress('outbound');
    const inb = proxy.listenerAddress('inbound');
    const admin = config.admin?.address;
    process.stdout.write(
      [
        '',
        'Skein local mesh is up.',
        `  sample service      http://${values.app}`,
        out ? `  outbound listener   http://${out.host}:${out.port}   (the app's calls into the mesh)` : '',
        inb ? `  inbound listener    http://${inb.host}:${inb.port}   (the mesh's calls into the app)` : '',
        admin ? `  admin               http://${admin}/clusters  /config  /metrics  /ready` : '',
        control ? `  control API         ${control.url}/v1/rules  /proxies  /benchmarks/jobs  /ebpf/probe/status` : '',
        control ? `  API token (writes)  ${control.token.file}` : '',
        '',
        'Try:',
        out ? `  curl -s http://${out.host}:${out.port}/hello` : '',
        out ? `  curl -s -H 'x-canary: true' http://${out.host}:${out.port}/hello` : '',
        out ? `  curl -s --http2-prior-knowledge http://${out.host}:${out.port}/hello` : '',
        admin ? `  curl -s http://${admin}/clusters` : '',
        control && out
          ? `  curl -s -H "authorization: Bearer $(cat ${control.token.file})" --json '{"id":"beta","conditions":[{"type":"header","field":"x-beta","value":"1"}],"destinations":[{"cluster":"sample-service"}],"actions":{"headers":{"add":{"x-route":"beta-rule"}}}}' ${control.url}/v1/rules`
          : '',
        control ? `  curl -s ${control.url}/proxies` : '',
        '',
        `Config: ${values.config} (edit it: the proxy reloads; a bad edit is rejected). Ctrl-C drains and stops.`,
        '',
      ]
        .filter((l, i, a) => l !== '' || a[i - 1] !== '')
        .join('\n'),
    );
  } catch (err) {
    process.stderr.write(`skein mesh: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  return -1;
}
