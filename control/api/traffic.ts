// Routes of the traffic API: rules and services (writes need the API token and land in the audit log), the
// audit log, the proxies' push stream and acknowledgements, and what each proxy runs.
import { z } from 'zod';
import { parseWith, type Route } from '../http.ts';
import { Ack, type PushHub } from '../push.ts';
import { Rule, Service } from '../rules.ts';
import { parseIfMatch, type TrafficModel } from '../traffic.ts';

const AuditQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(10_000).default(100) });

export function trafficRoutes(model: TrafficModel, hub: PushHub): Route[] {
  const actor = (a: string | undefined) => a ?? 'anonymous';
  return [
    {
      method: 'GET',
      path: '/v1/rules',
      doc: { summary: 'Every traffic rule', response: z.array(Rule) },
      handle: () => ({ json: model.rules() }),
    },
    {
      method: 'POST',
      path: '/v1/rules',
      doc: {
        summary: 'Create a rule (409 if its id exists); pushed to the proxies it applies to',
        body: Rule,
        response: Rule,
      },
      handle: async (req) => ({ status: 201, json: await model.putRule(req.body, actor(req.actor), { create: true }) }),
    },
    {
      method: 'GET',
      path: '/v1/rules/:id',
      doc: { summary: 'One rule', response: Rule },
      handle: (req) => ({ json: model.rule(req.params.id), headers: { etag: model.etag('rule', req.params.id) } }),
    },
    {
      method: 'PUT',
      path: '/v1/rules/:id',
      doc: { summary: 'Create or replace a rule', body: Rule, response: Rule },
      handle: async (req) => ({
        json: await model.putRule(req.body, actor(req.actor), {
          create: false,
          id: req.params.id,
          ifVersion: parseIfMatch(req.ifMatch),
        }),
      }),
    },
    {
      method: 'DELETE',
      path: '/v1/rules/:id',
      doc: { summary: 'Delete a rule; answers the rule deleted', response: Rule },
      handle: async (req) => ({ json: await model.deleteRule(req.params.id, actor(req.actor)) }),
    },
    {
      method: 'GET',
      path: '/v1/services',
      doc: { summary: 'Every service with its endpoints and their versions', response: z.array(Service) },
      handle: () => ({ json: model.services() }),
    },
    {
      method: 'POST',
      path: '/v1/services',
      doc: { summary: 'Register a service (409 if its id exists)', body: Service, response: Service },
      handle: async (req) => ({
        status: 201,
        json: await model.putService(req.body, actor(req.actor), { create: true }),
      }),
    },
    {
      method: 'GET',
      path: '/v1/services/:id',
      doc: { summary: 'One service', response: Service },
      handle: (req) => ({
        json: model.service(req.params.id),
        headers: { etag: model.etag('service', req.params.id) },
      }),
    },
    {
      method: 'PUT',
      path: '/v1/services/:id',
      doc: { summary: 'Create or replace a service', body: Service, response: Service },
      handle: async (req) => ({
        json: await model.putService(req.body, actor(req.actor), {
          create: false,
          id: req.params.id,
          ifVersion: parseIfMatch(req.ifMatch),
        }),
      }),
    },
    {
      method: 'DELETE',
      path: '/v1/services/:id',
      doc: { summary: 'Delete a service no rule uses (409 otherwise)', response: Service },
      handle: async (req) => ({ json: await model.deleteService(req.params.id, actor(req.actor)) }),
    },
    {
      method: 'GET',
      path: '/v1/audit',
      doc: {
        summary: 'The audit log, newest first: who changed what, when, versions before and after',
        query: AuditQuery,
      },
      handle: async (req) => ({
        json: await model.audit(parseWith(AuditQuery, Object.fromEntries(req.query), 'query').limit),
      }),
    },
    {
      method: 'GET',
      path: '/v1/config',
      doc: {
        summary: "Control's config version; with ?service=NAME, the overlay a proxy of that service gets",
        query: z.strictObject({ service: z.string().optional() }),
      },
      handle: (req) => {
        const service = req.query.get('service');
        return { json: service === null ? { version: model.version } : model.overlayFor(service) };
      },
    },
    {
      method: 'GET',
      path: '/v1/push',
      doc: {
        summary: "A proxy's push stream: newline-delimited JSON snapshots and pings, never ending",
        query: z.strictObject({ node: z.string(), service: z.string(), have: z.string().optional() }),
        response: 'stream',
      },
      handle: (req) => ({ stream: hub.open(req.query) }),
    },
    {
      method: 'POST',
      path: '/v1/push/ack',
      open: true,
      doc: { summary: 'A proxy ACKs (ok) or NACKs (problems) a snapshot', body: Ack },
      handle: (req) => ({ json: hub.ack(req.body) }),
    },
    {
      method: 'GET',
      path: '/proxies',
      doc: { summary: 'Every proxy that opened a push stream: connected, the version it runs, its last ACK and NACK' },
      handle: () => ({ json: hub.proxies() }),
    },
  ];
}
