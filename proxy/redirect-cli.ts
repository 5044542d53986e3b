// `skein redirect install|remove`: transparent capture's traffic redirect (redirect-rules.ts), run in the pod's
// network namespace by the init container (`skein redirect install --proxy-uid 1337 --outbound-port 15001
// --inbound-port 15006`, with NET_ADMIN and NET_RAW) or on a host for tests. install replaces any earlier
// install of ours, atomically; remove takes out exactly our jumps and chains and nothing else.
import { spawnSync } from 'node:child_process';
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import { parseIntegerFlag } from './cli-number.ts';
import { type IpFamily, installRules, type RedirectOptions, removalPlan } from './redirect-rules.ts';

export const REDIRECT_HELP = `Usage: skein redirect install --proxy-uid UID [options]
       skein redirect remove [--ipv6]

Send the pod's TCP through its Skein proxy with iptables nat rules (chains SKEIN_INBOUND, SKEIN_IN_REDIRECT,
SKEIN_OUTPUT, SKEIN_REDIRECT): outbound connections go to --outbound-port, where a listener with
\`originalDst: true\` routes them by the address the app dialed; inbound connections go to --inbound-port. The
proxy's own connections (its uid) and loopback are left alone, so it never loops. Needs root or NET_ADMIN (and
NET_RAW) in the network namespace, and iptables (the nft or legacy backend).

Commands:
  install                  Add the rules (an earlier install of ours is replaced; one atomic iptables-restore).
  remove                   Delete our chains and the jumps to them; nothing else. Nothing installed: exit 0.

Options:
  --proxy-uid UID          The uid the proxy runs as (required by install; Istio's is 1337).
  --proxy-gid GID          Also leave connections of this gid alone.
  --outbound-port PORT     The outbound capture listener (default 15001).
  --inbound-port PORT      The inbound capture listener (default 15006).
  --exclude-ports LIST     Outbound destination ports not redirected, comma-separated.
  --exclude-inbound-ports LIST
                           Inbound ports not redirected (default 15000: the admin listener, for probes and
                           scrapes); "" for none.
  --exclude-cidrs LIST     Outbound destination CIDRs not redirected, comma-separated (IPv4 and IPv6 mixed).
  --ipv6                   Also ip6tables (install and remove).
  --dry-run                Print the iptables-restore input instead of applying it.
  -h, --help               Show this help.`;

export const REDIRECT_OPTIONS = {
  'proxy-uid': { type: 'string' },
  'proxy-gid': { type: 'string' },
  'outbound-port': { type: 'string', default: '15001' },
  'inbound-port': { type: 'string', default: '15006' },
  'exclude-ports': { type: 'string', default: '' },
  'exclude-inbound-ports': { type: 'string', default: '15000' },
  'exclude-cidrs': { type: 'string', default: '' },
  ipv6: { type: 'boolean', default: false },
  'dry-run': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsOptionsConfig;

const CIDR4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(\/(\d|[12]\d|3[0-2]))?$/;
const CIDR6 = /^[0-9a-fA-F:.]+(\/(\d|[1-9]\d|1[01]\d|12[0-8]))?$/;

function ports(text: string, flag: string): number[] {
  if (text.trim() === '') return [];
  return text.split(',').map((p) => parseIntegerFlag(p.trim(), { flag, what: 'a port', min: 1, max: 65535 }));
}

function cidrs(text: string): string[] {
  if (text.trim() === '') return [];
  return text.split(',').map((c) => {
    const cidr = c.trim();
    const v4 = CIDR4.exec(cidr);
    if (v4 !== null && v4.slice(1, 5).every((o) => Number(o) <= 255)) return cidr;
    if (v4 === null && cidr.includes(':') && CIDR6.test(cidr)) return cidr;
    throw new Error(`--exclude-cidrs: ${JSON.stringify(cidr)} is not a CIDR (e.g. 10.0.0.0/8 or fd00::/8)`);
  });
}

export function parseRedirectArgs(
  argv: string[],
): 'help' | { command: 'install' | 'remove'; options: RedirectOptions; ipv6: boolean; dryRun: boolean } {
  const { values, positionals } = parseArgs({ args: argv, options: REDIRECT_OPTIONS, allowPositionals: true });
  if (values.help) return 'help';
  const [command, ...extra] = positionals;
  if ((command !== 'install' && command !== 'remove') || extra.length > 0)
    throw new Error(`expected install or remove, got ${JSON.stringify(positionals.join(' '))}`);
  if (command === 'install' && values['proxy-uid'] === undefined) throw new Error('install needs --proxy-uid UID');
  const id = (flag: string, v: string) => parseIntegerFlag(v, { flag, what: 'an id', min: 0, max: 2 ** 32 - 2 });
  const port = (flag: string, v: string) => parseIntegerFlag(v, { flag, what: 'a port', min: 1, max: 65535 });
  const options: RedirectOptions = {
    proxyUid: values['proxy-uid'] === undefined ? 0 : id('--proxy-uid', values['proxy-uid']),
    proxyGid: values['proxy-gid'] === undefined ? undefined : id('--proxy-gid', values['proxy-gid']),
    outboundPort: port('--outbound-port', values['outbound-port']),
    inboundPort: port('--inbound-port', values['inbound-port']),
    excludePorts: ports(values['exclude-ports'], '--exclude-ports'),
    excludeInboundPorts: ports(values['exclude-inbound-ports'], '--exclude-inbound-ports'),
    excludeCidrs: cidrs(values['exclude-cidrs']),
  };
  if (command === 'install' && options.outboundPort === options.inboundPort)
    throw new Error('--outbound-port and --inbound-port must differ');
  return { command, options, ipv6: values.ipv6, dryRun: values['dry-run'] };
}

function run(cmd: string, args: string[], input?: string): { ok: boolean; out: string; err: string } {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (r.error !== undefined) return { ok: false, out: '', err: `${cmd}: ${r.error.message}` };
  return { ok: r.status === 0, out: r.stdout, err: r.stderr.trim() };
}

const TOOLS: Record<IpFamily, { iptables: string; restore: string }> = {
  4: { iptables: 'iptables', restore: 'iptables-restore' },
  6: { iptables: 'ip6tables', restore: 'ip6tables-restore' },
};

/** Deletes our jumps and chains; returns what it removed, or throws with iptables' message. */
function remove(family: IpFamily): string[] {
  const { iptables } = TOOLS[family];
  const listing = run(iptables, ['-w', '-t', 'nat', '-S']);
  if (!listing.ok) throw new Error(`${iptables} -t nat -S failed: ${listing.err}`);
  const plan = removalPlan(listing.out);
  const done: string[] = [];
  for (const args of plan.deletes) {
    const r = run(iptables, ['-w', '-t', 'nat', ...args]);
    if (!r.ok) throw new Error(`${iptables} -t nat ${args.join(' ')} failed: ${r.err}`);
    done.push(args.slice(1).join(' '));
  }
  // Flush all before deleting any: our chains jump to each other.
  for (const chain of plan.chains) {
    const r = run(iptables, ['-w', '-t', 'nat', '-F', chain]);
    if (!r.ok) throw new Error(`${iptables} -t nat -F ${chain} failed: ${r.err}`);
  }
  for (const chain of plan.chains) {
    const r = run(iptables, ['-w', '-t', 'nat', '-X', chain]);
    if (!r.ok) throw new Error(`${iptables} -t nat -X ${chain} failed: ${r.err}`);
    done.push(`chain ${chain}`);
  }
  return done;
}

function install(options: RedirectOptions, family: IpFamily): void {
  remove(family); // a second install (a restarted init container) replaces the first, never doubles it
  const { restore } = TOOLS[family];
  const r = run(restore, ['-w', '--noflush'], installRules(options, family));
  if (!r.ok) throw new Error(`${restore} --noflush failed: ${r.err}`);
}

export async function main(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parseRedirectArgs>;
  try {
    args = parseRedirectArgs(argv);
  } catch (err) {
    process.stderr.write(`skein redirect: ${(err as Error).message}\n\nRun \`skein redirect --help\` for usage.\n`);
    return 1;
  }
  if (args === 'help') {
    process.stdout.write(`${REDIRECT_HELP}\n`);
    return 0;
  }
  const families: IpFamily[] = args.ipv6 ? [4, 6] : [4];
  if (args.dryRun) {
    if (args.command === 'install')
      for (const f of families)
        process.stdout.write(`# ${TOOLS[f].restore} --noflush\n${installRules(args.options, f)}`);
    else process.stdout.write(`# remove: every jump to ${'SKEIN_*'} in the nat table, then the SKEIN_* chains\n`);
    return 0;
  }
  try {
    for (const f of families) {
      if (args.command === 'install') {
        install(args.options, f);
        const o = args.options;
        process.stdout.write(
          `skein redirect: IPv${f} TCP redirected: outbound → ${o.outboundPort}, inbound → ${o.inboundPort} (uid ${o.proxyUid} exempt)\n`,
        );
      } else {
        const removed = remove(f);
        process.stdout.write(
          removed.length === 0
            ? `skein redirect: IPv${f}: nothing of ours installed\n`
            : `skein redirect: IPv${f}: removed ${removed.join('; ')}\n`,
        );
      }
    }
  } catch (err) {
    process.stderr.write(`skein redirect: ${(err as Error).message}\n`);
    return 1;
  }
  return 0;
}
