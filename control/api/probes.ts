// Routes of the eBPF probe API (the seed's /ebpf/probe/start and /ebpf/probe/status, plus each run's record,
// its figures and an early stop).
import { z } from 'zod';
import { type ApiReply, parseWith, type Route } from '../http.ts';
import { PROBE_STATUSES, type ProbeRuns } from '../probe-runs.ts';

const ListQuery = z.strictObject({
  status: z.enum(PROBE_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

export function probeRoutes(runs: ProbeRuns): Route[] {
  return [
    {
      method: 'POST',
      path: '/ebpf/probe/start',
      handle: async (req): Promise<ApiReply> => ({ status: 201, json: await runs.start(req.body) }),
    },
    {
      method: 'GET',
      path: '/ebpf/probe/status',
      handle: () => {
        // 503 when probes cannot run here, in the error shape (code and problems) beside the status fields, so
        // a monitor sees the outage from the status code and a person sees what is missing.
        const status = runs.status();
        if (status.available) return { json: status };
        const error = { code: 'SKEIN_UNAVAILABLE', message: 'eBPF probes cannot run here', problems: status.problems };
        return { status: 503, json: { error, ...status } };
      },
    },
    {
      method: 'GET',
      path: '/ebpf/probe/runs',
      handle: (req) => ({ json: runs.list(parseWith(ListQuery, Object.fromEntries(req.query), 'query')) }),
    },
    { method: 'GET', path: '/ebpf/probe/runs/:id', handle: (req) => ({ json: runs.get(req.params.id) }) },
    { method: 'GET', path: '/ebpf/probe/runs/:id/result', handle: (req) => ({ json: runs.result(req.params.id) }) },
    {
      method: 'DELETE',
      path: '/ebpf/probe/runs/:id',
      handle: async (req) => ({ json: await runs.stop(req.params.id) }),
    },
  ];
}
