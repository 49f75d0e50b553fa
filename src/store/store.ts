/**
 * The flow store interface every backend implements (DuckDB embedded now, ClickHouse later), and the batch
 * writer in front of it: rows are built by column, appended in batches flushed on a size or a time trigger,
 * and on close, so nothing the collector accepted is lost at shutdown. Where the store shares a bounded queue
 * between exporters (`fairShare`, worker-store.ts), the writer asks it before buffering an exporter's rows,
 * and hands each batch over with its rows by exporter.
 */
import type { FlowRow, RowValue } from './normalize.js'
import type { FlowQuery } from '../query/sql.js'
import type { CollectedRecord, ColumnSink } from '../collector/decode-message.js'
import type { CollectorTemplate } from '../collector/data-set.js'
import type { MessageContext } from '../collector/pending.js'
import { FastPlanner } from './fast-plan.js'
import { RecordPlanner, putRow } from './record-plan.js'
import { TypedBatch } from './typed-batch.js'
import type { OptionRow } from './options-rows.js'
import type { OptionsQuery } from './options-store.js'
import type { ColumnBatch } from './column-batch.js'
import type { FairShare, ShareOwners } from './fair-share.js'

export type { ColumnBatch } from './column-batch.js'

export interface RetentionPolicy {
  /** Rows whose time_received is older than this many ms are deleted (0 or absent: keep). */
  maxAgeMs?: number
  /** At most this many rows are kept; the oldest by time_received go first (0 or absent: no limit). */
  maxRows?: number
}

export interface QueryResult {
  readonly columns: string[]
  readonly rows: Record<string, RowValue>[]
}

export interface FlowStore {
  /** Creates or upgrades the schema; safe to run any number of times. */
  migrate(): Promise<void>
  /** Appends a batch; resolves once the rows are stored. `owners`: its rows by exporter (with `fairShare`). */
  insert(batch: ColumnBatch, owners?: ShareOwners): Promise<void>
  /** Appends a typed batch (typed-batch.ts), where the store has a path for it (else insert(toColumnBatch())). */
  insertTyped?(batch: TypedBatch, owners?: ShareOwners): Promise<void>
  /**
   * Where the store queues rows behind a bound shared by exporters (worker-store.ts): asked before rows are
   * buffered; refused rows are reported through `refused`.
   */
  readonly fairShare?: FairShare
  /** Counts rows the fair share refused (dropped before they were buffered). */
  refused?(rows: number): void
  /**
   * Appends several typed batches as one insert, where that is cheaper than one each (ClickHouse: one request
   * and one part); the store thread merges the typed batches waiting for it through this.
   */
  insertTypedMany?(batches: readonly TypedBatch[]): Promise<void>
  query(q: FlowQuery): Promise<QueryResult>
  /** Appends options facts (store/options-rows.ts) to the options table, joined onto flows at query time. */
  insertOptions(rows: readonly OptionRow[]): Promise<void>
  /** The latest options fact per (exporter, domain, kind, key). */
  options(q: OptionsQuery): Promise<QueryResult>
  /** Applies a retention policy now; resolves to the number of rows deleted. */
  retain(policy: RetentionPolicy): Promise<number>
  count(): Promise<number>
  /**
   * Stores what is pending and closes. `checkpoint: false` (a shutdown past its deadline): leave folding the
   * write-ahead log into the file to the next open (DuckDB), instead of a checkpoint that takes seconds per
   * million rows; nothing committed is lost either way.
   */
  close(opts?: { checkpoint?: boolean }): Promise<void>
}

/** An empty batch, with a column array for each name (so every batch has the same shape). */
export function emptyBatch(names: readonly string[] = []): ColumnBatch {
  const columns: Record<string, RowValue[]> = {}
  for (const n of names) columns[n] = []
  return { length: 0, columns }
}

/** Appends one row to a batch (columns absent from the row get null). */
export function pushRow(batch: ColumnBatch, row: FlowRow, names: readonly string[]): void {
  putRow(batch, row, names)
}

export interface BatchWriterOptions {
  /** Flush when this many rows wait. Default 10 000. */
  maxRows?: number
  /** Flush rows older than this (ms). Default 1000. */
  maxDelayMs?: number
  /** Called when a flush fails (the rows are kept and retried with the next flush). */
  onError?: (e: unknown) => void
}

/**
 * Buffers rows for a store. `add` is synchronous; flushes run one at a time in order. `close` flushes the
 * rest, waits for it and closes the store.
 */
export class BatchWriter implements ColumnSink {
  private batch: ColumnBatch
  /** Rows decoded straight from data sets (fast-plan.ts), stored beside `batch`. */
  private typed: TypedBatch
  private readonly fast = new FastPlanner()
  private timer: NodeJS.Timeout | undefined
  private chain: Promise<void> = Promise.resolve()
  private readonly maxRows: number
  private readonly maxDelayMs: number
  private readonly planner = new RecordPlanner()
  /** With a fair share: rows of `batch` and of `typed` by exporter (handed over with them). */
  private owners: ShareOwners | undefined
  private typedOwners: ShareOwners | undefined
  readonly stats = { rows: 0, flushes: 0, errors: 0 }

  constructor(
    readonly store: FlowStore,
    private readonly names: readonly string[],
    private readonly opts: BatchWriterOptions = {},
  ) {
    this.batch = emptyBatch(names)
    this.maxRows = opts.maxRows ?? 10_000
    this.maxDelayMs = opts.maxDelayMs ?? 1000
    this.typed = this.newTyped()
  }

  /**
   * A typed batch sized for a whole flush (maxRows, plus a data set's worth past the trigger), so it does
   * not grow by copying every column while it fills; capped, as columns take their room on first use.
   */
  private newTyped(): TypedBatch {
    return new TypedBatch(Math.min(this.maxRows + 1024, 1 << 17))
  }

  /** Rows accepted but not yet stored. */
  get pending(): number {
    return this.batch.length + this.typed.length
  }

  /**
   * ColumnSink: a data set whose template has a fast plan goes straight into the typed batch (the same rows
   * addRecord would make of its records); undefined for any other template.
   */
  takeDataSet(
    t: CollectorTemplate,
    ctx: MessageContext,
    bytes: Uint8Array,
    p: number,
    end: number,
  ): number | undefined {
    const plan = this.fast.plan(t)
    if (plan === undefined) return undefined
    const base = this.typed.length
    const n = this.fast.decode(plan, ctx, t.id, bytes, p, end, Date.now() * 1000, this.typed)
    if (n !== undefined && n > 0) {
      const fair = this.store.fairShare
      if (fair !== undefined) {
        // Decoded, then taken back if the exporter is over its share (the record count needs the decode).
        const share = fair.share(ctx.exporter, ctx.domain)
        if (!fair.admit(share, n)) {
          this.typed.truncate(base, base + n)
          this.store.refused?.(n)
          return n
        }
        this.typedOwners ??= new Map()
        this.typedOwners.set(share, (this.typedOwners.get(share) ?? 0) + n)
      }
      this.added()
    }
    return n
  }

  /** Counters of the fast path: data sets and records taken straight into columns. */
  get fastStats(): Readonly<FastPlanner['stats']> {
    return this.fast.stats
  }

  add(row: FlowRow): void {
    if (!this.hold('', 0)) return
    pushRow(this.batch, row, this.names)
    this.added()
  }

  /** With a fair share: true when a row of the exporter may be buffered (then held for `batch`). */
  private hold(exporter: string, domain: number): boolean {
    const fair = this.store.fairShare
    if (fair === undefined) return true
    const share = fair.share(exporter, domain)
    if (!fair.admit(share, 1)) {
      this.store.refused?.(1)
      return false
    }
    this.owners ??= new Map()
    this.owners.set(share, (this.owners.get(share) ?? 0) + 1)
    return true
  }

  /**
   * Appends a decoded data record straight into the column batch (record-plan.ts): the same row as
   * `add(normalize(r, receivedUs))`, without the row object.
   */
  addRecord(r: CollectedRecord, receivedUs: bigint): void {
    if (!this.hold(r.exporter, r.odid)) return
    this.planner.append(this.batch, r, receivedUs, this.names)
    this.added()
  }

  /** Counters of the record planner: plans compiled, records planned, records that took normalize(). */
  get planStats(): Readonly<RecordPlanner['stats']> {
    return this.planner.stats
  }

  private added(): void {
    if (this.batch.length + this.typed.length >= this.maxRows) this.kick()
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.kick(), this.maxDelayMs)
      this.timer.unref()
    }
  }

  /** A flush in the background: a failure is reported through onError and retried with the next flush. */
  private kick(): void {
    this.flush().catch(() => {})
  }

  /** Writes what is buffered; resolves when it (and every earlier flush) is stored. */
  flush(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const batch = this.batch
    const typed = this.typed
    if (batch.length + typed.length > 0) {
      const owners = this.owners
      const typedOwners = this.typedOwners
      this.batch = emptyBatch(this.names)
      this.typed = this.newTyped()
      this.owners = undefined
      this.typedOwners = undefined
      let typedDone = false
      this.chain = this.chain.then(async () => {
        try {
          if (typed.length > 0) {
            if (this.store.insertTyped !== undefined) await this.store.insertTyped(typed, typedOwners)
            else await this.store.insert(typed.toColumnBatch(), typedOwners)
          }
          typedDone = true
          if (batch.length > 0) await this.store.insert(batch, owners)
          this.stats.rows += batch.length + typed.length
          this.stats.flushes++
        } catch (e) {
          this.stats.errors++
          this.opts.onError?.(e)
          // Keep the rows not stored: put them in front of what arrived since, for the next flush.
          const rest = this.batch
          this.batch = emptyBatch(this.names)
          if (!typedDone) {
            const t = typed.toColumnBatch()
            for (let i = 0; i < t.length; i++) pushRow(this.batch, rowAt(t, i), this.names)
          }
          for (let i = 0; i < batch.length; i++) pushRow(this.batch, rowAt(batch, i), this.names)
          for (let i = 0; i < rest.length; i++) pushRow(this.batch, rowAt(rest, i), this.names)
          throw e
        }
      })
      const done = this.chain
      this.chain = done.catch(() => {})
      return done
    }
    return this.chain
  }

  /** Flushes everything and closes the store. */
  async close(): Promise<void> {
    await this.flush()
    await this.store.close()
  }
}

function rowAt(b: ColumnBatch, i: number): FlowRow {
  const row: FlowRow = {}
  for (const [n, vs] of Object.entries(b.columns)) row[n] = vs[i] ?? null
  return row
}
