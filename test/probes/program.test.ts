import { describe, expect, it } from 'vitest';
import {
  composeProgram,
  loadScript,
  pidPredicate,
  READY_MARKER,
  SCRIPT_NAMES,
  tracepointsOf,
  usesKernelTypes,
  withDependencies,
} from '../../probes/program.ts';

describe('bpftrace program composition', () => {
  it('builds a predicate on the given PIDs, once each, and rejects anything that is not a PID', () => {
    expect(pidPredicate([12, 34, 12])).toBe('(pid == 12 || pid == 34)');
    expect(() => pidPredicate([])).toThrow(/at least one PID/);
    expect(() => pidPredicate([0])).toThrow(/not a PID/);
    expect(() => pidPredicate([1.5])).toThrow(/not a PID/);
  });

  it('adds tcp-lifecycle when a script reads its socket owners, and keeps concatenation order', () => {
    expect(withDependencies(['tcp-rtt'])).toEqual(['tcp-lifecycle', 'tcp-rtt']);
    expect(withDependencies(['oncpu'])).toEqual(['oncpu']);
    expect(withDependencies(['tcp-existing', 'socket-io'])).toEqual(['tcp-lifecycle', 'socket-io', 'tcp-existing']);
  });

  it('replaces every PID_FILTER, has one BEGIN and one END, and clears only the internal maps', () => {
    const program = composeProgram(SCRIPT_NAMES.map(loadScript), [4242]);
    expect(program).not.toContain('PID_FILTER');
    expect(program).toContain('(pid == 4242)');
    expect(program.match(/^BEGIN/gm)).toHaveLength(1);
    expect(program.match(/^END/gm)).toHaveLength(1);
    expect(program).toContain(READY_MARKER);
    const cleared = [...program.matchAll(/clear\((@\w+)\)/g)].map((m) => m[1]);
    expect(cleared.sort()).toEqual(['@_cpu_since', '@_tcp_owner', '@_tcp_since']);
  });

  it('lists the tracepoints each script attaches to', () => {
    expect(tracepointsOf(loadScript('tcp-lifecycle').source)).toEqual([
      'sock/inet_sock_set_state',
      'syscalls/sys_exit_accept4',
      'syscalls/sys_exit_accept',
    ]);
    expect(tracepointsOf('// see tracepoint:x:y, tracepoint:a:b\ntracepoint:c:d, tracepoint:e:f /1/ {}')).toEqual([
      'c/d',
      'e/f',
    ]);
    expect(tracepointsOf(loadScript('socket-io').source)).toEqual(['sock/sock_send_length', 'sock/sock_recv_length']);
    expect(tracepointsOf(loadScript('oncpu').source)).toEqual(['sched/sched_switch']);
  });

  it('knows which scripts read kernel structures (bpftrace then needs BTF)', () => {
    expect(usesKernelTypes(loadScript('tcp-lifecycle').source)).toBe(true);
    expect(usesKernelTypes(loadScript('socket-io').source)).toBe(false);
    expect(usesKernelTypes('// curtask->files in a comment\ntracepoint:a:b {}')).toBe(false);
  });
});
