import { describe, expect, it } from 'vitest';
import { parseBpftraceJson } from '../../probes/report.ts';

const OUTPUT = `{"type": "attached_probes", "data": {"probes": 12}}
{"type": "printf", "data": "skein-probes-ready\\n"}


{"type": "map", "data": {"@cpu_on_ns": {"100": 18670068, "200": 5}}}
{"type": "map", "data": {"@sock_send_bytes": {"100": 3000}}}
{"type": "map", "data": {"@sock_send_calls": {"100": 3}}}
{"type": "map", "data": {"@tcp_connects": {"100": 3}}}
{"type": "map", "data": {"@tcp_closes": {"100": 2}}}
{"type": "map", "data": {"@tcp_opened_before": {"100": 1}}}
{"type": "hist", "data": {"@tcp_duration_us": {"100": [{"min": 512, "max": 1023, "count": 1}, {"min": 1024, "max": 2047, "count": 1}]}}}
{"type": "map", "data": {"@tcp_srtt_samples": {"100": 4}}}
{"type": "map", "data": {"@tcp_srtt_us_max": {"100": 73}}}
{"type": "map", "data": {"@tcp_srtt_us_sum": {"100": 120}}}
{"type": "lost_events", "data": {"events": 7}}
`;

describe('parsing bpftrace JSON output', () => {
  it('turns maps and histograms into figures per PID', () => {
    const report = parseBpftraceJson(OUTPUT, [100]);
    expect(report.lostEvents).toBe(7);
    const [p] = report.processes;
    expect(p.pid).toBe(100);
    expect(p.cpu.onCpuNs).toBe(18670068);
    expect(p.io).toMatchObject({ sendBytes: 3000, sendCalls: 3, recvBytes: 0, recvCalls: 0 });
    expect(p.tcp).toMatchObject({
      connects: 3,
      closes: 2,
      accepts: 0,
      openedBefore: 1,
      srttSamples: 4,
      srttUsAvg: 30,
      srttUsMax: 73,
    });
    expect(p.tcp.durationUs).toEqual([
      { min: 512, max: 1023, count: 1 },
      { min: 1024, max: 2047, count: 1 },
    ]);
  });

  it('reports every requested PID, with zeroes and no RTT where nothing was seen', () => {
    const report = parseBpftraceJson(OUTPUT, [300]);
    expect(report.processes[0]).toMatchObject({ pid: 300, cpu: { onCpuNs: 0 } });
    expect(report.processes[0].tcp.srttUsAvg).toBeNull();
  });
});
