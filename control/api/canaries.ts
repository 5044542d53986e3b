// Routes of the canary API: start a rollout, read every canary or one with each stage's numbers and decisions,
// and the manual controls (promote, pause, resume, rollback). Writes need the API token, like every write.
import { z } from 'zod';
import type { Route } from '../http.ts';
import type { CanaryController } from '../canary.ts';
import { CanaryStart } from '../canary-schema.ts';

export function canaryRoutes(canaries: CanaryController): Route[] {
  const actor = (a: string | undefined) => a ?? 'anonymous';
  const action = (name: 'promote' | 'pause' | 'resume' | 'rollback', summary: string): Route => ({
    method: 'POST',
    path: `/v1/canaries/:service/${name}`,
    doc: { summary },
    handle: async (req) => ({ json: await canaries[name](req.params.service, actor(req.actor)) }),
  });
  return [
    {
      method: 'POST',
      path: '/v1/canaries',
      doc: {
        summary: 'Start a canary rollout of a service from one version to another (409 while one runs for the service)',
        body: CanaryStart,
      },
      handle: async (req) => ({ status: 201, json: await canaries.start(req.body, actor(req.actor)) }),
    },
    {
      method: 'GET',
      path: '/v1/canaries',
      doc: { summary: 'Every canary, running or finished, by service', response: z.array(z.unknown()) },
      handle: () => ({ json: canaries.list() }),
    },
    {
      method: 'GET',
      path: '/v1/canaries/:service',
      doc: { summary: "One service's canary: state, stage, and every window's numbers, verdict and action" },
      handle: (req) => ({ json: canaries.get(req.params.service) }),
    },
    action('promote', 'Go to the next stage now without judging (from the last split stage: promoted, 100% new)'),
    action('pause', 'Stop judging; the current split stays'),
    action('resume', "Judge again; the stage's window starts afresh"),
    action('rollback', 'All traffic back to the old version at once; the canary ends rolled_back'),
  ];
}
