/**
 * A FlowStore whose store runs in a thread of its own (store-worker.ts), so the collector's receive loop
 * never waits for an append or a commit (DuckDB commits synchronously; a row group takes the better part of
 * a second). Inserts are queued: they resolve as soon as the batch is handed over, and the thread stores
 * them in order. The queue is bounded by rows (maxQueuedRows): a batch that would pass the bound is dropped
 * and counted (`stats.dropped`), as a full socket buffer would drop datagrams, so memory stays bounded when
 * the store is slower than the input or failing. Queries, options, retention and count run in the thread
 * after every insert queued before them. `close` waits for the queue and closes the store.
 */
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { FlowQuery } from '../query/sql.js'
import type { ColumnBatch } from './column-batch.js'
import type { OptionRow } from './options-rows.js'
import type { OptionsQuery } from './options-store.js'
import type { FlowStore, QueryResult, RetentionPolicy } from './store.js'
import type { TypedBatch } from './typed-batch.js'
import { toWire, type Reply, type Request } from './worker-wire.js'

export interface WorkerStoreOptions {
  /** Rows queued for the store thread at most; a batch past it is dropped. Default 262 144 (two row groups). */
  maxQueuedRows?: number
  /** Called with each insert failure (the thread keeps the batch and tries it again). */
  onError?: (e: Error) => void
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void }

// Distributive Omit over the request union (a plain Omit would merge its members).
type RequestBody = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never

export class WorkerStore implements FlowStore {
  /** queued: rows handed over and not yet stored; stored, dropped (queue full), failed (given up at close). */
  readonly stats = { queued: 0, stored: 0, dropped: 0, failed: 0, errors: 0 }
  private nextId = 1
  private readonly calls = new Map<number, Pending>()
  /** Rows of each queued insert, by request id. */
  private readonly inserts = new Map<number, number>()
  private readonly maxQueuedRows: number

  private constructor(
    private readonly worker: Worker,
    private readonly opts: WorkerStoreOptions,
  ) {
    this.maxQueuedRows = opts.maxQueuedRows ?? 262_144
    worker.on('message', (r: Reply) => this.reply(r))
    worker.on('error', (e) => this.fail(e))
    worker.on('exit', () => this.fail(new Error('store thread exited')))
  }

  /** Starts the thread and opens (creating or upgrading) the store of `url` in it. */
  static async open(url: string, opts: WorkerStoreOptions = {}): Promise<WorkerStore> {
    // From dist/ the thread runs store-worker.js; from the sources (tsx, vitest) store-worker.ts, loaded
    // through tsx's API (a worker does not take the loader hooks of the thread that starts it).
    const ext = extname(fileURLToPath(import.meta.url))
    const entry = new URL(`./store-worker${ext}`, import.meta.url)
    const worker =
      ext === '.ts'
        ? new Worker(
            `import('tsx/esm/api').then((m) => m.tsImport(${JSON.stringify(entry.href)}, ${JSON.stringify(import.meta.url)}))`,
            { eval: true, workerData: { url } },
          )
        : new Worker(entry, { workerData: { url } })
    await new Promise<void>((resolve, reject) => {
      const onExit = (): void => reject(new Error('store thread exited at start'))
      worker.once('error', reject)
      worker.once('exit', onExit)
      worker.once('message', (r: Reply) => {
        worker.off('error', reject)
        worker.off('exit', onExit)
        if (r.ok) resolve()
        else reject(new Error(r.error))
      })
    })
    return new WorkerStore(worker, opts)
  }

  private reply(r: Reply): void {
    if (r.id === -1) {
      this.stats.errors++
      if (!r.ok) this.opts.onError?.(new Error(r.error))
      return
    }
    const rows = this.inserts.get(r.id)
    if (rows !== undefined) {
      this.inserts.delete(r.id)
      this.stats.queued -= rows
      if (r.ok) this.stats.stored += rows
      else this.stats.failed += rows
    }
    const p = this.calls.get(r.id)
    if (p === undefined) return
    this.calls.delete(r.id)
    if (r.ok) p.resolve(r.value)
    else p.reject(new Error(r.error))
  }

  private fail(e: Error): void {
    for (const p of this.calls.values()) p.reject(e)
    this.calls.clear()
  }

  private call<T>(req: RequestBody, transfer: ArrayBuffer[] = []): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.worker.postMessage({ ...req, id }, transfer)
    })
  }

  /** Queues an insert of `rows` rows; false (dropped, counted) when the queue has no room for it. */
  private queue(rows: number, req: RequestBody, transfer: ArrayBuffer[] = []): boolean {
    if (this.stats.queued + rows > this.maxQueuedRows) {
      this.stats.dropped += rows
      return false
    }
    const id = this.nextId++
    this.inserts.set(id, rows)
    this.stats.queued += rows
    this.worker.postMessage({ ...req, id }, transfer)
    return true
  }

  /** Queues the batch (resolves at once; dropped and counted when the queue is full). */
  insert(batch: ColumnBatch): Promise<void> {
    if (batch.length > 0) this.queue(batch.length, { op: 'insert', batch })
    return Promise.resolve()
  }

  /** Queues the typed batch, its buffers moved to the thread (the batch is unusable afterwards). */
  insertTyped(batch: TypedBatch): Promise<void> {
    if (batch.length === 0) return Promise.resolve()
    if (this.stats.queued + batch.length > this.maxQueuedRows) {
      this.stats.dropped += batch.length
      return Promise.resolve()
    }
    const { wire, transfer } = toWire(batch)
    this.queue(batch.length, { op: 'insertTyped', batch: wire }, transfer)
    return Promise.resolve()
  }

  migrate(): Promise<void> {
    return this.call({ op: 'migrate' })
  }
  query(q: FlowQuery): Promise<QueryResult> {
    return this.call({ op: 'query', query: q })
  }
  insertOptions(rows: readonly OptionRow[]): Promise<void> {
    return this.call({ op: 'insertOptions', rows })
  }
  options(q: OptionsQuery): Promise<QueryResult> {
    return this.call({ op: 'options', query: q })
  }
  retain(policy: RetentionPolicy): Promise<number> {
    return this.call({ op: 'retain', policy })
  }
  count(): Promise<number> {
    return this.call({ op: 'count' })
  }

  /** Stores everything queued, closes the store and ends the thread. */
  async close(): Promise<void> {
    await this.call({ op: 'close' })
    await this.worker.terminate()
  }
}
