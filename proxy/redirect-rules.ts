// What `skein redirect install` writes into the pod's network namespace (the init container runs it as root with
// NET_ADMIN and NET_RAW): iptables nat rules that send the app's outbound TCP to the outbound listener and the
// mesh's inbound TCP to the inbound listener, in chains of our own (Istio's ISTIO_OUTPUT/ISTIO_INBOUND layout), so
// `remove` can take out exactly what `install` put in. Pure: builds the iptables-restore input and reads
// iptables -S output; redirect-cli.ts runs the commands.

export type IpFamily = 4 | 6;

export interface RedirectOptions {
  /** The proxy's uid: its own outbound connections (to upstreams, to the local app) must not loop back to it. */
  readonly proxyUid: number;
  /** Also exempt connections of this gid (a proxy running with another uid but this group). */
  readonly proxyGid: number | undefined;
  readonly outboundPort: number;
  readonly inboundPort: number;
  /** Outbound destination ports left alone (e.g. a database the app reaches directly). */
  readonly excludePorts: readonly number[];
  /** Inbound destination ports left alone: the proxy's admin port, so kubelet probes /ready and Prometheus scrapes
   *  reach it directly (default 15000). */
  readonly excludeInboundPorts: readonly number[];
  /** Outbound destinations left alone (CIDRs of the family the rules are for). */
  readonly excludeCidrs: readonly string[];
}

/** Our chains. PREROUTING and OUTPUT jump to the first two; nothing else of the namespace's tables is touched. */
export const REDIRECT_CHAINS = ['SKEIN_INBOUND', 'SKEIN_IN_REDIRECT', 'SKEIN_OUTPUT', 'SKEIN_REDIRECT'] as const;

/** The jumps `install` adds to the built-in chains (iptables -S form); `remove` deletes every jump to our chains. */
export const REDIRECT_JUMPS = ['-A PREROUTING -p tcp -j SKEIN_INBOUND', '-A OUTPUT -p tcp -j SKEIN_OUTPUT'] as const;

export function isCidrOf(family: IpFamily, cidr: string): boolean {
  return family === 6 ? cidr.includes(':') : !cidr.includes(':');
}

/**
 * The nat table for `iptables-restore --noflush` (one atomic commit: a pod never sees half the rules).
 *
 * Inbound (PREROUTING: packets arriving from other hosts): every TCP connection except to the excluded ports goes
 * to the inbound listener. Outbound (OUTPUT: connections this namespace opens), in order: the proxy's own (uid,
 * and gid when given) leave as they are, or they would come back to it; so does anything over loopback (the app
 * calling itself or a local sidecar, the proxy reaching the local app: a destination on this host is not the
 * mesh's); then the excluded CIDRs and ports; the rest goes to the outbound listener. The order is what keeps
 * the proxy out of a loop: its own connections return before any redirect.
 */
export function installRules(o: RedirectOptions, family: IpFamily): string {
  const lines = ['*nat', ...REDIRECT_CHAINS.map((c) => `:${c} - [0:0]`)];
  lines.push(`-A SKEIN_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${o.inboundPort}`);
  lines.push(`-A SKEIN_REDIRECT -p tcp -j REDIRECT --to-ports ${o.outboundPort}`);
  for (const port of o.excludeInboundPorts) lines.push(`-A SKEIN_INBOUND -p tcp --dport ${port} -j RETURN`);
  lines.push('-A SKEIN_INBOUND -p tcp -j SKEIN_IN_REDIRECT');
  lines.push(`-A SKEIN_OUTPUT -m owner --uid-owner ${o.proxyUid} -j RETURN`);
  if (o.proxyGid !== undefined) lines.push(`-A SKEIN_OUTPUT -m owner --gid-owner ${o.proxyGid} -j RETURN`);
  lines.push('-A SKEIN_OUTPUT -o lo -j RETURN');
  for (const cidr of o.excludeCidrs.filter((c) => isCidrOf(family, c)))
    lines.push(`-A SKEIN_OUTPUT -d ${cidr} -j RETURN`);
  for (const port of o.excludePorts) lines.push(`-A SKEIN_OUTPUT -p tcp --dport ${port} -j RETURN`);
  lines.push('-A SKEIN_OUTPUT -j SKEIN_REDIRECT');
  lines.push(...REDIRECT_JUMPS);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** From `iptables -t nat -S` (all chains): the deletions that take out every jump to one of our chains from a
 *  chain that is not ours (as argument lists for iptables -t nat), then which of our chains exist. */
export function removalPlan(listing: string): { deletes: string[][]; chains: string[] } {
  const ours = new Set<string>(REDIRECT_CHAINS);
  const deletes: string[][] = [];
  const chains: string[] = [];
  for (const line of listing.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words[0] === '-N' && ours.has(words[1])) chains.push(words[1]);
    if (words[0] !== '-A' || ours.has(words[1])) continue;
    const j = words.indexOf('-j');
    if (j >= 0 && ours.has(words[j + 1])) deletes.push(['-D', ...words.slice(1)]);
  }
  return { deletes, chains };
}
