// Turns bpftrace's `-f json` output (one JSON object per line: maps and histograms printed at exit) into typed
// per-process figures. Pure: the runner feeds it the captured stdout.

export interface HistogramBucket {
  /** Inclusive lower bound; absent for the open-ended bucket below zero. */
  min?: number;
  /** Inclusive upper bound; absent for the open-ended top bucket. */
  max?: number;
  count: number;
}

export interface ProcessFigures {
  pid: number;
  tcp: {
    connects: number;
    accepts: number;
    closes: number;
    connectFailures: number;
    /** Connections already open when the probe attached that the process sent or received on (tcp-existing). */
    openedBefore: number;
    /** How long each connection that closed during the run had lived, in µs (log2 buckets). */
    durationUs: HistogramBucket[];
    retransmits: number;
    srttSamples: number;
    srttUsAvg: number | null;
    srttUsMax: number | null;
  };
  io: {
    sendCalls: number;
    sendBytes: number;
    sendErrors: number;
    recvCalls: number;
    recvBytes: number;
    recvErrors: number;
  };
  cpu: { onCpuNs: number };
}

export interface ProbeReport {
  processes: ProcessFigures[];
  /** Events bpftrace dropped (perf buffer full); non-zero means the figures undercount. */
  lostEvents: number;
}

type Scalars = Map<string, Map<number, number>>;

export function emptyFigures(pid: number): ProcessFigures {
  return {
    pid,
    tcp: {
      connects: 0,
      accepts: 0,
      closes: 0,
      connectFailures: 0,
      openedBefore: 0,
      durationUs: [],
      retransmits: 0,
      srttSamples: 0,
      srttUsAvg: null,
      srttUsMax: null,
    },
    io: { sendCalls: 0, sendBytes: 0, sendErrors: 0, recvCalls: 0, recvBytes: 0, recvErrors: 0 },
    cpu: { onCpuNs: 0 },
  };
}

/** Parse bpftrace's JSON lines; every PID in `pids` gets an entry, zeroes where nothing was seen. */
export function parseBpftraceJson(output: string, pids: readonly number[]): ProbeReport {
  const scalars: Scalars = new Map();
  const histograms = new Map<string, Map<number, HistogramBucket[]>>();
  let lostEvents = 0;
  for (const line of output.split('\n')) {
    const text = line.trim();
    if (!text.startsWith('{')) continue;
    const event = JSON.parse(text) as { type?: string; data?: unknown };
    if (event.type === 'lost_events') {
      lostEvents += Number((event.data as { events?: number } | undefined)?.events ?? 0);
    } else if (event.type === 'map' || event.type === 'hist') {
      for (const [name, perKey] of Object.entries(event.data as Record<string, unknown>)) {
        if (typeof perKey !== 'object' || perKey === null) continue;
        for (const [key, value] of Object.entries(perKey)) {
          const pid = Number(key);
          if (!Number.isInteger(pid)) continue;
          if (event.type === 'hist') {
            const byPid = histograms.get(name) ?? new Map<number, HistogramBucket[]>();
            byPid.set(pid, value as HistogramBucket[]);
            histograms.set(name, byPid);
          } else {
            const byPid = scalars.get(name) ?? new Map<number, number>();
            byPid.set(pid, Number(value));
            scalars.set(name, byPid);
          }
        }
      }
    }
  }
  const num = (name: string, pid: number): number => scalars.get(name)?.get(pid) ?? 0;
  const processes = [...new Set(pids)].map((pid): ProcessFigures => {
    const figures = emptyFigures(pid);
    const samples = num('@tcp_srtt_samples', pid);
    figures.tcp = {
      connects: num('@tcp_connects', pid),
      accepts: num('@tcp_accepts', pid),
      closes: num('@tcp_closes', pid),
      connectFailures: num('@tcp_connect_failures', pid),
      openedBefore: num('@tcp_opened_before', pid),
      durationUs: histograms.get('@tcp_duration_us')?.get(pid) ?? [],
      retransmits: num('@tcp_retransmits', pid),
      srttSamples: samples,
      srttUsAvg: samples > 0 ? num('@tcp_srtt_us_sum', pid) / samples : null,
      srttUsMax: samples > 0 ? num('@tcp_srtt_us_max', pid) : null,
    };
    figures.io = {
      sendCalls: num('@sock_send_calls', pid),
      sendBytes: num('@sock_send_bytes', pid),
      sendErrors: num('@sock_send_errors', pid),
      recvCalls: num('@sock_recv_calls', pid),
      recvBytes: num('@sock_recv_bytes', pid),
      recvErrors: num('@sock_recv_errors', pid),
    };
    figures.cpu = { onCpuNs: num('@cpu_on_ns', pid) };
    return figures;
  });
  return { processes, lostEvents };
}
