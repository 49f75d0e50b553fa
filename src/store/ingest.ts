/**
 * Glue between the collector and a store: opens a store from its URL (duckdb: or clickhouse:, migrated,
 * behind a BatchWriter) and
 * turns the collector's decode output into rows. Options data records are not flow rows and are skipped.
 */
import type { DecodeOutput } from '../collector/decode-message.js'
import { COLUMNS } from '../schema/columns.js'
import { openStoreForWrite } from './open.js'
import { BatchWriter, type BatchWriterOptions } from './store.js'

export async function openStoreWriter(url: string, opts: BatchWriterOptions = {}): Promise<BatchWriter> {
  const store = await openStoreForWrite(url)
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
  const received = BigInt(nowMs) * 1000n
  let n = o.columnar ?? 0
  for (const r of o.records) {
    if (r.isOptions) continue
    writer.addRecord(r, received)
    n++
  }
  return n
}
