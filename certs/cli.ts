// `skein ca`: the operators' commands for the mesh's CA directory (init, issue, inspect, revoke, crl,
// rotate-root). Each parses its options, calls certs/ca.ts, crl.ts, rotate.ts or inspect.ts, and reports in one line
// per file written; bad input is one line naming the option, exit 1.
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import {
  checkDnsName,
  DEFAULT_LEAF_VALID_HOURS,
  DEFAULT_TRUST_DOMAIN,
  issueForId,
  issueFromCsr,
  initCa,
} from './ca.ts';
import { createCrl, DEFAULT_CRL_VALID_HOURS, REVOCATION_REASONS, revoke } from './crl.ts';
import { inspectCertificate } from './inspect.ts';
import { KEY_TYPES, type KeyType } from './keys.ts';
import { rotateRoot, trustedRootPems } from './rotate.ts';
import { checkTrustDomain } from './spiffe.ts';
import { caPaths, writeFileAtomic } from './store.ts';

export const CA_HELP = `Usage: skein ca <command> [options]

Run the mesh's CA: a directory holding a root (root.crt, root.key), the intermediate that signs workload
certificates (intermediate.crt, intermediate.key), the trust bundle peers verify with (bundle.pem) and the
revocation records (revoked.json). Keys are written mode 0600.

Commands:
  init --dir D [--trust-domain TD] [--key ec|rsa2048|rsa3072]
                           Create a CA in D (default trust domain ${DEFAULT_TRUST_DOMAIN}, key ec = ECDSA P-256).
                           Refuses a directory that already holds one.
  issue --dir D --id SPIFFE-ID [--dns NAME]... [--valid-hours H] --out PREFIX
                           Issue a certificate for spiffe://TD/ns/NAMESPACE/sa/SERVICE-ACCOUNT with a fresh
                           key: PREFIX.crt (leaf, then intermediate) and PREFIX.key (mode 0600). Valid for H
                           hours (default ${DEFAULT_LEAF_VALID_HOURS}); serverAuth and clientAuth.
  issue --dir D --csr FILE [--valid-hours H] --out PREFIX
                           Sign a PKCS#10 CSR (PEM) into PREFIX.crt. Its signature must verify and its URI SAN
                           must be a SPIFFE id of this trust domain; its DNS SANs are kept.
  inspect FILE [--dir D]   Print a certificate's subject, SANs, validity, issuer and serial; with --dir, whether
                           it chains to D/bundle.pem (exit 1 when it does not).
  revoke --dir D --cert FILE [--reason REASON]
                           Record a certificate this CA issued as revoked (default reason unspecified; e.g.
                           keyCompromise, superseded, cessationOfOperation).
  crl --dir D --out FILE [--valid-hours H]
                           Write the signed CRLs (one per intermediate still in use; nextUpdate H hours
                           ahead, default ${DEFAULT_CRL_VALID_HOURS}); every run takes the next CRL number.
  rotate-root --dir D      Make a new root and intermediate. The old root stays in D/bundle.pem until the last
                           certificate its intermediate issued has expired; hand out the new bundle.pem before
                           workloads renew.

Options:
  -h, --help               Show this help.`;

const OPTIONS = {
  dir: { type: 'string' },
  'trust-domain': { type: 'string' },
  key: { type: 'string' },
  id: { type: 'string' },
  dns: { type: 'string', multiple: true },
  'valid-hours': { type: 'string' },
  out: { type: 'string' },
  csr: { type: 'string' },
  cert: { type: 'string' },
  reason: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsOptionsConfig;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>['values'];

/** An error about one option: printed as "skein ca CMD: --option: reason". */
class OptionError extends Error {}

const ALLOWED: Record<string, readonly string[]> = {
  init: ['dir', 'trust-domain', 'key'],
  issue: ['dir', 'id', 'dns', 'valid-hours', 'out', 'csr'],
  inspect: ['dir'],
  revoke: ['dir', 'cert', 'reason'],
  crl: ['dir', 'out', 'valid-hours'],
  'rotate-root': ['dir'],
};

function required(values: Values, name: 'dir' | 'out' | 'cert'): string {
  const value = values[name];
  if (value === undefined || value === '') throw new OptionError(`--${name} is required`);
  return value;
}

function hours(values: Values): number | undefined {
  const raw = values['valid-hours'];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!(n > 0) || !Number.isFinite(n)) throw new OptionError(`--valid-hours must be a number > 0, got '${raw}'`);
  return n;
}

function readInput(option: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new OptionError(`${option}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** Runs fn and prefixes a failure with the option it concerns. */
async function about<T>(option: string, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof OptionError) throw err;
    throw new OptionError(`${option}: ${(err as Error).message}`);
  }
}

async function run(
  command: string,
  values: Values,
  positionals: string[],
  out: (line: string) => void,
): Promise<number> {
  switch (command) {
    case 'init': {
      const dir = required(values, 'dir');
      const keyType = (values.key ?? 'ec') as KeyType;
      if (!KEY_TYPES.includes(keyType))
        throw new OptionError(`--key must be ${KEY_TYPES.join(', ')}, got '${values.key}'`);
      const trustDomain = values['trust-domain'] ?? DEFAULT_TRUST_DOMAIN;
      await about('--trust-domain', () => checkTrustDomain(trustDomain));
      const meta = await about('--dir', () => initCa(dir, { trustDomain, keyType }));
      out(
        `initialized CA for trust domain ${meta.trustDomain} (${meta.keyType}): root ${caPaths(dir).rootCert}, bundle ${caPaths(dir).bundle}`,
      );
      return 0;
    }
    case 'issue': {
      const dir = required(values, 'dir');
      const prefix = required(values, 'out');
      const validHours = hours(values);
      if ((values.id === undefined) === (values.csr === undefined))
        throw new OptionError('give exactly one of --id and --csr');
      for (const name of values.dns ?? []) await about('--dns', () => checkDnsName(name));
      const issued =
        values.csr !== undefined
          ? await about('--csr', async () =>
              issueFromCsr(dir, readInput('--csr', values.csr ?? ''), { validHours, dnsNames: values.dns }),
            )
          : await about('--id', () => issueForId(dir, values.id ?? '', { validHours, dnsNames: values.dns }));
      writeFileAtomic(`${prefix}.crt`, issued.chainPem, 0o644);
      if (issued.keyPem !== undefined) writeFileAtomic(`${prefix}.key`, issued.keyPem, 0o600);
      const files = issued.keyPem !== undefined ? `${prefix}.crt and ${prefix}.key` : `${prefix}.crt`;
      out(
        `issued ${issued.spiffeId} (serial ${issued.serial}, valid until ${issued.notAfter.toISOString()}): ${files}`,
      );
      return 0;
    }
    case 'inspect': {
      const file = positionals[0];
      if (file === undefined) throw new OptionError('FILE is required (skein ca inspect FILE [--dir D])');
      const result = await about(file, () => inspectCertificate(readInput('FILE', file), values.dir));
      for (const line of result.lines) out(line);
      return result.chains === false ? 1 : 0;
    }
    case 'revoke': {
      const dir = required(values, 'dir');
      const file = required(values, 'cert');
      const reason = values.reason ?? 'unspecified';
      if (!REVOCATION_REASONS.includes(reason))
        throw new OptionError(`--reason must be one of ${REVOCATION_REASONS.join(', ')}, got '${reason}'`);
      const entry = await about('--cert', () => revoke(dir, readInput('--cert', file), reason));
      out(
        `revoked serial ${entry.serial} (${entry.reason}) at ${entry.revokedAt}; a skein control serving ${dir} pushes the new CRL within seconds, else run \`skein ca crl\` to publish it`,
      );
      return 0;
    }
    case 'crl': {
      const dir = required(values, 'dir');
      const file = required(values, 'out');
      const crl = await about('--dir', () => createCrl(dir, hours(values)));
      writeFileAtomic(file, crl.pem, 0o644);
      out(`wrote CRL number ${crl.crlNumber} (${crl.revokedCount} revoked) to ${file}`);
      return 0;
    }
    case 'rotate-root': {
      const dir = required(values, 'dir');
      const meta = await about('--dir', () => rotateRoot(dir));
      out(
        `rotated to root generation ${meta.generation}; ${caPaths(dir).bundle} holds the new root and ${trustedRootPems(dir, meta).length - 1} older one(s) still in use`,
      );
      return 0;
    }
    default:
      throw new OptionError(`unknown command '${command}'`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(`${CA_HELP}\n`);
    return command === undefined ? 1 : 0;
  }
  const prefix = `skein ca ${command}`;
  try {
    if (ALLOWED[command] === undefined)
      throw new OptionError(`unknown command (one of ${Object.keys(ALLOWED).join(', ')}; see skein ca --help)`);
    const { values, positionals } = parseArgs({ args: rest, options: OPTIONS, strict: true, allowPositionals: true });
    if (values.help) {
      process.stdout.write(`${CA_HELP}\n`);
      return 0;
    }
    for (const name of Object.keys(values))
      if (name !== 'help' && !ALLOWED[command].includes(name))
        throw new OptionError(`--${name} is not an option of ${prefix}`);
    if (command !== 'inspect' && positionals.length > 0)
      throw new OptionError(`unexpected argument '${positionals[0]}'`);
    return await run(command, values, positionals, (line) => process.stdout.write(`${line}\n`));
  } catch (err) {
    const message = (err as Error).message.split('\n')[0];
    // parseArgs errors (an unknown option, a missing value) already name the option.
    process.stderr.write(`${prefix}: ${message}\n`);
    return 1;
  }
}
