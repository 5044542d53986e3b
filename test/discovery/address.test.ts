import { describe, expect, it } from 'vitest';
import { formatHostPort, parseHostPort } from '../../src/discovery/address.ts';

describe('parseHostPort', () => {
  it('splits host:port, hostnames and bracketed IPv6', () => {
    expect(parseHostPort('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseHostPort('api.internal:443')).toEqual({ host: 'api.internal', port: 443 });
    expect(parseHostPort('[::1]:9000')).toEqual({ host: '::1', port: 9000 });
    expect(parseHostPort('[fd00::1:2]:0')).toEqual({ host: 'fd00::1:2', port: 0 });
  });

  it.each([
    ['10.0.0.1', /missing :port/],
    ['10.0.0.1:', /empty port/],
    [':80', /empty host/],
    ['host:http', /bad port 'http'/],
    ['host:65536', /port must be 0\.\.65535/],
    ['::1:80', /IPv6 addresses need brackets/],
    ['[::1]80', /missing :port after \]/],
    ['[::1:80', /missing \]/],
    ['[not-v6]:80', /'not-v6' is not an IPv6 address/],
    ['bad_host:80', /bad host 'bad_host'/],
  ])('rejects %s with a reason', (address, reason) => {
    expect(() => parseHostPort(address)).toThrow(reason);
    expect(() => parseHostPort(address)).toThrow(`invalid address '${address}'`);
  });

  it('formatHostPort is its inverse', () => {
    for (const address of ['127.0.0.1:80', '[::1]:8080', 'a.b:1']) {
      const { host, port } = parseHostPort(address);
      expect(formatHostPort(host, port)).toBe(address);
    }
  });
});
