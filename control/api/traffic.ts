// Routes of the traffic API: rules, services and authorization policies (writes need the API token and land in
// the audit log), the audit log, the proxies' push stream and acknowledgements, and what each proxy runs.
import { z } from 'zod';
import { parseWith, type Route } from '../http.ts';
import { Ack, type PushHub } from '../push.ts';
import { Rule, Service } from '../rules.ts';
import { AuthorizationPolicyRecord } from '../authorization.ts';
import { type Kind, parseIfMatch, type TrafficModel, type WriteMode } from '../traffic.ts';

const AuditQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(10_000).default(100) });

interface Collection<T> {
  readonly kind: Kind;
  readonly path: string;
  readonly schema: z.ZodType<T>;
  readonly summaries: { readonly list: string; readonly create: string; readonly remove: string };
  list(): T[];
  get(id: string): T;
  put(body: unknown, actor: string, mode: WriteMode): Promise<T>;
  remove(id: string, actor: string): Promise<T>;
}

const actorOf = (a: string | undefined) => a ?? 'anonymous';

/** List, create, read (with ETag), create-or-replace (If-Match), delete: the same five routes for each collection. */
function collectionRoutes<T>(model: TrafficModel, c: Collection<T>): Route[] {
  const one = `${c.path}/:id`;
  return [
    {
      method: 'GET',
      path: c.path,
      doc: { summary: c.summaries.list, response: z.array(c.schema) },
      handle: () => ({ json: c.list() }),
    },
    {
      method: 'POST',
      path: c.path,
      doc: { summary: c.summaries.create, body: c.schema, response: c.schema },
      handle: async (req) => ({ status: 201, json: await c.put(req.body, actorOf(req.actor), { create: true }) }),
    },
    {
      method: 'GET',
      path: one,
      doc: { summary: `One ${c.kind}, its version as ETag`, response: c.schema },
      handle: (req) => ({ json: c.get(req.params.id), headers: { etag: model.etag(c.kind, req.params.id) } }),
    },
    {
      method: 'PUT',
      path: one,
      doc: {
        summary: `Create or replace a ${c.kind} (If-Match: only over that version)`,
        body: c.schema,
        response: c.schema,
      },
      handle: async (req) => ({
        json: await c.put(req.body, actorOf(req.actor), {
          create: false,
          id: req.params.id,
          ifVersion: parseIfMatch(req.ifMatch),
        }),
      }),
    },
    {
      method: 'DELETE',
      path: one,
      doc: { summary: c.summaries.remove, response: c.schema },
      handle: async (req) => ({ json: await c.remove(req.params.id, actorOf(req.actor)) }),
    },
  ];
}

export function trafficRoutes(model: TrafficModel, hub: PushHub): Route[] {
  return [
    ...collectionRoutes<Rule>(model, {
      kind: 'rule',
      path: '/v1/rules',
      schema: Rule,
      summaries: {
        list: 'Every traffic rule',
        create: 'Create a rule (409 if its id exists); pushed to the proxies it applies to',
        remove: 'Delete a rule; answers the rule deleted',
      },
      list: () => model.rules(),
      get: (id) => model.rule(id),
      put: (body, actor, mode) => model.putRule(body, actor, mode),
      remove: (id, actor) => model.deleteRule(id, actor),
    }),
    ...collectionRoutes<Service>(model, {
      kind: 'service',
      path: '/v1/services',
      schema: Service,
      summaries: {
        list: 'Every service with its endpoints and their versions',
        create: 'Register a service (409 if its id exists)',
        remove: 'Delete a service no rule uses (409 otherwise)',
      },
      list: () => model.services(),
      get: (id) => model.service(id),
      put: (body, actor, mode) => model.putService(body, actor, mode),
      remove: (id, actor) => model.deleteService(id, actor),
    }),
    ...collectionRoutes<AuthorizationPolicyRecord>(model, {
      kind: 'authorization-policy',
      path: '/v1/authorization-policies',
      schema: AuthorizationPolicyRecord,
      summaries: {
        list: 'Every authorization policy, by destination service',
        create:
          'Create an authorization policy (409 if its id exists); pushed to the proxies of its service, whose inbound HTTP listeners enforce it',
        remove: 'Delete an authorization policy; answers the policy deleted',
      },
      list: () => model.authorizationPolicies(),
      get: (id) => model.authorizationPolicy(id),
      put: (body, actor, mode) => model.putAuthorizationPolicy(body, actor, mode),
      remove: (id, actor) => model.deleteAuthorizationPolicy(id, actor),
    }),
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
        summary: "A proxy's push stream: newline-delimited JSON snapshots, trust messages and pings, never ending",
        query: z.strictObject({
          node: z.string(),
          service: z.string(),
          have: z.string().optional().describe('The snapshot hash the proxy runs'),
          haveTrust: z.string().optional().describe('The trust hash the proxy applied'),
        }),
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
