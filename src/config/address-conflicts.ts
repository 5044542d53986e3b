// Two sockets of one process cannot bind the same port on the same interface: find that in the config, before
// binding, so `config check` says so instead of the start failing with EADDRINUSE. Port 0 picks a free port
// and never conflicts; a wildcard host (0.0.0.0, ::) takes the port on every interface, so it conflicts with
// any address on that port. Hostnames are compared as written (resolving them would need the network).

/** An address the config binds: where it is (zod path), who owns it (for the message), and the address. */
export interface ConfigAddress {
  readonly path: readonly (string | number)[];
  readonly owner: string;
  readonly address: string;
}

const WILDCARDS = new Set(['0.0.0.0', '[::]', '[::0]', '[0:0:0:0:0:0:0:0]']);

/** One issue per address that clashes with an earlier one, at the later address's path. */
export function addressConflicts(
  addresses: readonly ConfigAddress[],
): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  const seen: { host: string; port: number; a: ConfigAddress }[] = [];
  for (const a of addresses) {
    const colon = a.address.lastIndexOf(':');
    const host = a.address.slice(0, colon).toLowerCase();
    const port = Number(a.address.slice(colon + 1));
    if (port === 0 || !Number.isInteger(port)) continue;
    const clash = seen.find(
      (s) => s.port === port && (s.host === host || WILDCARDS.has(s.host) || WILDCARDS.has(host)),
    );
    if (clash !== undefined)
      out.push({
        path: [...a.path],
        message:
          clash.host === host
            ? `${a.address} is already used by ${clash.a.owner}`
            : `${a.address} conflicts with ${clash.a.address} of ${clash.a.owner} (a wildcard address takes the port on every interface)`,
      });
    seen.push({ host, port, a });
  }
  return out;
}
