// /openapi.json: the control API described as OpenAPI 3.1, built from the route table and the same zod schemas
// the handlers validate with, so the description cannot drift from what the API accepts.
import { z } from 'zod';
import type { Route } from './http.ts';

/** What PEM answers (trust bundle, CRL) are served as. */
export const PEM_TYPE = 'application/x-pem-file';

const ERROR = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string', description: 'Stable code, e.g. SKEIN_BAD_REQUEST' },
        message: { type: 'string' },
        problems: { type: 'array', items: { type: 'string' }, description: 'field.path: reason, one per problem' },
      },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
};

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

/** `/v1/rules/:id` → `/v1/rules/{id}`. */
function openApiPath(path: string): { path: string; params: string[] } {
  const params: string[] = [];
  const out = path.replace(/:([A-Za-z]+)/g, (_, name: string) => {
    params.push(name);
    return `{${name}}`;
  });
  return { path: out, params };
}

export interface OpenApiOptions {
  /** Writes also accept a client certificate of a writer id (control --tls --writer-ids). */
  readonly mtlsWriters?: boolean;
}

export function openApiDocument(
  routes: readonly Route[],
  version: string,
  options: OpenApiOptions = {},
): Record<string, unknown> {
  // Alternatives: the API token, or (with --writer-ids) a writer's client certificate.
  const writeSecurity = [{ apiToken: [] }, ...(options.mtlsWriters === true ? [{ mtlsWriter: [] }] : [])];
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const { path, params } = openApiPath(r.path);
    const doc = r.doc;
    const parameters: unknown[] = params.map((name) => ({
      name,
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    if (doc?.query !== undefined) {
      const q = jsonSchema(doc.query, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {}))
        parameters.push({ name, in: 'query', required: q.required?.includes(name) ?? false, schema });
    }
    const write = r.method !== 'GET';
    const response =
      doc?.response === 'stream'
        ? { 'application/x-ndjson': { schema: { type: 'string' } } }
        : doc?.response === 'text'
          ? { 'text/plain': { schema: { type: 'string' } } }
          : doc?.response === 'pem'
            ? { [PEM_TYPE]: { schema: { type: 'string' } } }
            : { 'application/json': { schema: doc?.response === undefined ? {} : jsonSchema(doc.response, 'output') } };
    (paths[path] ??= {})[r.method.toLowerCase()] = {
      summary: doc?.summary ?? `${r.method} ${r.path}`,
      ...(parameters.length > 0 && { parameters }),
      ...(doc?.body !== undefined && {
        requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(doc.body, 'input') } } },
      }),
      ...(write && r.open !== true && { security: writeSecurity }),
      ...(write && r.open === true && r.authorize !== undefined && { security: [{ bootstrapToken: [] }] }),
      responses: {
        [r.method === 'POST' && doc?.body !== undefined ? '2XX' : '200']: { description: 'Success', content: response },
        default: { description: 'An error', content: { 'application/json': { schema: ERROR } } },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Skein control API', version },
    paths,
    components: {
      securitySchemes: {
        apiToken: { type: 'http', scheme: 'bearer' },
        bootstrapToken: {
          type: 'http',
          scheme: 'bearer',
          description: "The bootstrap token proxies get certificates with (control's --bootstrap-token-file)",
        },
        ...(options.mtlsWriters === true && {
          mtlsWriter: {
            type: 'mutualTLS',
            description:
              "A client certificate from the mesh's CA, not revoked, whose SPIFFE id matches control's --writer-ids",
          },
        }),
      },
    },
  };
}
