import type { Cluster, Worker } from 'node:cluster';
import { logFailure } from '../core/guard.js';
import { shared } from '../core/state.js';
import type { MetricFamily } from './exposition.js';
import type { PromClient } from './prom-client.js';

/**
 * Node `cluster`: every worker has its own ledger and metrics; the primary serves them combined.
 *
 * The primary asks each connected worker for its families over the cluster IPC channel and
 * combines them by each family's aggregator: sum for counts, histograms and gauges of counts, min
 * for the oldest open response's start, max for build info. A worker that exits leaves its last
 * counters and histograms behind (added to every later sum), so the totals Prometheus sees never
 * go down when a worker is replaced; what it counted after the last scrape is lost.
 */

const REQUEST = 'leakwatch:metrics:request';
const RESPONSE = 'leakwatch:metrics:response';

/** How long the primary waits for a worker's families before it serves without them. */
export const WORKER_TIMEOUT_MS = 2000;

interface Request {
  type: typeof REQUEST;
  id: number;
}

interface Reply {
  type: typeof RESPONSE;
  id: number;
  families?: MetricFamily[];
  error?: string;
}

// Loaded on first use: some application servers fail when `cluster` is merely required.
let clusterModule: Cluster | undefined;
function cluster(): Cluster {
  return (clusterModule ??= require('node:cluster') as Cluster);
}

export function isClusterWorker(): boolean {
  return cluster().isWorker;
}

/** The worker's answerer and the primary's asker, one per process. */
const roles = shared<{ answering?: () => Promise<MetricFamily[]>; asking?: Asker }>('metrics.cluster', () => ({}));

/**
 * In a worker: answers the primary's requests with `families()`. One answerer per process; a later
 * call replaces the source. Returns an undo.
 */
export function answerPrimary(families: () => Promise<MetricFamily[]>): () => void {
  const installed = roles.answering !== undefined;
  roles.answering = families;
  if (!installed) process.on('message', onPrimaryMessage);
  return () => {
    if (roles.answering !== families) return;
    roles.answering = undefined;
    process.off('message', onPrimaryMessage);
  };
}

function onPrimaryMessage(message: unknown): void {
  const request = message as Request | null;
  if (request === null || typeof request !== 'object' || request.type !== REQUEST) return;
  const source = roles.answering;
  if (source === undefined || process.send === undefined) return;
  const reply = (body: Omit<Reply, 'type' | 'id'>) => {
    try {
      process.send?.({ type: RESPONSE, id: request.id, ...body } satisfies Reply);
    } catch (error) {
      logFailure('answering the cluster primary for metrics', error);
    }
  };
  source().then(
    (families) => reply({ families }),
    (error: unknown) => reply({ error: String(error) }),
  );
}

/** Families of the primary's connected workers, gathered for one scrape. */
class Asker {
  private nextId = 1;
  private readonly waiting = new Map<number, { pending: Set<number>; replies: Map<number, MetricFamily[]>; done: () => void }>();
  private readonly lastSeen = new Map<number, MetricFamily[]>();
  /** Counters and histograms left by workers that exited. */
  retired: MetricFamily[] = [];

  constructor(private readonly prom: PromClient) {
    const c = cluster();
    c.on('message', (worker: Worker, message: unknown) => this.onMessage(worker, message));
    c.on('exit', (worker: Worker) => this.onExit(worker));
  }

  private onMessage(worker: Worker, message: unknown): void {
    const reply = message as Reply | null;
    if (reply === null || typeof reply !== 'object' || reply.type !== RESPONSE) return;
    const request = this.waiting.get(reply.id);
    if (request === undefined || !request.pending.has(worker.id)) return;
    request.pending.delete(worker.id);
    if (reply.families !== undefined) {
      request.replies.set(worker.id, reply.families);
      this.lastSeen.set(worker.id, reply.families);
    } else {
      logFailure(`metrics of cluster worker ${worker.id}`, new Error(reply.error ?? 'no families'));
    }
    if (request.pending.size === 0) request.done();
  }

  private onExit(worker: Worker): void {
    const last = this.lastSeen.get(worker.id);
    this.lastSeen.delete(worker.id);
    if (last === undefined) return;
    const monotonic = last.filter((family) => family.type === 'counter' || family.type === 'histogram');
    this.retired = combine(this.prom, [this.retired, monotonic]);
  }

  async ask(timeoutMs: number): Promise<MetricFamily[][]> {
    const workers = Object.values(cluster().workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
    if (workers.length === 0) return [];
    const id = this.nextId++;
    const pending = new Set<number>();
    const replies = new Map<number, MetricFamily[]>();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const workerId of pending) {
          logFailure(`metrics of cluster worker ${workerId}`, new Error(`no answer within ${timeoutMs} ms (is leakwatch loaded in the worker?)`));
        }
        finish();
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve();
      };
      this.waiting.set(id, { pending, replies, done: finish });
      for (const worker of workers) {
        try {
          worker.send({ type: REQUEST, id } satisfies Request);
          pending.add(worker.id);
        } catch (error) {
          logFailure(`asking cluster worker ${worker.id} for metrics`, error);
        }
      }
      if (pending.size === 0) finish();
    });
    return [...replies.values()];
  }
}

/**
 * The primary's view: its own families combined with its workers' (and those left by exited
 * workers). Outside a cluster, or in a primary without workers, the own families as they are.
 */
export async function withWorkers(prom: PromClient, own: MetricFamily[], timeoutMs = WORKER_TIMEOUT_MS): Promise<MetricFamily[]> {
  const c = cluster();
  if (!c.isPrimary) return own;
  const asker = roles.asking;
  const hasWorkers = Object.keys(c.workers ?? {}).length > 0;
  if (asker === undefined && !hasWorkers) return own;
  const current = (roles.asking ??= new Asker(prom));
  const workers = hasWorkers ? await current.ask(timeoutMs) : [];
  if (workers.length === 0 && current.retired.length === 0) return own;
  return combine(prom, [own, ...workers, current.retired]);
}

/** Combines families of several processes by each family's aggregator (prom-client's own). */
export function combine(prom: PromClient, processes: MetricFamily[][]): MetricFamily[] {
  const registry = prom.AggregatorRegistry.aggregate(processes.filter((p) => p.length > 0) as never);
  // aggregate() gives a Registry of plain families; get() on each returns the combined family.
  return registry.getMetricsAsArray().map((item) => {
    const family = (item as unknown as { get(): MetricFamily }).get();
    return { ...family, values: family.values.map((v) => ({ ...v })) };
  });
}
