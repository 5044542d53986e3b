// Routes of the bench job API (the seed's /benchmarks/*): start a job, list and read jobs, fetch a finished
// job's report as JSON (or the Markdown and HTML files), cancel with DELETE.
import { z } from 'zod';
import { MESH_TYPES } from '../../bench/run/options.ts';
import { type BenchJobs, JOB_STATUSES } from '../bench-jobs.ts';
import { type ApiReply, parseWith, type Route } from '../http.ts';
import { readFileSync } from 'node:fs';

const ListQuery = z.strictObject({
  status: z.enum(JOB_STATUSES).optional(),
  mesh: z.enum(MESH_TYPES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

export function benchJobRoutes(jobs: BenchJobs): Route[] {
  const file = (id: string, format: 'md' | 'html', contentType: string): ApiReply => ({
    body: readFileSync(jobs.reportFile(id, format)),
    contentType,
  });
  return [
    {
      method: 'POST',
      path: '/benchmarks/start',
      handle: async (req) => ({ status: 202, json: await jobs.start(req.body) }),
    },
    {
      method: 'GET',
      path: '/benchmarks/jobs',
      handle: (req) => ({
        // Without the log lines: a listing is for finding jobs; GET /benchmarks/jobs/{id} has the rest.
        json: jobs.list(parseWith(ListQuery, Object.fromEntries(req.query), 'query')).map(({ log: _, ...j }) => j),
      }),
    },
    { method: 'GET', path: '/benchmarks/jobs/:id', handle: (req) => ({ json: jobs.get(req.params.id) }) },
    {
      method: 'DELETE',
      path: '/benchmarks/jobs/:id',
      handle: async (req) => ({ json: await jobs.cancel(req.params.id) }),
    },
    { method: 'GET', path: '/benchmarks/jobs/:id/result', handle: (req) => ({ json: jobs.result(req.params.id) }) },
    {
      method: 'GET',
      path: '/benchmarks/jobs/:id/report.md',
      handle: (req) => file(req.params.id, 'md', 'text/markdown; charset=utf-8'),
    },
    {
      method: 'GET',
      path: '/benchmarks/jobs/:id/report.html',
      handle: (req) => file(req.params.id, 'html', 'text/html; charset=utf-8'),
    },
  ];
}
