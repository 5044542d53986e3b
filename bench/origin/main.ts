// `node bench/origin/main.ts --port P [--host H] [--tls CERT KEY] [--ca CA]`: the bench origin as a process.
// Prints "listening on HOST:PORT" once ready; SIGTERM or SIGINT closes it and exits 0.
import { startOrigin } from './server.ts';

const USAGE = 'usage: node bench/origin/main.ts --port P [--host H] [--tls CERT KEY] [--ca CA]';

function parse(argv: string[]): { host: string; port: number; certFile?: string; keyFile?: string; caFile?: string } {
  let host = '127.0.0.1';
  let port: number | undefined;
  let certFile: string | undefined;
  let keyFile: string | undefined;
  let caFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--port') port = Number(value());
    else if (arg === '--host') host = value();
    else if (arg === '--tls') {
      certFile = value();
      keyFile = value();
    } else if (arg === '--ca') caFile = value();
    else throw new Error(`unknown argument ${arg}`);
  }
  if (port === undefined || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error('--port P is required');
  if (caFile !== undefined && certFile === undefined) throw new Error('--ca needs --tls CERT KEY');
  return { host, port, certFile, keyFile, caFile };
}

let args: ReturnType<typeof parse>;
try {
  args = parse(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
const origin = await startOrigin({
  host: args.host,
  port: args.port,
  tls:
    args.certFile !== undefined && args.keyFile !== undefined
      ? { certFile: args.certFile, keyFile: args.keyFile, caFile: args.caFile }
      : undefined,
});
process.stdout.write(`listening on ${args.host}:${origin.port}\n`);
const stop = (): void => void origin.close().finally(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
