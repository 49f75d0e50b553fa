/**
 * The embedded flow store: DuckDB (`@duckdb/node-api`) in one file, `./data/flowtel.duckdb` by default.
 *
 * - Migrations are named steps recorded in `flowtel_migrations`, each run once; after them every column the
 *   layout needs is added if missing (ADD COLUMN IF NOT EXISTS), so `migrate()` is idempotent and an older
 *   file is upgraded in place.
 * - Lazy columns (schema/ddl.ts): a new file stores its rows in `flows_stored`, created with the core
 *   columns only (ddl.ts CORE_COLUMNS); the first batch holding a value for a column it lacks adds that
 *   column (the appended rows committed first, then ADD COLUMN and the view recreated in one transaction)
 *   before it is appended. Readers see `flows`, a view with every column of the column table, an absent
 *   one as a typed NULL, so queries, filters, top-N and raw SQL read the logical table as before. Why: a
 *   column no row holds still costs DuckDB per row appended (its validity, its segments and their
 *   compression at commit): the 78 of 105 columns routers and the probe's default templates never fill took
 *   about half of DuckDB's append CPU (bench/ingest-ab.bench.ts). Adding a column is a catalog change plus a
 *   NULL column for the rows already stored (about 60 ms CPU for 5 million rows), once per file and column.
 *   A file made before lazy columns (`flows` a table with every column) keeps that full layout; writes go to
 *   the table (`storedTable()`), reads to `flows` in either layout.
 * - Inserts go through DuckDB's appender (one per batch, flushed and closed before insert resolves), by data
 *   chunk: each column's vector filled in JS and handed over whole.
 * - Retention (retain): by age, rows whose time_received is older than maxAgeMs; by size, at most maxRows
 *   rows, the oldest by time_received deleted first. Rows, not bytes: DuckDB does not give the file space of
 *   deleted rows back until a later checkpoint, so a row cap is what can be enforced exactly (bytes per stored
 *   flow is reported by the benchmark).
 * - Checkpoints: one per CHECKPOINT_ROWS rows committed, besides the one at close, so a checkpoint's
 *   memory and time stay those of a row group, not of every row stored since the open (CHECKPOINT_ROWS).
 *   DuckDB's memory_limit is MEMORY_LIMIT unless set.
 * - All statements on the connection run one after another.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import {
  BOOLEAN,
  DuckDBDataChunk,
  DuckDBInstance,
  DuckDBTimestampValue,
  type DuckDBAppender,
  UBIGINT,
  UHUGEINT,
  VARCHAR,
  type DuckDBConnection,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api'
import duckdb from '@duckdb/node-bindings'
import { COLUMNS, COLUMN_BY_NAME, FLOWS_TABLE, type Column, type ValueKind } from '../schema/columns.js'
import {
  CORE_COLUMNS,
  FLOWS_STORED,
  duckdbAddColumns,
  duckdbCreateStoredTable,
  duckdbCreateTable,
  duckdbFlowsView,
  ident,
} from '../schema/ddl.js'
import {
  compileQuery,
  DuckDbDialect,
  queryUsesOptions,
  type FlowQuery,
  type ParamType,
} from '../query/sql.js'
import { duckdbJoins } from '../query/joined.js'
import { keyText } from '../schema/ip-key.js'
import {
  OPTIONS_TABLE,
  chunks,
  duckdbOptionsInsert,
  duckdbOptionsTable,
  duckdbOptionsTrim,
  latestOptionsSql,
  unprefixLatest,
  type OptionsQuery,
} from './options-store.js'
import type { OptionRow } from './options-rows.js'
import { CHUNK_ROWS, ChunkScratch, fillVector, fillVectorTyped } from './duckdb-chunk.js'
import type { TypedBatch, TypedColumn } from './typed-batch.js'
import { TOTAL_MAX, type RowValue } from './normalize.js'
import type { ColumnBatch, FlowStore, QueryResult, RetentionPolicy } from './store.js'

export const DEFAULT_DUCKDB_PATH = './data/flowtel.duckdb'

/** How a file holds the flows (see the file comment): `flows` a full table, or a view over `flows_stored`. */
type Layout = 'full' | 'lazy'

/**
 * Named, ordered migration steps; a step never changes once released (add a new one instead). A step with
 * a layout runs only in files of that layout (a new file is lazy: 0001_flows never runs in it).
 */
const MIGRATIONS: ReadonlyArray<{ name: string; sql: () => string[]; layout?: Layout }> = [
  { name: '0001_flows', sql: () => [duckdbCreateTable()], layout: 'full' },
  { name: '0002_options', sql: () => [duckdbOptionsTable()] },
  { name: '0004_flows_lazy', sql: () => [duckdbCreateStoredTable()], layout: 'lazy' },
]

/** The migration step that capped stored totals at TOTAL_MAX (run after the sum columns exist). */
const TOTALS_CAPPED = '0003_totals_int64'

const PARAM_TYPES: Record<ParamType, DuckDBType | undefined> = {
  UBIGINT,
  UHUGEINT,
  VARCHAR,
  BOOLEAN,
  TIMESTAMP: undefined,
}

/**
 * Appended rows are committed once this many wait (DuckDB's row group size: a commit of at least a row group
 * is written straight to the file, a smaller one goes through the write-ahead log and is copied again at the
 * next checkpoint; 10 000-row commits cost the engine about four times the CPU per row), or COMMIT_DELAY_MS
 * after the first of them, or before anything else runs on the connection (a query sees every row inserted
 * before it), and at close. The delay is what a crash may lose; it is long enough for 10 000 records/s to
 * fill row groups (at 2 s every commit took the log, and the collector about 20 % more CPU per record).
 */
const COMMIT_ROWS = 122_880
const COMMIT_DELAY_MS = 15_000

export interface DuckDbStoreOptions {
  /** Commit appended rows when this many wait (default 122 880, one row group). */
  commitRows?: number
  /** Commit appended rows at most this many ms after the first of them was inserted (default 15 000). */
  commitDelayMs?: number
  /**
   * DuckDB threads (its `threads` setting) while appending, committing and applying retention: default 1
   * (INGEST_THREADS).
   */
  ingestThreads?: number
  /** DuckDB threads while running a query (query, options, sql): default DuckDB's own, one per core. */
  queryThreads?: number
  /**
   * DuckDB's `memory_limit` (its buffer manager: cached table blocks, checkpoints, query operators, which
   * spill to disk past it), as DuckDB writes sizes: `512MB`, `2GiB`. Default MEMORY_LIMIT.
   */
  memoryLimit?: string
  /**
   * CHECKPOINT once this many rows were committed since the last checkpoint; 0: only at close (and when
   * DuckDB's own write-ahead-log size trigger fires). Default CHECKPOINT_ROWS.
   */
  checkpointRows?: number
}

/**
 * DuckDB's memory limit unless set. DuckDB's own default is 80 % of the machine's memory, and its buffer
 * manager keeps the blocks written since the open cached until it reaches that limit: about 46 MB per
 * million rows of the probe's shape (duckdb_memory() BASE_TABLE, 139 MB after 3 million), so without a
 * limit what it holds grows with the rows a long-running collector stores. The limit does not lower the
 * resident size of a short flood (memory DuckDB frees is kept by the process for reuse: CHECKPOINT_ROWS).
 */
export const MEMORY_LIMIT = '1GB'

/**
 * Rows committed between checkpoints (one row group). Appended row groups go straight to the file and the
 * write-ahead log holds only their place, so DuckDB's own trigger (the log's size) never fired while
 * ingesting, and the checkpoint at close rewrote (compacted) every row stored since the open at once: 3
 * million rows took the collector from about 440 MB resident to 1.1-1.3 GB, for 4-8 s. A checkpoint per
 * row group does the same work in steps; the memory a step frees is not all given back to the system, so
 * the process keeps about what its largest step took (after the same flood, four row groups a step: 650-770
 * MB resident; one: 560-630 MB, and 0.5-1.7 s at close), for 5-7 % more CPU per record to exit (paired
 * runs; docs/store.md "DuckDB memory").
 */
export const CHECKPOINT_ROWS = 122_880

/** A DuckDB size (`512MB`, `2GiB`): the text; throws for anything else. */
export function memoryLimitSetting(text: string): string {
  const t = text.trim()
  if (!/^[1-9][0-9]{0,6}(?:[KMGT]i?B)$/.test(t))
    throw new Error(`bad DuckDB memory limit "${text}": expected a size such as 512MB or 2GiB`)
  return t
}

/**
 * DuckDB threads for ingest. One: the append and commit CPU per record is what bounds ingest on a busy
 * collector, and DuckDB's extra threads added to it (in-process harness pinned to one core, 6 paired runs:
 * 0.88 of the CPU with one thread; bench/lib/ingest-inprocess.ts) without making a commit take less CPU.
 */
export const INGEST_THREADS = 1

interface StoredColumn {
  readonly name: string
  /** undefined: a column this release does not know (appended as NULL). */
  readonly kind: ValueKind | undefined
}

/** Whether rows [0, length) of a column array hold a value (a cell past the array's end is NULL). */
function holdsValue(values: readonly RowValue[] | undefined, length: number): boolean {
  if (values === undefined) return false
  const n = Math.min(length, values.length)
  for (let i = 0; i < n; i++) if (values[i] !== null && values[i] !== undefined) return true
  return false
}

/** Whether rows [0, length) of a typed column hold a value (a validity bit set). */
function holdsTyped(t: TypedColumn | undefined, length: number): boolean {
  if (t === undefined) return false
  const octets = Math.min(t.valid.length, Math.ceil(length / 8))
  for (let i = 0; i < octets; i++) if (t.valid[i] !== 0) return true
  return false
}

/** A value read back: timestamps as bigint µs, plain JS values otherwise. */
function fromDuck(v: DuckDBValue): RowValue {
  if (v === null || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string') return v
  if (typeof v === 'boolean') return v
  if (v instanceof DuckDBTimestampValue) return v.micros
  return String(v)
}

export class DuckDbStore implements FlowStore {
  readonly optionsTable = OPTIONS_TABLE
  private chain: Promise<unknown> = Promise.resolve()
  /**
   * The stored table's physical column order (the appender writes in it): columns added by ADD COLUMN are
   * last, and columns unknown to this release get NULL.
   */
  private layout: StoredColumn[] | undefined
  /** The columns of the column table the stored table lacks (lazy layout), with `layout`. */
  private absent: Column[] = []
  /** The file's layout (see the file comment), known after migrate() or the first write. */
  private flowsLayout: Layout | undefined
  /** The appender of rows not yet committed (kept open across inserts, see COMMIT_ROWS). */
  private appender: DuckDBAppender | undefined
  private uncommitted = 0
  /** Rows committed since the last checkpoint (see CHECKPOINT_ROWS). */
  private sinceCheckpoint = 0
  private commitTimer: NodeJS.Timeout | undefined
  /** A commit that failed after its inserts had resolved: reported by the next insert. */
  private commitError: unknown
  private readonly scratch = new ChunkScratch()
  private readonly commitRows: number
  private readonly commitDelayMs: number
  private readonly checkpointRows: number

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    readonly path: string,
    opts: DuckDbStoreOptions,
    /** DuckDB threads between queries (ingest) and while one runs. */
    readonly threads: { readonly ingest: number; readonly query: number },
  ) {
    this.commitRows = opts.commitRows ?? COMMIT_ROWS
    this.commitDelayMs = opts.commitDelayMs ?? COMMIT_DELAY_MS
    this.checkpointRows = Math.max(0, Math.floor(opts.checkpointRows ?? CHECKPOINT_ROWS))
  }

  /** Opens (creating) the file; `:memory:` for a store without one. Call migrate() before use. */
  static async open(path: string = DEFAULT_DUCKDB_PATH, opts: DuckDbStoreOptions = {}): Promise<DuckDbStore> {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    const instance = await DuckDBInstance.create(path)
    const conn = await instance.connect()
    const count = (n: number | undefined, dflt: number): number =>
      n !== undefined && Number.isFinite(n) ? Math.max(1, Math.floor(n)) : dflt
    const own = Number(
      (await conn.runAndReadAll("SELECT current_setting('threads') AS t")).getRowObjectsJS()[0]?.t ?? 1,
    )
    const threads = {
      ingest: count(opts.ingestThreads, INGEST_THREADS),
      query: count(opts.queryThreads, own),
    }
    if (threads.ingest !== own) await conn.run(`SET threads = ${threads.ingest}`)
    await conn.run(`SET memory_limit = '${memoryLimitSetting(opts.memoryLimit ?? MEMORY_LIMIT)}'`)
    return new DuckDbStore(instance, conn, path, opts, threads)
  }

  /** Runs `f` with the query threads (and back to the ingest threads after it). */
  private async withQueryThreads<T>(f: () => Promise<T>): Promise<T> {
    const { ingest, query } = this.threads
    if (ingest === query) return f()
    await this.conn.run(`SET threads = ${query}`)
    try {
      return await f()
    } finally {
      await this.conn.run(`SET threads = ${ingest}`)
    }
  }

  /**
   * Runs `f` after every earlier operation (one connection, one statement at a time). Rows appended but not
   * yet committed are committed first, unless `f` is an insert (which appends to them).
   */
  private serial<T>(f: () => Promise<T>, appends = false): Promise<T> {
    const p = this.chain.then(() => {
      if (!appends) this.commit()
      return f()
    })
    this.chain = p.catch(() => {})
    return p
  }

  /** Commits the appended rows and closes the appender (synchronous: nothing else runs meanwhile). */
  private commit(): void {
    if (this.commitTimer !== undefined) clearTimeout(this.commitTimer)
    this.commitTimer = undefined
    const a = this.appender
    if (a === undefined) return
    this.appender = undefined
    this.sinceCheckpoint += this.uncommitted
    this.uncommitted = 0
    try {
      a.flushSync()
    } finally {
      a.closeSync()
    }
  }

  migrate(): Promise<void> {
    return this.serial(async () => {
      await this.conn.run(
        'CREATE TABLE IF NOT EXISTS flowtel_migrations (name VARCHAR PRIMARY KEY, applied TIMESTAMP DEFAULT current_timestamp)',
      )
      const done = new Set(
        (await this.conn.runAndReadAll('SELECT name FROM flowtel_migrations'))
          .getRowObjectsJS()
          .map((r) => r.name as string),
      )
      const layout = await this.fileLayout()
      const table = layout === 'lazy' ? FLOWS_STORED : FLOWS_TABLE
      for (const m of MIGRATIONS) {
        if (done.has(m.name) || (m.layout !== undefined && m.layout !== layout)) continue
        await this.conn.run('BEGIN TRANSACTION')
        try {
          for (const s of m.sql()) await this.conn.run(s)
          await this.conn.run('INSERT INTO flowtel_migrations (name) VALUES ($1)', [m.name])
          await this.conn.run('COMMIT')
        } catch (e) {
          await this.conn.run('ROLLBACK')
          throw e
        }
      }
      this.layout = undefined
      const before = new Set((await this.tableLayout()).map((c) => c.name))
      // Full layout: every column of the column table; lazy: the core ones (a later release may add some).
      const needed = layout === 'lazy' ? COLUMNS.filter((c) => CORE_COLUMNS.has(c.name)) : COLUMNS
      for (const s of duckdbAddColumns(needed, table)) await this.conn.run(s)
      // A sum column added to a table with rows: fill it for them (capped like ingest, normalize.ts total()).
      // Its operands may be absent from a lazy table (never held a value): they count 0.
      this.layout = undefined
      const stored = new Set((await this.tableLayout()).map((c) => c.name))
      const operand = (n: string): string => (stored.has(n) ? ident(n) : 'NULL')
      for (const c of needed)
        if (c.sumOf !== undefined && !before.has(c.name)) {
          const [x, y] = c.sumOf.map(operand) as [string, string]
          await this.conn.run(
            `UPDATE ${table} SET ${ident(c.name)} = least(coalesce(${x}, 0)::UHUGEINT + ` +
              `coalesce(${y}, 0), ${TOTAL_MAX})::UBIGINT WHERE ${ident(c.name)} IS NULL`,
          )
        }
      // Totals stored before the cap moved from 2^64−1 to 2^63−1 are capped once: top-N sums them as BIGINT.
      if (!done.has(TOTALS_CAPPED)) {
        for (const c of needed)
          if (c.sumOf !== undefined)
            await this.conn.run(
              `UPDATE ${table} SET ${ident(c.name)} = ${TOTAL_MAX} WHERE ${ident(c.name)} > ${TOTAL_MAX}`,
            )
        await this.conn.run('INSERT INTO flowtel_migrations (name) VALUES ($1)', [TOTALS_CAPPED])
      }
      // The view's columns follow the column table of this release (a column it added reads as NULL).
      if (layout === 'lazy') await this.conn.run(duckdbFlowsView([...stored]))
    })
  }

  /**
   * The file's layout: full when `flows` is a table (a file made before lazy columns), else lazy (also
   * for a new file, where migrate() creates the stored table and the view).
   */
  private async fileLayout(): Promise<Layout> {
    if (this.flowsLayout !== undefined) return this.flowsLayout
    const r = await this.conn.runAndReadAll(
      "SELECT table_type FROM information_schema.tables WHERE table_schema = 'main' AND table_name = $1",
      [FLOWS_TABLE],
    )
    const type = r.getRowObjectsJS()[0]?.table_type
    this.flowsLayout = type === 'BASE TABLE' ? 'full' : 'lazy'
    return this.flowsLayout
  }

  /**
   * The table the rows are stored in, with the columns `names` (those of the column table it lacks added
   * first): for writers other than insert (bench/lib/generated-flows.ts INSERT … SELECT). Runs in order
   * with the other operations.
   */
  storedTable(names: readonly string[] = []): Promise<string> {
    return this.serial(async () => {
      const layout = await this.fileLayout()
      if (layout === 'full') return FLOWS_TABLE
      await this.tableLayout()
      const want = new Set(names)
      const missing = this.absent.filter((c) => want.has(c.name))
      if (missing.length > 0) await this.addColumns(missing)
      return FLOWS_STORED
    })
  }

  /** The stored table's columns in physical order (cached until the table changes). */
  private async tableLayout(): Promise<StoredColumn[]> {
    if (this.layout !== undefined) return this.layout
    const table = (await this.fileLayout()) === 'lazy' ? FLOWS_STORED : FLOWS_TABLE
    const r = await this.conn.runAndReadAll(
      "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = $1 " +
        'ORDER BY ordinal_position',
      [table],
    )
    const layout = r.getRowObjectsJS().map((row) => {
      const name = row.column_name as string
      return { name, kind: COLUMN_BY_NAME.get(name)?.kind }
    })
    const stored = new Set(layout.map((c) => c.name))
    this.absent = COLUMNS.filter((c) => !stored.has(c.name))
    this.layout = layout
    return layout
  }

  /**
   * Lazy layout: adds columns to the stored table and recreates the view, in one transaction, after
   * committing the appended rows (the appender is made for the table's columns; the next insert makes a
   * new one).
   */
  private async addColumns(columns: readonly Column[]): Promise<void> {
    this.commit()
    await this.conn.run('BEGIN TRANSACTION')
    try {
      for (const s of duckdbAddColumns(columns, FLOWS_STORED)) await this.conn.run(s)
      this.layout = undefined
      const stored = (await this.tableLayout()).map((c) => c.name)
      await this.conn.run(duckdbFlowsView(stored))
      await this.conn.run('COMMIT')
    } catch (e) {
      this.layout = undefined
      await this.conn.run('ROLLBACK')
      throw e
    }
  }

  /**
   * Lazy layout: adds the columns of the column table the stored table lacks and the batch holds a value
   * for (`holds(name)`); resolves to the stored table's columns.
   */
  private async withColumnsFor(holds: (name: string) => boolean): Promise<StoredColumn[]> {
    const layout = await this.tableLayout()
    if (this.flowsLayout !== 'lazy' || this.absent.length === 0) return layout
    const missing = this.absent.filter((c) => holds(c.name))
    if (missing.length === 0) return layout
    await this.addColumns(missing)
    return this.tableLayout()
  }

  /** Names of the applied migration steps, in order. */
  migrations(): Promise<string[]> {
    return this.serial(async () =>
      (await this.conn.runAndReadAll('SELECT name FROM flowtel_migrations ORDER BY name'))
        .getRowObjectsJS()
        .map((r) => r.name as string),
    )
  }

  /**
   * Appends a batch column by column: data chunks of up to 2048 rows whose vectors are filled in bulk
   * (duckdb-chunk.ts), so the cost per row is a few typed-array writes, not one native call per cell. The
   * rows are committed with those of later batches (COMMIT_ROWS), so insert resolves once they are in the
   * appender: any later operation on the store, and close, sees them committed.
   */
  insert(batch: ColumnBatch): Promise<void> {
    return this.append(
      batch.length,
      (n) => holdsValue(batch.columns[n], batch.length),
      (layout) => {
        const cols = layout.map((c) => batch.columns[c.name])
        return (vector, j, from, n, s) => fillVector(vector, layout[j]!.kind, cols[j], from, n, s)
      },
    )
  }

  /** insert() for a typed batch (typed-batch.ts): its columns are copied into the vectors as they are. */
  insertTyped(batch: TypedBatch): Promise<void> {
    return this.append(
      batch.length,
      (n) => holdsTyped(batch.columns.get(n), batch.length),
      (layout) => {
        const cols = layout.map((c) => batch.columns.get(c.name))
        return (vector, j, from, n, s) => fillVectorTyped(vector, cols[j], from, n, s)
      },
    )
  }

  /**
   * Appends `length` rows chunk by chunk, each column's vector filled by the filler made for the layout;
   * `holds(name)`: whether the batch has a value in that column (lazy layout: a column the stored table lacks
   * is added first).
   */
  private append(
    length: number,
    holds: (name: string) => boolean,
    filler: (
      layout: StoredColumn[],
    ) => (vector: duckdb.Vector, column: number, from: number, n: number, s: ChunkScratch) => void,
  ): Promise<void> {
    return this.serial(async () => {
      if (this.commitError !== undefined) {
        const e = this.commitError
        this.commitError = undefined
        throw e instanceof Error ? e : new Error(`DuckDB commit failed: ${JSON.stringify(e)}`)
      }
      if (length === 0) return
      await this.fileLayout()
      const layout = await this.withColumnsFor(holds)
      const a = (this.appender ??= await this.conn.createAppender(
        this.flowsLayout === 'lazy' ? FLOWS_STORED : FLOWS_TABLE,
      ))
      const types = layout.map((_, j) => a.columnType(j))
      const fill = filler(layout)
      const s = this.scratch
      for (let from = 0; from < length; from += CHUNK_ROWS) {
        const n = Math.min(CHUNK_ROWS, length - from)
        const chunk = DuckDBDataChunk.create(types, n)
        for (let j = 0; j < layout.length; j++)
          fill(duckdb.data_chunk_get_vector(chunk.chunk, j), j, from, n, s)
        a.appendDataChunk(chunk)
        // Let the event loop in between chunks (the listener's socket keeps being read while a batch is
        // stored).
        if (from + n < length) await new Promise<void>((resolve) => setImmediate(resolve))
      }
      this.uncommitted += length
      if (this.uncommitted >= this.commitRows) {
        this.commit()
        await this.checkpointDue()
      } else
        this.commitTimer ??= setTimeout(() => {
          this.commitTimer = undefined
          this.serial(() => this.checkpointDue()).catch((e: unknown) => {
            this.commitError = e
          })
        }, this.commitDelayMs).unref()
    }, true)
  }

  /** Checkpoints once checkpointRows rows were committed since the last checkpoint (CHECKPOINT_ROWS). */
  private async checkpointDue(): Promise<void> {
    if (this.checkpointRows === 0 || this.sinceCheckpoint < this.checkpointRows) return
    this.sinceCheckpoint = 0
    // The rows are committed: a checkpoint that fails (disk full) must not fail their insert, which would be
    // tried again and store them twice. The next one, or the one at close, writes the same.
    await this.conn.run('CHECKPOINT').catch(() => {})
  }

  async query(q: FlowQuery): Promise<QueryResult> {
    // The options kinds present decide which joins the query makes (query/joined.ts); asked only when the
    // query names a joined field.
    const kinds = queryUsesOptions(q)
      ? new Set(
          (await this.sql(`SELECT DISTINCT kind FROM ${OPTIONS_TABLE}`)).rows.map((r) => String(r.kind)),
        )
      : new Set<string>()
    const {
      sql,
      params,
      addressColumns = [],
    } = compileQuery(q, new DuckDbDialect(duckdbJoins(OPTIONS_TABLE, kinds)))
    const r = await this.sql(
      sql,
      params.map((p) => p.value),
      params.map((p) => PARAM_TYPES[p.type]),
    )
    // Top-N by address: the groups' keys → address text.
    for (const row of r.rows)
      for (const n of addressColumns) {
        const key = row[n]
        row[n] = typeof key === 'bigint' ? keyText(key) : null
      }
    return r
  }

  async insertOptions(rows: readonly OptionRow[]): Promise<void> {
    for (const part of chunks(rows)) {
      const { sql, values } = duckdbOptionsInsert(part)
      await this.serial(() => this.conn.run(sql, values))
    }
  }

  async options(q: OptionsQuery): Promise<QueryResult> {
    return unprefixLatest(await this.sql(latestOptionsSql(OPTIONS_TABLE, 'arg_max', q)))
  }

  /** Runs one statement with bound values (with the query threads); rows come back with timestamps as µs. */
  sql(text: string, values: DuckDBValue[] = [], types?: (DuckDBType | undefined)[]): Promise<QueryResult> {
    return this.serial(async () => {
      const r = await this.withQueryThreads(() =>
        this.conn.runAndReadAll(text, values, types as DuckDBType[] | undefined),
      )
      const columns = r.columnNames()
      const rows = r.getRowObjects().map((o) => {
        const row: Record<string, RowValue> = {}
        for (const c of columns) row[c] = fromDuck(o[c] ?? null)
        return row
      })
      return { columns, rows }
    })
  }

  retain(policy: RetentionPolicy, nowMs = Date.now()): Promise<number> {
    return this.serial(async () => {
      const table = (await this.fileLayout()) === 'lazy' ? FLOWS_STORED : FLOWS_TABLE
      let deleted = 0
      if ((policy.maxAgeMs ?? 0) > 0) {
        const cutoff = BigInt(Math.floor(nowMs - (policy.maxAgeMs ?? 0))) * 1000n
        const r = await this.conn.run(
          `DELETE FROM ${table} WHERE time_received < make_timestamp($1::BIGINT)`,
          [cutoff],
        )
        deleted += r.rowsChanged
      }
      const max = Math.floor(policy.maxRows ?? 0)
      if (max > 0) {
        const r = await this.conn.run(
          `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} ` +
            `ORDER BY time_received DESC, rowid DESC OFFSET ${max})`,
        )
        deleted += r.rowsChanged
      }
      if ((policy.maxAgeMs ?? 0) > 0 || max > 0) await this.trimOptions(nowMs)
      return deleted
    })
  }

  /** The options facts superseded before the oldest flow kept (options-store.ts "Retention"). */
  private async trimOptions(nowMs: number): Promise<void> {
    const r = await this.conn.runAndReadAll(`SELECT epoch_us(min(time_received)) AS t FROM ${FLOWS_TABLE}`)
    const oldest = r.getRowObjectsJS()[0]?.t
    const cutoff = typeof oldest === 'bigint' ? oldest : BigInt(Math.floor(nowMs)) * 1000n
    if (cutoff > 0n) await this.conn.run(duckdbOptionsTrim(), [cutoff])
  }

  count(): Promise<number> {
    return this.serial(async () => {
      const r = await this.conn.runAndReadAll(`SELECT count(*) AS n FROM ${FLOWS_TABLE}`)
      return Number(r.getRowObjectsJS()[0]?.n ?? 0)
    })
  }

  close(opts: { checkpoint?: boolean } = {}): Promise<void> {
    return this.serial(async () => {
      // (serial committed the appended rows.) A checkpoint writes the WAL into the file, so the file alone
      // holds everything; without it (a shutdown past its deadline) the next open replays the WAL.
      // (A checkpoint already running cannot be cut short: DuckDB let one of 4 million rows run its 7 s
      // after an interrupt 1 s in.)
      if (opts.checkpoint === false) await this.conn.run('PRAGMA disable_checkpoint_on_shutdown')
      else await this.conn.run('CHECKPOINT')
      this.conn.closeSync()
      this.instance.closeSync()
    })
  }
}

/** Settings a DuckDB store URL may carry after `?` (name=value, joined by &) → the option they set. */
const URL_SETTINGS = {
  ingest_threads: 'ingestThreads',
  query_threads: 'queryThreads',
  memory_limit: 'memoryLimit',
  checkpoint_rows: 'checkpointRows',
} as const

type UrlOptions = Pick<DuckDbStoreOptions, (typeof URL_SETTINGS)[keyof typeof URL_SETTINGS]>

/**
 * `duckdb:PATH` (or `duckdb:` / `duckdb` for the default path) → the path; throws for other stores. The
 * path may end in `?ingest_threads=N&query_threads=N&memory_limit=SIZE&checkpoint_rows=N`
 * (DuckDbStoreOptions).
 */
export function parseStoreUrl(url: string): { kind: 'duckdb'; path: string; options: UrlOptions } {
  const m = /^duckdb(?::(.*))?$/.exec(url.trim())
  if (m === null)
    throw new Error(
      `unsupported store "${url}": expected duckdb:PATH or clickhouse:http://HOST:PORT/DATABASE`,
    )
  let path = m[1] ?? ''
  const options: { -readonly [K in keyof UrlOptions]: UrlOptions[K] } = {}
  const q = /\?([a-z_]+=[^&]*(?:&[a-z_]+=[^&]*)*)$/.exec(path)
  if (q !== null) {
    path = path.slice(0, q.index)
    for (const kv of (q[1] ?? '').split('&')) {
      const [k = '', v = ''] = kv.split('=')
      if (!Object.hasOwn(URL_SETTINGS, k))
        throw new Error(
          `bad DuckDB store URL "${url}": unknown setting ${k} (${Object.keys(URL_SETTINGS).join(', ')})`,
        )
      const option = URL_SETTINGS[k as keyof typeof URL_SETTINGS]
      if (option === 'memoryLimit') {
        try {
          options.memoryLimit = memoryLimitSetting(v)
        } catch (e) {
          throw new Error(`bad DuckDB store URL "${url}": ${e instanceof Error ? e.message : String(e)}`)
        }
      } else if (option === 'checkpointRows') {
        if (!/^(?:0|[1-9][0-9]{0,9})$/.test(v))
          throw new Error(`bad DuckDB store URL "${url}": ${k} must be 0 to 9999999999`)
        options.checkpointRows = Number(v)
      } else {
        if (!/^[1-9][0-9]{0,3}$/.test(v))
          throw new Error(`bad DuckDB store URL "${url}": ${k} must be 1 to 9999`)
        options[option] = Number(v)
      }
    }
  }
  return { kind: 'duckdb', path: path === '' ? DEFAULT_DUCKDB_PATH : path, options }
}
