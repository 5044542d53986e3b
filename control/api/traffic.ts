// Routes of the traffic API: rules and services (writes need the API token and land in the audit log), the
// audit log, the proxies' push stream and acknowledgements, and what each proxy runs.
import { z } from 'zod';
import { parseWith, type Route } from '../http.ts';
import type { PushHub } from '../push.ts';
import type { TrafficModel } from '../traffic.ts';

const AuditQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(10_000).default(100) });

export function trafficRoutes(model: TrafficModel, hub: PushHub): Route[] {
  const actor = (a: string | undefined) => a ?? 'anonymous';
  return [
    { method: 'GET', path: '/v1/rules', handle: () => ({ json: model.rules() }) },
    {
      method: 'POST',
      path: '/v1/rules',
      handle: async (req) => ({ status: 201, json: await model.putRule(req.body, actor(req.actor), { create: true }) }),
    },
    { method: 'GET', path: '/v1/rules/:id', handle: (req) => ({ json: model.rule(req.params.id) }) },
    {
      method: 'PUT',
      path: '/v1/rules/:id',
      handle: async (req) => ({
        json: await model.putRule(req.body, actor(req.actor), { create: false, id: req.params.id }),
      }),
    },
    {
      method: 'DELETE',
      path: '/v1/rules/:id',
      handle: async (req) => ({ json: await model.deleteRule(req.params.id, actor(req.actor)) }),
    },
    { method: 'GET', path: '/v1/services', handle: () => ({ json: model.services() }) },
    {
      method: 'POST',
      path: '/v1/services',
      handle: async (req) => ({
        status: 201,
        json: await model.putService(req.body, actor(req.actor), { create: true }),
      }),
    },
    { method: 'GET', path: '/v1/services/:id', handle: (req) => ({ json: model.service(req.params.id) }) },
    {
      method: 'PUT',
      path: '/v1/services/:id',
      handle: async (req) => ({
        json: await model.putService(req.body, actor(req.actor), { create: false, id: req.params.id }),
      }),
    },
    {
      method: 'DELETE',
      path: '/v1/services/:id',
      handle: async (req) => ({ json: await model.deleteService(req.params.id, actor(req.actor)) }),
    },
    {
      method: 'GET',
      path: '/v1/audit',
      handle: async (req) => ({
        json: await model.audit(parseWith(AuditQuery, Object.fromEntries(req.query), 'query').limit),
      }),
    },
    {
      method: 'GET',
      path: '/v1/config',
      handle: (req) => {
        const service = req.query.get('service');
        return { json: service === null ? { version: model.version } : model.overlayFor(service) };
      },
    },
    { method: 'GET', path: '/v1/push', handle: (req) => ({ stream: hub.open(req.query) }) },
    { method: 'POST', path: '/v1/push/ack', open: true, handle: (req) => ({ json: hub.ack(req.body) }) },
    { method: 'GET', path: '/proxies', handle: () => ({ json: hub.proxies() }) },
  ];
}
