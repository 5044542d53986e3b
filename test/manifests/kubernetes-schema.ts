// Helpers for the Kubernetes manifests' tests: render a kustomization with the real `kubectl kustomize`, and
// validate each object against the Kubernetes API schemas of a pinned version (the `kubernetes-models` package's
// validators, generated from the Kubernetes OpenAPI spec; `@kubernetes-models/prometheus-operator`'s from the
// Prometheus Operator's CRDs), plus the one thing those validators let through: fields the schema does not
// define (a typo such as `readinesProbe`), which the API server refuses under kubectl's default strict field
// validation. Not a test file itself.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as batchV1 from 'kubernetes-models/batch/v1';
import * as rbacV1 from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import * as coreV1 from 'kubernetes-models/v1';
import * as monitoringV1 from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { parseAllDocuments } from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // The manifests are read as data; each test names the fields it checks.
  [field: string]: any;
}

const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const manifestDir = (rel: string): string => join(REPO, 'manifests', rel);

/** `kubectl kustomize DIR`: kubectl ≥ 1.14 (Debian's kubernetes-client, kustomize v2, or a newer one). */
export function kustomize(dir: string): { ok: boolean; objects: K8sObject[]; stderr: string } {
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
  if (r.error !== undefined) throw new Error(`kubectl: ${r.error.message} (apt-get install kubernetes-client)`);
  const ok = r.status === 0;
  return { ok, objects: ok ? parseObjects(r.stdout) : [], stderr: r.stderr };
}

export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

export function readObjects(file: string): K8sObject[] {
  return parseObjects(readFileSync(manifestDir(file), 'utf8'));
}

interface ModelClass {
  new (data: object): { validate(): void };
}
interface Schema {
  readonly model: ModelClass;
  /** The model's declaration file: the fields the schema defines. */
  readonly declaration: string;
}

const MODELS: Record<string, { module: Record<string, unknown>; dir: string }> = {
  v1: { module: coreV1, dir: 'kubernetes-models/v1' },
  'apps/v1': { module: appsV1, dir: 'kubernetes-models/apps/v1' },
  'batch/v1': { module: batchV1, dir: 'kubernetes-models/batch/v1' },
  'rbac.authorization.k8s.io/v1': { module: rbacV1, dir: 'kubernetes-models/rbac.authorization.k8s.io/v1' },
  'monitoring.coreos.com/v1': {
    module: monitoringV1,
    dir: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
  },
};

function schemaOf(obj: K8sObject): Schema | undefined {
  const group = MODELS[obj.apiVersion];
  const model = group?.module[obj.kind] as ModelClass | undefined;
  if (group === undefined || model === undefined) return undefined;
  return { model, declaration: join(REPO, 'node_modules', group.dir, `${obj.kind}.d.ts`) };
}

/** Every problem the schema finds in `obj` (empty: valid), each with its path. */
export function schemaProblems(obj: K8sObject): string[] {
  const schema = schemaOf(obj);
  if (schema === undefined) return [`no schema for ${obj.apiVersion} ${obj.kind}`];
  const problems: string[] = [];
  try {
    new schema.model(obj).validate();
  } catch (err) {
    problems.push((err as Error).message);
  }
  problems.push(...unknownFields(obj, schema.declaration, ''));
  return problems;
}

interface Declared {
  /** Field name → the declaration file of its object type, or undefined for a scalar, map or inline type. */
  readonly fields: Map<string, string | undefined>;
}
const declared = new Map<string, Declared | undefined>();

/**
 * The fields of the interface a model's declaration file exports, each with the declaration file of its type
 * when that type is another interface of the package (directly or in an Array). Undefined when the file
 * declares no interface (a type alias: IntOrString, Quantity).
 */
function readDeclaration(file: string): Declared | undefined {
  if (declared.has(file)) return declared.get(file);
  let result: Declared | undefined;
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8');
    const imports = new Map<string, string>();
    for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
      const from = m[2].startsWith('.')
        ? join(dirname(file), m[2].replace(/\.js$/, '.d.ts'))
        : join(REPO, 'node_modules', `${m[2].replace(/\.js$/, '')}.d.ts`);
      imports.set(m[1], from);
    }
    const body = /^export interface I\w+(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/m.exec(text)?.[1];
    if (body !== undefined) {
      const fields = new Map<string, string | undefined>();
      // Top-level members only: four spaces of indent, `"name"?: Type;` (inline object types span lines).
      for (const m of body.matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) {
        const type = /^(?:Array<)?(I\w+)>?;$/.exec(m[2])?.[1];
        fields.set(m[1], type === undefined ? undefined : imports.get(type));
      }
      result = { fields };
    }
  }
  declared.set(file, result);
  return result;
}

function unknownFields(value: unknown, file: string, path: string): string[] {
  const decl = readDeclaration(file);
  if (decl === undefined || value === null || typeof value !== 'object') return [];
  if (Array.isArray(value)) return value.flatMap((v, i) => unknownFields(v, file, `${path}[${i}]`));
  const problems: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (!decl.fields.has(key)) {
      problems.push(`${path === '' ? '' : `${path}.`}${key}: not a field of the schema`);
      continue;
    }
    const child = decl.fields.get(key);
    if (child !== undefined) problems.push(...unknownFields(v, child, path === '' ? key : `${path}.${key}`));
  }
  return problems;
}
