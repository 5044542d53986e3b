import { describe, expect, it } from 'vitest';
import { type Environment, preflight } from '../../probes/preflight.ts';
import { SCRIPT_NAMES } from '../../probes/program.ts';

function fakeEnvironment(overrides: Partial<Environment> & { missing?: string[] } = {}): Environment {
  const missing = new Set(overrides.missing ?? []);
  return {
    isRoot: () => true,
    findBinary: (name) => `/usr/bin/${name}`,
    tracefsEventsDir: () => '/sys/kernel/tracing/events',
    hasTracepoint: (_dir, tp) => !missing.has(tp),
    hasKernelBtf: () => true,
    scriptNeeds: (script) => ({
      tracepoints: {
        'tcp-lifecycle': ['sock/inet_sock_set_state', 'syscalls/sys_exit_accept4', 'syscalls/sys_exit_accept'],
        'socket-io': ['sock/sock_send_length', 'sock/sock_recv_length'],
        oncpu: ['sched/sched_switch'],
        'tcp-retransmits': ['tcp/tcp_retransmit_skb'],
        'tcp-rtt': ['tcp/tcp_probe'],
        'tcp-existing': ['sock/sock_send_length', 'sock/sock_recv_length'],
      }[script],
      kernelTypes: script === 'tcp-lifecycle',
    }),
    ...overrides,
  };
}

describe('probe preflight', () => {
  it('passes with every script when everything is present', () => {
    const result = preflight(SCRIPT_NAMES, fakeEnvironment());
    expect(result.problems).toEqual([]);
    expect(result.scripts).toEqual([...SCRIPT_NAMES]);
  });

  it('says what is missing and how to fix it: root, bpftrace, tracefs', () => {
    const result = preflight(
      SCRIPT_NAMES,
      fakeEnvironment({
        isRoot: () => false,
        findBinary: (name) => (name === 'bpftrace' ? undefined : `/usr/bin/${name}`),
        tracefsEventsDir: () => undefined,
      }),
    );
    expect(result.problems.join('\n')).toMatch(/need root/);
    expect(result.problems.join('\n')).toMatch(/apt-get install -y bpftrace/);
    expect(result.problems.join('\n')).toMatch(/mount -t tracefs tracefs \/sys\/kernel\/tracing/);
  });

  it('names missing probe scripts (an install that left probes/scripts/ out) instead of throwing', () => {
    const env = fakeEnvironment({ scriptNeeds: () => undefined });
    const result = preflight(SCRIPT_NAMES, env);
    expect(result.problems).toEqual([expect.stringMatching(/probe scripts are missing \(.*tcp-lifecycle\.bt.*\)/)]);
    expect(result.problems[0]).toMatch(/oncpu\.bt/);
  });

  it('needs the kernel BTF only when a chosen script reads kernel structures', () => {
    const env = fakeEnvironment({ hasKernelBtf: () => false });
    expect(preflight(['tcp-lifecycle'], env).problems).toEqual([expect.stringMatching(/tcp-lifecycle: .*no BTF/)]);
    expect(preflight(['oncpu', 'socket-io'], env).problems).toEqual([]);
  });

  it('fails on a missing required tracepoint, and drops an optional script with a warning', () => {
    const result = preflight(SCRIPT_NAMES, fakeEnvironment({ missing: ['sock/sock_send_length', 'tcp/tcp_probe'] }));
    expect(result.problems).toEqual([
      expect.stringMatching(/socket-io: this kernel lacks tracepoint sock:sock_send_length/),
    ]);
    expect(result.warnings).toEqual([
      expect.stringMatching(/tcp-rtt: this kernel lacks tracepoint tcp:tcp_probe/),
      expect.stringMatching(/tcp-existing: this kernel lacks tracepoint sock:sock_send_length/),
    ]);
    expect(result.scripts).not.toContain('tcp-rtt');
    expect(result.scripts).not.toContain('tcp-existing');
  });
});
