// `skein proxy --workers N` shares the admin port among the workers, so a scrape lands on one of them, yet its
// /metrics and /clusters must describe the whole process. The worker that gets the request asks the primary over
// the cluster IPC channel; the primary asks every worker for its figures, merges them (proxy/workers-aggregate.ts)
// and sends the answer back for that worker to serve.
//
// Why the admin listener stays in the workers rather than moving to the primary: /ready and /live must come from
// a process that serves traffic (a primary that is up while its workers are wedged would say ready), and /config
// and /listeners describe a worker's Snapshot, which the primary never loads. So only the two reads that must add
// up across workers take the extra hop. A worker that dies or hangs mid-gather costs at most the timeout: the
// answer comes from the others and names the missing one. With --workers 1 there is no primary and no IPC here.
import cluster, { type Worker } from 'node:cluster';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Logger } from '../src/log.ts';
import type { ClustersView, MetricFamilies, MissingWorker } from './workers-aggregate.ts';
import { mergeClusters, mergeMetrics, WorkerFiguresMemory } from './workers-aggregate.ts';

export type GatherKind = 'metrics' | 'clusters';

/** Set in the environment of the workers runPrimary forks: they answer gathers and send admin reads to it. */
export const SKEIN_WORKER_ENV = 'SKEIN_PROXY_WORKER';

/** How long the primary waits for the workers' figures before answering with those that came. */
export const WORKER_GATHER_TIMEOUT_MS = 3_000;
/** How long a worker waits for the primary's answer (the primary's own wait, plus room to merge). */
const PRIMARY_ANSWER_TIMEOUT_MS = WORKER_GATHER_TIMEOUT_MS + 5_000;

/** worker → primary: "I answer gathers from now on" (a worker still starting is not waited for). */
interface GatherReady {
  skein: 'gather-ready';
}
/** worker → primary: "the admin listener was asked for `kind`". */
interface GatherRequest {
  skein: 'gather-request';
  id: number;
  kind: GatherKind;
}
/** primary → every worker: "send me your `kind`". */
interface Gather {
  skein: 'gather';
  id: number;
  kind: GatherKind;
}
/** worker → primary: this worker's figures (or why it has none). */
interface Gathered {
  skein: 'gathered';
  id: number;
  data?: unknown;
  error?: string;
}
/** primary → the asking worker: the whole process's answer, ready to serve. */
interface GatherResult {
  skein: 'gather-result';
  id: number;
  body?: string;
  error?: string;
}

function isMessage<T extends { skein: string }>(msg: unknown, type: T['skein']): msg is T {
  return typeof msg === 'object' && msg !== null && (msg as { skein?: unknown }).skein === type;
}

/** What a worker gives for one kind: its registry as JSON, or its /clusters view. */
export interface WorkerFigures {
  metrics(): Promise<MetricFamilies>;
  clusters(): ClustersView;
}

// ---- worker side ----

/** For sends whose failure needs nothing: the other side is gone, and its 'exit' or our timeout says so. */
const ignore = (): void => {};

const asked = new Map<
  number,
  { resolve: (body: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }
>();
let nextAskId = 0;
let answering = false;

/** True in a worker forked by `skein proxy --workers N`, once answerPrimaryGathers ran. */
export function isSkeinWorker(): boolean {
  return answering;
}

/**
 * In a worker: answer the primary's gathers from `figures`, and route the primary's answers to askPrimary().
 * Register before the first config is applied so a starting worker answers (with what it has) instead of timing out.
 */
export function answerPrimaryGathers(figures: WorkerFigures): void {
  answering = true;
  process.on('message', (msg: unknown) => {
    if (isMessage<Gather>(msg, 'gather')) {
      // The callback keeps a channel closed meanwhile (the primary going away) from becoming an 'error' event.
      const reply = (m: Omit<Gathered, 'skein' | 'id'>) =>
        process.connected && process.send?.({ skein: 'gathered', id: msg.id, ...m }, undefined, undefined, ignore);
      const data = msg.kind === 'metrics' ? figures.metrics() : Promise.resolve().then(() => figures.clusters());
      data.then(
        (d) => reply({ data: d }),
        (err: Error) => reply({ error: err.message }),
      );
    } else if (isMessage<GatherResult>(msg, 'gather-result')) {
      const waiting = asked.get(msg.id);
      if (waiting === undefined) return; // answered after our timeout
      asked.delete(msg.id);
      clearTimeout(waiting.timer);
      if (msg.body !== undefined) waiting.resolve(msg.body);
      else waiting.reject(new Error(msg.error ?? 'no answer'));
    }
  });
  const ready: GatherReady = { skein: 'gather-ready' };
  process.send?.(ready, undefined, undefined, ignore);
}

/** In a worker: the whole process's /metrics text or /clusters JSON, from the primary. */
export function askPrimary(kind: GatherKind): Promise<string> {
  const id = nextAskId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      asked.delete(id);
      reject(new Error(`no answer from the primary within ${PRIMARY_ANSWER_TIMEOUT_MS} ms`));
    }, PRIMARY_ANSWER_TIMEOUT_MS);
    asked.set(id, { resolve, reject, timer });
    const request: GatherRequest = { skein: 'gather-request', id, kind };
    process.send?.(request, undefined, undefined, (err: Error | null) => {
      if (err === null || !asked.has(id)) return;
      asked.delete(id);
      clearTimeout(timer);
      reject(err);
    });
  });
}

// ---- primary side ----

interface Answer {
  readonly workerId: number;
  readonly data: unknown;
}

interface Collection {
  /** worker.id → pid of the workers yet to answer. */
  readonly waiting: Map<number, number>;
  readonly answers: Answer[];
  readonly missing: (MissingWorker & { workerId: number; exited: boolean })[];
  finish(): void;
}

/**
 * In the primary: serve the workers' gather requests, asking every worker that is ready. `timeoutMs` bounds the
 * wait for any one gather; a worker that exits while it is awaited counts as missing at once.
 */
export function servePrimaryGathers(log: Logger, timeoutMs = WORKER_GATHER_TIMEOUT_MS): void {
  const collections = new Map<number, Collection>();
  /** Workers that said they answer gathers: one still starting has counted nothing and is not waited for. */
  const ready = new Set<number>();
  let nextGatherId = 0;
  // The primary's own CPU and memory are part of the process a user runs; its nodejs_* figures (an idle event
  // loop, a small heap) would only dilute the workers' averages, so only its process_* families are added.
  const primaryRegistry = new Registry();
  collectDefaultMetrics({ register: primaryRegistry });

  const memory = new WorkerFiguresMemory();

  const lose = (c: Collection, workerId: number, reason: string, exited = false) => {
    const pid = c.waiting.get(workerId);
    if (pid === undefined) return;
    c.waiting.delete(workerId);
    c.missing.push({ pid, reason, workerId, exited });
    if (c.waiting.size === 0) c.finish();
  };

  const gather = (kind: GatherKind): Promise<Omit<Collection, 'waiting' | 'finish'> & { asked: number }> =>
    new Promise((resolve) => {
      const id = nextGatherId++;
      const c: Collection = {
        waiting: new Map(),
        answers: [],
        missing: [],
        finish: () => {
          clearTimeout(timer);
          collections.delete(id);
          for (const m of c.missing)
            log.warn('worker missing from an admin read', { kind, workerPid: m.pid, reason: m.reason });
          resolve({ answers: c.answers, asked: c.answers.length + c.missing.length, missing: c.missing });
        },
      };
      const timer = setTimeout(() => {
        for (const workerId of [...c.waiting.keys()]) lose(c, workerId, `no answer within ${timeoutMs} ms`);
      }, timeoutMs);
      collections.set(id, c);
      const message: Gather = { skein: 'gather', id, kind };
      const workers = Object.values(cluster.workers ?? {}).filter(
        (w): w is Worker => w !== undefined && ready.has(w.id) && w.isConnected(),
      );
      log.debug('gathering from workers', { kind, workerPids: workers.map((w) => w.process.pid) });
      for (const w of workers) c.waiting.set(w.id, w.process.pid ?? 0);
      for (const w of workers)
        w.send(message, (err) => {
          if (err !== null) lose(c, w.id, `not reachable: ${err.message}`);
        });
      if (workers.length === 0) c.finish();
    });

  const answer = async (kind: GatherKind): Promise<string> => {
    const { answers, asked, missing } = await gather(kind);
    const tally = { asked, missing: missing.map(({ pid, reason }): MissingWorker => ({ pid, reason })) };
    if (kind === 'clusters') {
      const merged = mergeClusters(
        answers.map((a) => a.data as ClustersView),
        tally,
      );
      return `${JSON.stringify(merged, null, 2)}\n`;
    }
    const lists: MetricFamilies[] = [];
    for (const a of answers) {
      memory.answered(a.workerId, a.data as MetricFamilies);
      lists.push(a.data as MetricFamilies);
    }
    missing.forEach((m, i) => {
      const last = m.exited ? undefined : memory.lastOf(m.workerId);
      if (last === undefined) return;
      lists.push(last);
      tally.missing[i].stale = true;
    });
    lists.push(await memory.retiredFamilies());
    const own = (await primaryRegistry.getMetricsAsJSON()).filter((f) => f.name.startsWith('process_'));
    return mergeMetrics([...lists, own], tally);
  };

  cluster.on('message', (worker: Worker, msg: unknown) => {
    if (isMessage<GatherReady>(msg, 'gather-ready')) ready.add(worker.id);
    else if (isMessage<Gathered>(msg, 'gathered')) {
      const c = collections.get(msg.id);
      if (c === undefined || !c.waiting.has(worker.id)) return; // late: already answered without it
      if (msg.error !== undefined) return lose(c, worker.id, `failed: ${msg.error}`);
      c.waiting.delete(worker.id);
      c.answers.push({ workerId: worker.id, data: msg.data });
      if (c.waiting.size === 0) c.finish();
    } else if (isMessage<GatherRequest>(msg, 'gather-request')) {
      const reply = (m: Omit<GatherResult, 'skein' | 'id'>) => {
        if (worker.isConnected()) worker.send({ skein: 'gather-result', id: msg.id, ...m }, ignore);
      };
      answer(msg.kind).then(
        (body) => reply({ body }),
        (err: Error) => {
          log.error('merging the workers\u2019 figures failed', { kind: msg.kind, error: err.message });
          reply({ error: err.message });
        },
      );
    }
  });
  cluster.on('exit', (worker) => {
    ready.delete(worker.id);
    memory.exited(worker.id); // before the gathers waiting on it finish, so its counters are in their answers
    for (const c of [...collections.values()]) lose(c, worker.id, 'exited', true);
  });
}
