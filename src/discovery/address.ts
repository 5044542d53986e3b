// "host:port" and "[v6]:port" parsing for the addresses written in config and endpoint files.
// The schema checks the shape at the edge; this splits it for the code that dials, and fails loudly when handed junk.
import { isIPv6 } from 'node:net';

export interface HostAndPort {
  /** A hostname or IP literal; IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
}

// Same host charset as the schema's HostPort, so anything the schema accepts parses here.
const HOSTNAME = /^[A-Za-z0-9.-]+$/;
const PORT = /^\d{1,5}$/;

/** Splits "host:port" or "[v6]:port"; throws an Error naming the address and what is wrong with it. */
export function parseHostPort(address: string): HostAndPort {
  const fail = (reason: string): never => {
    throw new Error(`invalid address '${address}': ${reason} (expected host:port, e.g. 127.0.0.1:8080 or [::1]:8080)`);
  };
  let host: string;
  let portText: string;
  if (address.startsWith('[')) {
    const close = address.indexOf(']');
    if (close < 0) fail('missing ]');
    host = address.slice(1, close);
    if (!isIPv6(host)) fail(`'${host}' is not an IPv6 address`);
    if (address[close + 1] !== ':') fail('missing :port after ]');
    portText = address.slice(close + 2);
  } else {
    const colon = address.lastIndexOf(':');
    if (colon < 0) fail('missing :port');
    host = address.slice(0, colon);
    portText = address.slice(colon + 1);
    if (host.includes(':')) fail('IPv6 addresses need brackets');
    if (!HOSTNAME.test(host)) fail(host === '' ? 'empty host' : `bad host '${host}'`);
  }
  if (!PORT.test(portText)) fail(portText === '' ? 'empty port' : `bad port '${portText}'`);
  const port = Number(portText);
  if (port > 65535) fail('port must be 0..65535');
  return { host, port };
}

/** The inverse of parseHostPort: brackets IPv6 literals so the result parses back. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A config address ("10.96.0.10:80", "[FD00::1]:80") in the form the kernel's original destination is written in
 *  (native/original-dst.c, proxy/original-dst.ts): IPv4 as is, IPv6 lowercase and compressed, in brackets. */
export function originalDstKey(address: string): string {
  if (!address.startsWith('[')) return address;
  const close = address.lastIndexOf(']');
  return `${new URL(`http://${address.slice(0, close + 1)}`).hostname}${address.slice(close + 1)}`;
}
