// `skein config`: validate a config file the way the proxy would (same schema, same error paths), or print
// the schema as JSON Schema for editors and docs.
import { z } from 'zod';
import { ConfigError, loadConfigFile } from './load.ts';
import { Config } from './schema.ts';

export const CONFIG_HELP = `Usage: skein config <check FILE | schema>

  check FILE   Validate FILE (YAML or JSON). Prints each problem as "field.path: reason"; exit 1 if invalid.
  schema       Print the configuration's JSON Schema (generated from the same schema the proxy validates with).`;

export function configJsonSchema(): object {
  return z.toJSONSchema(Config, { io: 'input', unrepresentable: 'any' });
}

export async function main(argv: string[]): Promise<number> {
  const [sub, file] = argv;
  if (sub === undefined || sub === '-h' || sub === '--help') {
    process.stdout.write(`${CONFIG_HELP}\n`);
    return sub === undefined ? 1 : 0;
  }
  if (sub === 'schema') {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return 0;
  }
  if (sub === 'check' && file !== undefined) {
    try {
      const cfg = loadConfigFile(file);
      process.stdout.write(`${file}: valid (${cfg.listeners.length} listener(s), ${cfg.clusters.length} cluster(s))\n`);
      return 0;
    } catch (err) {
      process.stderr.write(`${err instanceof ConfigError ? err.message : String(err)}\n`);
      return 1;
    }
  }
  process.stderr.write(`skein config: expected 'check FILE' or 'schema'\n\n${CONFIG_HELP}\n`);
  return 1;
}
