// `skein redirect`'s rules, without iptables: what install writes (test/e2e/transparent-capture.test.ts applies
// them in network namespaces), what remove deletes, and the command line.
import { describe, expect, it } from 'vitest';
import { parseRedirectArgs } from '../../proxy/redirect-cli.ts';
import { installRules, type RedirectOptions, removalPlan } from '../../proxy/redirect-rules.ts';

const options: RedirectOptions = {
  proxyUid: 1337,
  proxyGid: undefined,
  outboundPort: 15001,
  inboundPort: 15006,
  excludePorts: [5432],
  excludeInboundPorts: [15000],
  excludeCidrs: ['169.254.169.254/32', 'fd00::/8'],
};

describe('skein redirect rules', () => {
  it('exempts the proxy uid and loopback before any redirect, then the excluded CIDRs and ports', () => {
    const rules = installRules(options, 4).split('\n');
    const output = rules.filter((l) => l.startsWith('-A SKEIN_OUTPUT'));
    expect(output).toEqual([
      '-A SKEIN_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A SKEIN_OUTPUT -o lo -j RETURN',
      '-A SKEIN_OUTPUT -d 169.254.169.254/32 -j RETURN',
      '-A SKEIN_OUTPUT -p tcp --dport 5432 -j RETURN',
      '-A SKEIN_OUTPUT -j SKEIN_REDIRECT',
    ]);
    expect(rules).toContain('-A SKEIN_REDIRECT -p tcp -j REDIRECT --to-ports 15001');
    expect(rules.filter((l) => l.startsWith('-A SKEIN_INBOUND'))).toEqual([
      '-A SKEIN_INBOUND -p tcp --dport 15000 -j RETURN',
      '-A SKEIN_INBOUND -p tcp -j SKEIN_IN_REDIRECT',
    ]);
    expect(rules).toContain('-A SKEIN_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006');
    expect(rules.filter((l) => / (PREROUTING|OUTPUT) /.test(l))).toEqual([
      '-A PREROUTING -p tcp -j SKEIN_INBOUND',
      '-A OUTPUT -p tcp -j SKEIN_OUTPUT',
    ]);
    expect(rules[0]).toBe('*nat');
    expect(rules.at(-2)).toBe('COMMIT');
  });

  it('writes each family only its own CIDRs, and the gid exemption when asked', () => {
    const v6 = installRules({ ...options, proxyGid: 1337 }, 6);
    expect(v6).toContain('-A SKEIN_OUTPUT -d fd00::/8 -j RETURN');
    expect(v6).not.toContain('169.254.169.254');
    expect(v6).toContain('-A SKEIN_OUTPUT -m owner --gid-owner 1337 -j RETURN');
  });

  it('removes every jump to its chains from chains that are not its own, and only its chains', () => {
    const listing = [
      '-P PREROUTING ACCEPT',
      '-P OUTPUT ACCEPT',
      '-N KUBE-SERVICES',
      '-N SKEIN_INBOUND',
      '-N SKEIN_OUTPUT',
      '-A PREROUTING -p tcp -j SKEIN_INBOUND',
      '-A OUTPUT -p tcp -m tcp --dport 9 -j RETURN',
      '-A OUTPUT -p tcp -j SKEIN_OUTPUT',
      '-A OUTPUT -j KUBE-SERVICES',
      '-A SKEIN_OUTPUT -j SKEIN_REDIRECT',
    ].join('\n');
    expect(removalPlan(listing)).toEqual({
      deletes: [
        ['-D', 'PREROUTING', '-p', 'tcp', '-j', 'SKEIN_INBOUND'],
        ['-D', 'OUTPUT', '-p', 'tcp', '-j', 'SKEIN_OUTPUT'],
      ],
      chains: ['SKEIN_INBOUND', 'SKEIN_OUTPUT'],
    });
    expect(removalPlan('-P OUTPUT ACCEPT\n')).toEqual({ deletes: [], chains: [] });
  });

  it("takes the init container's exact command line, and says what is wrong with a bad one", () => {
    const args = parseRedirectArgs([
      'install',
      '--proxy-uid',
      '1337',
      '--outbound-port',
      '15001',
      '--inbound-port',
      '15006',
    ]);
    expect(args).toMatchObject({
      command: 'install',
      ipv6: false,
      options: {
        proxyUid: 1337,
        outboundPort: 15001,
        inboundPort: 15006,
        excludeInboundPorts: [15000],
        excludePorts: [],
      },
    });
    expect(() => parseRedirectArgs(['install'])).toThrow('install needs --proxy-uid UID');
    expect(() => parseRedirectArgs(['install', '--proxy-uid', 'x'])).toThrow('--proxy-uid: "x" is not an id');
    expect(() => parseRedirectArgs(['install', '--proxy-uid', '1', '--exclude-cidrs', '10.0.0.0/33'])).toThrow(
      '--exclude-cidrs: "10.0.0.0/33" is not a CIDR',
    );
    expect(() => parseRedirectArgs(['flush'])).toThrow('expected install or remove');
    expect(parseRedirectArgs(['remove'])).toMatchObject({ command: 'remove' });
  });
});
