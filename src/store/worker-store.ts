/**
 * A FlowStore whose store runs in a thread of its own (store-worker.ts), so the collector's receive loop
 * never waits for an append or a commit (DuckDB commits synchronously; a row group takes the better part of
 * a second). Inserts are queued: they resolve as soon as the batch is handed over, and the thread stores
 * them in order. The queue is bounded by rows (maxQueuedRows) and by octets (maxQueuedBytes, an estimate of
 * what each batch holds while it waits: typed columns, strings, plain values): a batch that would pass either
 * bound is dropped whole and counted (`stats.dropped` rows, `droppedBatches`, `droppedForBytes`), as a full
 * socket buffer drops the datagram that does not fit (tail drop), so memory stays bounded when the store is
 * slower than the input or failing. Rows are also held per exporter (fair-share.ts): the batch writer asks
 * `fairShare` before it buffers an exporter's rows, so under overload the exporters holding more than their
 * share of the bound lose first, and while two or more exporters hold rows the row bound is raised by the
 * fair share's reserve (what it took for exporters within their share); batches dropped here are counted
 * per exporter too. Queries, options, retention and count run in the thread after every
 * insert queued before them. `close` waits for the queue and closes the store; with a deadline, inserts
 * not yet begun when it passes are abandoned and counted (`stats.abandoned`), and the store's closing
 * checkpoint is skipped if it has not begun.
 */
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { FairShare, type ShareOwners } from './fair-share.js'
import type { FlowQuery } from '../query/sql.js'
import type { ColumnBatch } from './column-batch.js'
import type { OptionRow } from './options-rows.js'
import type { OptionsQuery } from './options-store.js'
import type { FlowStore, QueryResult, RetentionPolicy } from './store.js'
import type { TypedBatch } from './typed-batch.js'
import { columnBatchBytes, toWire, wireBytes, type Reply, type Request } from './worker-wire.js'

export interface WorkerStoreOptions {
  /** Rows queued for the store thread at most; a batch past it is dropped. Default 262 144 (two row groups). */
  maxQueuedRows?: number
  /** Octets queued for the store thread at most (estimated); a batch past it is dropped. Default 128 MiB. */
  maxQueuedBytes?: number
  /** Rows above maxQueuedRows still taken for exporters within their fair share. Default maxQueuedRows / 8. */
  reserveRows?: number
  /** Called with each insert failure (the thread keeps the batch and tries it again). */
  onError?: (e: Error) => void
}

/** What WorkerStore needs of its thread (a worker_threads Worker; a fake one in tests). */
export interface StoreThread {
  postMessage(value: unknown, transfer?: readonly ArrayBuffer[]): void
  on(event: 'message', listener: (r: Reply) => void): unknown
  on(event: 'error', listener: (e: Error) => void): unknown
  on(event: 'exit', listener: () => void): unknown
  terminate(): Promise<number>
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void }

// Distributive Omit over the request union (a plain Omit would merge its members).
type RequestBody = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never

export class WorkerStore implements FlowStore {
  /**
   * queued / queuedBytes: rows (and their estimated octets) handed over and not yet stored, and the most of
   * each at any time (peakQueued, peakQueuedBytes); stored; dropped: rows of the batches that found the queue
   * full (droppedBatches of them, droppedForBytes rows of those by the octet bound); failed: given up at
   * close as the store kept failing; abandoned: not stored because the close deadline passed; errors:
   * failed inserts (kept and retried). droppedFairShare: rows refused by the fair share before they were
   * buffered (also in dropped, which counts every row lost to overload; not in droppedBatches).
   */
  readonly stats = {
    queued: 0,
    queuedBytes: 0,
    peakQueued: 0,
    peakQueuedBytes: 0,
    stored: 0,
    dropped: 0,
    droppedBatches: 0,
    droppedForBytes: 0,
    droppedFairShare: 0,
    failed: 0,
    abandoned: 0,
    errors: 0,
  }
  private nextId = 1
  private readonly calls = new Map<number, Pending>()
  /** Rows and estimated octets of each queued insert, by request id. */
  private readonly inserts = new Map<number, { rows: number; bytes: number; owners?: ShareOwners }>()
  /** Rows held per exporter, asked by the batch writer before it buffers them (fair-share.ts). */
  readonly fairShare: FairShare
  readonly maxQueuedRows: number
  readonly maxQueuedBytes: number
  /** Shared with the thread: [0] set to 1 = abandon the inserts not yet begun. */
  private readonly control: Int32Array
  private ended = false

  private constructor(
    private readonly worker: StoreThread,
    private readonly opts: WorkerStoreOptions,
    control: SharedArrayBuffer,
  ) {
    this.maxQueuedRows = opts.maxQueuedRows ?? 262_144
    this.maxQueuedBytes = opts.maxQueuedBytes ?? 128 * 1024 * 1024
    this.fairShare = new FairShare({
      boundRows: this.maxQueuedRows,
      ...(opts.reserveRows !== undefined ? { reserveRows: opts.reserveRows } : {}),
    })
    this.control = new Int32Array(control)
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
    const control = new SharedArrayBuffer(4)
    const workerData = { url, control }
    const worker =
      ext === '.ts'
        ? new Worker(
            `import('tsx/esm/api').then((m) => m.tsImport(${JSON.stringify(entry.href)}, ${JSON.stringify(import.meta.url)}))`,
            { eval: true, workerData },
          )
        : new Worker(entry, { workerData })
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
    return new WorkerStore(worker, opts, control)
  }

  /** A WorkerStore over a thread already started and its store open (tests: a fake, slow thread). */
  static attach(thread: StoreThread, opts: WorkerStoreOptions = {}): WorkerStore {
    return new WorkerStore(thread, opts, new SharedArrayBuffer(4))
  }

  private reply(r: Reply): void {
    if (r.id === -1) {
      this.stats.errors++
      if (!r.ok) this.opts.onError?.(new Error(r.error))
      return
    }
    const insert = this.inserts.get(r.id)
    if (insert !== undefined) {
      this.inserts.delete(r.id)
      this.stats.queued -= insert.rows
      this.stats.queuedBytes -= insert.bytes
      if (insert.owners !== undefined) this.fairShare.release(insert.owners)
      if (r.ok) this.stats.stored += insert.rows
      else if (r.abandoned === true) this.stats.abandoned += insert.rows
      else this.stats.failed += insert.rows
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
    if (this.ended) return Promise.reject(new Error('store thread ended'))
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.worker.postMessage({ ...req, id }, transfer)
    })
  }

  /** Rows refused by the fair share before they were buffered (fair-share.ts): counted as dropped. */
  refused(rows: number): void {
    this.stats.dropped += rows
    this.stats.droppedFairShare += rows
  }

  /**
   * True when `rows` rows of `bytes` octets fit in the queue (rows up to the fair share's ceiling); else they
   * are dropped and counted, per exporter by `owners` too.
   */
  private admit(rows: number, bytes: number, owners: ShareOwners | undefined): boolean {
    const s = this.stats
    if (this.ended) {
      s.abandoned += rows // handed over after the store was closed
      if (owners !== undefined) this.fairShare.release(owners)
      return false
    }
    const maxRows = this.fairShare.ceilingRows
    if (s.queued + rows <= maxRows && s.queuedBytes + bytes <= this.maxQueuedBytes) return true
    s.dropped += rows
    s.droppedBatches++
    if (s.queued + rows <= maxRows) s.droppedForBytes += rows
    if (owners !== undefined) this.fairShare.dropped(owners)
    return false
  }

  /** Queues an insert admitted by admit(). */
  private queue(
    rows: number,
    bytes: number,
    owners: ShareOwners | undefined,
    req: RequestBody,
    transfer: ArrayBuffer[] = [],
  ): void {
    const id = this.nextId++
    this.inserts.set(id, owners !== undefined ? { rows, bytes, owners } : { rows, bytes })
    const s = this.stats
    s.queued += rows
    s.queuedBytes += bytes
    if (s.queued > s.peakQueued) s.peakQueued = s.queued
    if (s.queuedBytes > s.peakQueuedBytes) s.peakQueuedBytes = s.queuedBytes
    this.worker.postMessage({ ...req, id }, transfer)
  }

  /**
   * Queues the batch (resolves at once; dropped and counted when the queue is full). `owners`: its rows by
   * exporter, as held in `fairShare` (released when they leave the queue).
   */
  insert(batch: ColumnBatch, owners?: ShareOwners): Promise<void> {
    if (batch.length === 0) return Promise.resolve()
    const bytes = columnBatchBytes(batch)
    if (this.admit(batch.length, bytes, owners))
      this.queue(batch.length, bytes, owners, { op: 'insert', batch })
    return Promise.resolve()
  }

  /** Queues the typed batch, its buffers moved to the thread (the batch is unusable afterwards). */
  insertTyped(batch: TypedBatch, owners?: ShareOwners): Promise<void> {
    if (batch.length === 0 || batch.length > this.fairShare.ceilingRows - this.stats.queued) {
      if (batch.length > 0) this.admit(batch.length, 0, owners)
      return Promise.resolve()
    }
    const { wire, transfer } = toWire(batch)
    const bytes = wireBytes(wire)
    if (this.admit(batch.length, bytes, owners))
      this.queue(batch.length, bytes, owners, { op: 'insertTyped', batch: wire }, transfer)
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

  /** From now on the thread skips the inserts it has not begun (counted as abandoned). */
  abandonQueued(): void {
    Atomics.store(this.control, 0, 1)
  }

  private deadline: NodeJS.Timeout | undefined

  /**
   * Bounds the time the rest may take (call when shutting down, before the last flush and close): `ms` from
   * now the inserts not yet begun are abandoned (counted), and the store closes without its checkpoint
   * if it has not begun it (store-worker.ts). 0: at once. The thread is never ended under a store call: a
   * DuckDB call finishing in a thread that was ended aborted the process (Napi::Error, SIGABRT).
   */
  closeWithin(ms: number): void {
    if (this.deadline !== undefined || this.ended) return
    if (ms <= 0) this.abandonQueued()
    else {
      this.deadline = setTimeout(() => this.abandonQueued(), ms)
      this.deadline.unref()
    }
  }

  /** Stores everything queued (what the closeWithin deadline allows), closes the store and ends the thread. */
  async close(): Promise<void> {
    try {
      await this.call({ op: 'close' })
    } finally {
      clearTimeout(this.deadline)
      this.ended = true
    }
    await this.worker.terminate()
  }
}
