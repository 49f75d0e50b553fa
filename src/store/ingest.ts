/**
 * Glue between the collector and a store: opens a store from its URL (duckdb: or clickhouse:, migrated,
 * behind a BatchWriter; with `thread`, in a thread of its own behind a bounded queue: worker-store.ts) and
 * turns the collector's decode output into rows. Options data records are not flow rows and are skipped.
 */
import type { DecodeOutput } from '../collector/decode-message.js'
import { COLUMNS } from '../schema/columns.js'
import { openStoreForWrite } from './open.js'
import { BatchWriter, type BatchWriterOptions } from './store.js'
import { WorkerStore } from './worker-store.js'

export interface StoreWriterOptions extends BatchWriterOptions {
  /** Run the store in a thread of its own (live collection: the receive loop never waits for a commit). */
  thread?: boolean
  /** With `thread`: rows queued for the thread at most (more are dropped and counted). */
  maxQueuedRows?: number
  /** With `thread`: octets (estimated) queued for the thread at most (more are dropped and counted). */
  maxQueuedBytes?: number
}

export async function openStoreWriter(url: string, opts: StoreWriterOptions = {}): Promise<BatchWriter> {
  const store = opts.thread
    ? await WorkerStore.open(url, {
        ...(opts.maxQueuedRows !== undefined ? { maxQueuedRows: opts.maxQueuedRows } : {}),
        ...(opts.maxQueuedBytes !== undefined ? { maxQueuedBytes: opts.maxQueuedBytes } : {}),
        ...(opts.onError !== undefined ? { onError: opts.onError } : {}),
      })
    : await openStoreForWrite(url)
  return new BatchWriter(
    store,
    COLUMNS.map((c) => c.name),
    opts,
  )
}

/**
 * A collector sink that appends every flow record to the writer; returns how many it took, counting those
 * the writer took straight from their data sets (the collector's columnSink).
 */
export function storeRecords(writer: BatchWriter, o: DecodeOutput, nowMs = Date.now()): number {
  let n = o.columnar ?? 0
  if (o.records.length === 0) return n
  const received = BigInt(nowMs) * 1000n
  for (const r of o.records) {
    if (r.isOptions) continue
    writer.addRecord(r, received)
    n++
  }
  return n
}
