/**
 * The scale-out flow store: ClickHouse over HTTP (`@clickhouse/client`), `--store clickhouse:URL` with
 * URL = http[s]://[user:password@]host:port[/database] (database `default` when absent).
 *
 * - Version: `SELECT version()` at open. A new table gets the server's generation (clickhouse-version.ts);
 *   an existing table keeps its own, read from its column types, and every statement follows the table.
 * - No query parameters (18.16 has none): values are written into SQL only by clickhouse-sql.ts.
 * - Migrations: named steps recorded in `flowtel_migrations`; after them every column the table lacks is
 *   added (18.16 has no ADD COLUMN IF NOT EXISTS, so the store compares with system.columns), and on servers
 *   that take them (20.1 and later) every data-skipping index it lacks (clickhouse-ddl.ts SKIP_INDEXES: minmax
 *   on the flow times, so --since/--until prune; read from system.tables' create_table_query).
 * - Inserts: one HTTP request per batch in RowBinary (clickhouse-rowbinary.ts), naming the columns, so a
 *   table with more (newer) columns stays writable. The BatchWriter (store.ts) batches by size and time.
 * - Retention by age: modern servers also get a table TTL (`MODIFY TTL`, not re-materialised); on every
 *   server retain() drops whole day partitions that are older than the cutoff and deletes the rest with one
 *   `ALTER TABLE … DELETE` mutation, waiting for it, so the result is exact as in DuckDB. By size: the N most
 *   recently received rows are kept, and rows received at the same microsecond as the N-th are kept too.
 * - A Distributed table (the cluster layout, clickhouse-ddl.ts) is written and read like a local one;
 *   retention on it is left to the TTL of the local tables (ALTER DELETE does not pass through Distributed).
 */
import { Readable } from 'node:stream'
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client'
import { COLUMNS, COLUMN_BY_NAME, COMPUTED_COLUMNS, FLOWS_TABLE, type Column } from '../schema/columns.js'
import { ipKey, keyText } from '../schema/ip-key.js'
import { compileQuery, queryUsesOptions, type FlowQuery, type SqlDialect } from '../query/sql.js'
import type { OptionRow } from './options-rows.js'
import {
  OPTIONS_TABLE,
  chunks,
  clickhouseJoins,
  clickhouseOptionsInsert,
  clickhouseOptionsTable,
  clickhouseOptionsTrimWhere,
  latestOptionsSql,
  unprefixLatest,
  type OptionsQuery,
} from './options-store.js'
import {
  MIGRATIONS_TABLE,
  addMissingColumns,
  addMissingIndexes,
  indexNames,
  createDatabase,
  createFlowsTable,
  createMigrationsTable,
  partitionBy,
  ttlClause,
} from './clickhouse-ddl.js'
import { encodeRowBinary, encodeRowBinaryTyped, type EncodedColumn } from './clickhouse-rowbinary.js'
import type { TypedBatch } from './typed-batch.js'
import {
  ADDRESS_SUFFIX,
  ClickHouseDialect,
  IP_SUFFIX,
  TIME_SUFFIX,
  chIdent,
  chString,
  chUInt,
} from './clickhouse-sql.js'
import {
  generationFor,
  parseVersion,
  supportsSkipIndexes,
  tableGeneration,
  type ClickHouseGeneration,
  type ClickHouseVersion,
} from './clickhouse-version.js'
import type { RowValue } from './normalize.js'
import type { ColumnBatch, FlowStore, QueryResult, RetentionPolicy } from './store.js'

export interface ClickHouseTarget {
  /** http[s]://host:port (no credentials, no path). */
  url: string
  database: string
  username?: string
  password?: string
}

/** The part after `clickhouse:` → server URL, database and credentials; throws with the expected form. */
export function parseClickHouseUrl(text: string): ClickHouseTarget {
  const form = 'expected clickhouse:http://HOST:PORT/DATABASE'
  let u: URL
  try {
    u = new URL(text)
  } catch {
    throw new Error(`bad ClickHouse store URL "${text}": ${form}`)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new Error(`bad ClickHouse store URL "${text}": ${form} (http or https)`)
  const path = decodeURIComponent(u.pathname.replace(/^\/+|\/+$/g, ''))
  const database = path === '' ? 'default' : path
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database))
    throw new Error(`bad ClickHouse database name "${database}" in "${text}": letters, digits and _`)
  if (u.search !== '' || u.hash !== '') throw new Error(`bad ClickHouse store URL "${text}": ${form}`)
  return {
    url: `${u.protocol}//${u.host}`,
    database,
    ...(u.username !== '' ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password !== '' ? { password: decodeURIComponent(u.password) } : {}),
  }
}

export interface ClickHouseStoreOptions {
  /** Milliseconds one HTTP request may take. Default 60 000 (retention polls its mutation in short requests). */
  requestTimeoutMs?: number
  /** Longest wait for a retention mutation. Default 300 000 ms. */
  mutationTimeoutMs?: number
}

interface TableInfo {
  engine: string
  generation: ClickHouseGeneration
  /** column name → ClickHouse type */
  types: Map<string, string>
}

const MIGRATIONS = ['0001_flows', '0002_options'] as const

/** How long the option kinds present are remembered between queries (another collector may add one). */
const KINDS_TTL_MS = 10_000

/** Strips Nullable(…) and LowCardinality(…) from a type name. */
function baseType(t: string): string {
  let s = t
  for (;;) {
    const m = /^(?:Nullable|LowCardinality)\((.*)\)$/.exec(s)
    if (m === null) return s
    s = m[1] ?? ''
  }
}

const BIG = /^(U?Int(64|128|256)|Decimal)/

/** A 64-bit integer as the JSON formats give it (a quoted decimal) → bigint. */
function toBig(v: unknown): bigint {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint') return BigInt(v)
  throw new Error(`ClickHouse: expected an integer, got ${JSON.stringify(v)}`)
}

/** One JSON-format cell → a row value like DuckDB's (u64 and counts as bigint, times as µs bigint). */
function fromClickHouse(name: string, type: string, v: unknown): RowValue {
  if (v === null || v === undefined) return null
  if (name.endsWith(IP_SUFFIX)) return typeof v === 'string' ? (ipKey(v) ?? null) : null
  if (name.endsWith(ADDRESS_SUFFIX)) {
    const key = typeof v === 'string' ? ipKey(v) : undefined
    return key !== undefined ? keyText(key) : null
  }
  if (name.endsWith(TIME_SUFFIX)) return toBig(v)
  const col = COLUMN_BY_NAME.get(name)
  if (col?.kind === 'bool') return v === true || v === 1 || v === '1'
  if (BIG.test(baseType(type))) return toBig(v)
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v
  return JSON.stringify(v)
}

function stripSuffix(name: string): string {
  if (name.endsWith(IP_SUFFIX)) return name.slice(0, -IP_SUFFIX.length)
  if (name.endsWith(ADDRESS_SUFFIX)) return name.slice(0, -ADDRESS_SUFFIX.length)
  if (name.endsWith(TIME_SUFFIX)) return name.slice(0, -TIME_SUFFIX.length)
  return name
}

export class ClickHouseStore implements FlowStore {
  private info: TableInfo | undefined
  private appliedTtl: number | undefined
  private kindsCache: { at: number; kinds: ReadonlySet<string> } | undefined
  readonly table: string

  private constructor(
    private readonly client: ClickHouseClient,
    readonly target: ClickHouseTarget,
    readonly version: ClickHouseVersion,
    private readonly opts: ClickHouseStoreOptions,
  ) {
    this.table = `${chIdent(target.database)}.${FLOWS_TABLE}`
  }

  /** Connects and reads the server version (and the table's layout when it exists). Call migrate() to create. */
  static async open(
    target: ClickHouseTarget | string,
    opts: ClickHouseStoreOptions = {},
  ): Promise<ClickHouseStore> {
    const t = typeof target === 'string' ? parseClickHouseUrl(target) : target
    const client = createClient({
      url: t.url,
      ...(t.username !== undefined ? { username: t.username } : {}),
      ...(t.password !== undefined ? { password: t.password } : {}),
      request_timeout: opts.requestTimeoutMs ?? 60_000,
      // Past a minute, progress headers keep a long statement's connection alive (the client asks for them).
      ...((opts.requestTimeoutMs ?? 0) > 60_000
        ? {
            clickhouse_settings: {
              send_progress_in_http_headers: 1,
              http_headers_progress_interval_ms: '10000',
            },
          }
        : {}),
      // A readonly=1 user may not change settings, and compression is one: keep responses plain.
      compression: { request: false, response: false },
      // Failures reach the caller as errors (the collector reports and retries); no second report on stderr.
      log: { level: ClickHouseLogLevel.OFF },
    })
    try {
      const r = await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })
      const rows = await r.json<{ v: string }>()
      const version = parseVersion(rows[0]?.v ?? '')
      const store = new ClickHouseStore(client, t, version, opts)
      await store.readTable()
      return store
    } catch (e) {
      await client.close()
      throw new Error(`cannot use ClickHouse at ${t.url}: ${e instanceof Error ? e.message : String(e)}`)
    }
  }

  /** The generation new tables get on this server. */
  get serverGeneration(): ClickHouseGeneration {
    return generationFor(this.version)
  }

  /** The generation statements follow: the table's when it exists, else the server's. */
  get generation(): ClickHouseGeneration {
    return this.info?.generation ?? this.serverGeneration
  }

  get engine(): string | undefined {
    return this.info?.engine
  }

  /** Whether the flows table exists (query refuses a missing store). */
  get exists(): boolean {
    return this.info !== undefined
  }

  private async readTable(): Promise<void> {
    const db = chString(this.target.database)
    const t = await this.rows(
      `SELECT engine FROM system.tables WHERE database = ${db} AND name = ${chString(FLOWS_TABLE)}`,
    )
    const engine = t[0]?.engine
    if (typeof engine !== 'string') {
      this.info = undefined
      return
    }
    const cols = await this.rows(
      `SELECT name, type FROM system.columns WHERE database = ${db} AND table = ${chString(FLOWS_TABLE)}`,
    )
    const types = new Map(cols.map((c) => [String(c.name), String(c.type)]))
    this.info = { engine, generation: tableGeneration(types.get('time_received') ?? ''), types }
  }

  /** Runs a statement that returns rows, as plain JSON objects (64-bit integers as strings). */
  private async rows(query: string): Promise<Array<Record<string, unknown>>> {
    const r = await this.client.query({ query, format: 'JSONEachRow' })
    return r.json<Record<string, unknown>>()
  }

  /** Runs a statement without a result. */
  async command(query: string): Promise<void> {
    await this.client.command({ query })
  }

  /** Runs a SELECT; values converted like query() results. */
  async sql(query: string): Promise<QueryResult> {
    const r = await this.client.query({ query, format: 'JSON' })
    const body = await r.json<Record<string, unknown>>()
    const meta = body.meta ?? []
    const columns = meta.map((m) => stripSuffix(m.name))
    const rows = body.data.map((d) => {
      const row: Record<string, RowValue> = {}
      for (const m of meta) row[stripSuffix(m.name)] = fromClickHouse(m.name, m.type, d[m.name])
      return row
    })
    return { columns, rows }
  }

  async migrate(): Promise<void> {
    const db = this.target.database
    await this.command(createDatabase(db))
    await this.command(createMigrationsTable(db))
    const done = new Set(
      (await this.rows(`SELECT DISTINCT name FROM ${chIdent(db)}.${MIGRATIONS_TABLE}`)).map((r) =>
        String(r.name),
      ),
    )
    const skipIndexes = supportsSkipIndexes(this.version)
    for (const m of MIGRATIONS) {
      if (done.has(m)) continue
      if (m === '0001_flows')
        await this.command(createFlowsTable({ generation: this.serverGeneration, database: db, skipIndexes }))
      if (m === '0002_options') await this.command(clickhouseOptionsTable(db))
      await this.command(
        `INSERT INTO ${chIdent(db)}.${MIGRATIONS_TABLE} (name, applied) VALUES (${chString(m)}, toUInt32(now()))`,
      )
    }
    await this.readTable()
    const info = this.info
    if (info === undefined) throw new Error(`ClickHouse: ${this.table} is missing after migration`)
    // A Distributed table (cluster layout) is upgraded with the cluster DDL on every node, not from here.
    if (info.engine === 'Distributed') return
    const add = addMissingColumns(new Set(info.types.keys()), { generation: info.generation, database: db })
    for (const s of add) await this.command(s)
    if (add.length > 0) await this.readTable()
    // A table created before the indexes, or on an older server, gets them (its older parts when they merge).
    if (skipIndexes && info.engine.endsWith('MergeTree'))
      for (const s of addMissingIndexes(await this.indexes(), { generation: info.generation, database: db }))
        await this.command(s)
  }

  /** The data-skipping indexes of the flows table, by name (empty where it has none, as on 18.16). */
  async indexes(): Promise<Set<string>> {
    const r = await this.rows(
      `SELECT create_table_query AS q FROM system.tables WHERE database = ${chString(this.target.database)} ` +
        `AND name = ${chString(FLOWS_TABLE)}`,
    )
    const q = r[0]?.q
    return indexNames(typeof q === 'string' ? q : '')
  }

  private requireTable(): TableInfo {
    if (this.info === undefined)
      throw new Error(
        `no flow table ${this.table} at ${this.target.url} (run migrate, or flowtel collect --store)`,
      )
    return this.info
  }

  async insert(batch: ColumnBatch): Promise<void> {
    if (batch.length === 0) return
    const cols = this.insertColumns(() => true)
    await this.insertRowBinary(cols, encodeRowBinary(batch, cols))
  }

  /** insert() for a typed batch: Nullable columns the batch has no value in are left out (NULL). */
  async insertTyped(batch: TypedBatch): Promise<void> {
    if (batch.length === 0) return
    const cols = this.insertColumns((c, nullable) => !nullable || batch.columns.has(c.name))
    await this.insertRowBinary(cols, encodeRowBinaryTyped(batch, cols))
  }

  /**
   * The batches in one INSERT: the columns any of them has (a batch without one writes NULL there), each
   * batch's RowBinary one after the other in the request body. ClickHouse takes a few large inserts far
   * faster than many small ones (each is a request and a part to merge later).
   */
  async insertTypedMany(batches: readonly TypedBatch[]): Promise<void> {
    const some = batches.filter((b) => b.length > 0)
    if (some.length === 0) return
    const cols = this.insertColumns((c, nullable) => !nullable || some.some((b) => b.columns.has(c.name)))
    await this.insertRowBinary(
      cols,
      some.map((b) => encodeRowBinaryTyped(b, cols)),
    )
  }

  /** The table's columns in COLUMNS order that `keep` accepts, with whether each is Nullable. */
  private insertColumns(keep: (c: Column, nullable: boolean) => boolean): EncodedColumn[] {
    const info = this.requireTable()
    const cols: EncodedColumn[] = []
    for (const c of COLUMNS) {
      const type = info.types.get(c.name)
      if (type === undefined) continue
      const nullable = type.includes('Nullable(')
      if (keep(c, nullable)) cols.push({ column: c, nullable })
    }
    return cols
  }

  private async insertRowBinary(
    cols: readonly EncodedColumn[],
    body: Buffer | readonly Buffer[],
  ): Promise<void> {
    const names = cols.map((c) => chIdent(c.column.name)).join(', ')
    const r = await this.client.exec({
      query: `INSERT INTO ${this.table} (${names}) FORMAT RowBinary`,
      values: Readable.from(Buffer.isBuffer(body) ? [body] : body),
    })
    // The response body is empty; read it to the end so the connection is reused.
    for await (const _ of r.stream as AsyncIterable<unknown>) void _
  }

  async query(q: FlowQuery): Promise<QueryResult> {
    const info = this.requireTable()
    const computed = new Set(COMPUTED_COLUMNS.map((c) => c.name).filter((n) => info.types.has(n)))
    const d: SqlDialect = new ClickHouseDialect(this.table, info.generation, computed)
    d.joins = clickhouseJoins(this.optionsTable, queryUsesOptions(q) ? await this.optionKinds() : new Set())
    const { sql } = compileQuery(q, d)
    return this.sql(sql)
  }

  /** The options table, qualified with the database. */
  get optionsTable(): string {
    return `${chIdent(this.target.database)}.${OPTIONS_TABLE}`
  }

  /**
   * Kinds in the options table (none when a store made by an older release has no such table). Remembered
   * for KINDS_TTL_MS (two round trips saved per query); this store's own options inserts forget it at once.
   */
  private async optionKinds(): Promise<ReadonlySet<string>> {
    const c = this.kindsCache
    if (c !== undefined && Date.now() - c.at < KINDS_TTL_MS) return c.kinds
    const kinds = await this.readOptionKinds()
    this.kindsCache = { at: Date.now(), kinds }
    return kinds
  }

  private async readOptionKinds(): Promise<Set<string>> {
    const t = await this.rows(
      `SELECT count() AS n FROM system.tables WHERE database = ${chString(this.target.database)} ` +
        `AND name = ${chString(OPTIONS_TABLE)}`,
    )
    if (Number(t[0]?.n ?? 0) === 0) return new Set()
    return new Set(
      (await this.rows(`SELECT DISTINCT kind FROM ${this.optionsTable}`)).map((r) => String(r.kind)),
    )
  }

  async insertOptions(rows: readonly OptionRow[]): Promise<void> {
    this.kindsCache = undefined
    for (const part of chunks(rows)) await this.command(clickhouseOptionsInsert(this.optionsTable, part))
  }

  async options(q: OptionsQuery): Promise<QueryResult> {
    return unprefixLatest(await this.sql(latestOptionsSql(this.optionsTable, 'argMax', q)))
  }

  async count(): Promise<number> {
    this.requireTable()
    const r = await this.rows(`SELECT count() AS n FROM ${this.table}`)
    return Number(r[0]?.n ?? 0)
  }

  private timeLiteral(us: bigint): string {
    return new ClickHouseDialect(this.table, this.generation).time(us)
  }

  private async countWhere(cond: string): Promise<number> {
    const r = await this.rows(`SELECT count() AS n FROM ${this.table} WHERE ${cond}`)
    return Number(r[0]?.n ?? 0)
  }

  /** Deletes rows with time_received < cutoffUs: whole day partitions first, then one mutation. */
  private async deleteBefore(cutoffUs: bigint): Promise<number> {
    if (cutoffUs <= 0n) return 0
    const cond = `time_received < ${this.timeLiteral(cutoffUs)}`
    const n = await this.countWhere(cond)
    if (n === 0) return 0
    const day = await this.rows(
      `SELECT ${partitionBy(this.generation).replace(/time_received/g, this.timeLiteral(cutoffUs))} AS d`,
    )
    const cutoffDay = Number(day[0]?.d ?? 0)
    const parts = await this.rows(
      `SELECT DISTINCT partition FROM system.parts WHERE database = ${chString(this.target.database)} ` +
        `AND table = ${chString(FLOWS_TABLE)} AND active`,
    )
    for (const p of parts) {
      const id = String(p.partition)
      if (/^\d{8}$/.test(id) && Number(id) < cutoffDay)
        await this.command(`ALTER TABLE ${this.table} DROP PARTITION ${chUInt(Number(id))}`)
    }
    if ((await this.countWhere(cond)) > 0) {
      await this.command(`ALTER TABLE ${this.table} DELETE WHERE ${cond}`)
      await this.waitForMutations()
    }
    return n
  }

  private async waitForMutations(table: string = FLOWS_TABLE): Promise<void> {
    const limit = Date.now() + (this.opts.mutationTimeoutMs ?? 300_000)
    for (;;) {
      const r = await this.rows(
        `SELECT count() AS n FROM system.mutations WHERE database = ${chString(this.target.database)} ` +
          `AND table = ${chString(table)} AND is_done = 0`,
      )
      if (Number(r[0]?.n ?? 0) === 0) return
      if (Date.now() > limit) throw new Error(`ClickHouse: retention mutation on ${this.table} still running`)
      await new Promise((res) => setTimeout(res, 50))
    }
  }

  async retain(policy: RetentionPolicy, nowMs = Date.now()): Promise<number> {
    const info = this.requireTable()
    if (info.engine === 'Distributed') return 0
    let deleted = 0
    const age = policy.maxAgeMs ?? 0
    if (age > 0) {
      const seconds = Math.ceil(age / 1000)
      const ttl = ttlClause(info.generation, seconds)
      if (ttl !== undefined && this.appliedTtl !== seconds) {
        // Merges apply it from now on; the delete below handles what is already old.
        await this.client.command({
          query: `ALTER TABLE ${this.table} MODIFY ${ttl}`,
          clickhouse_settings: { materialize_ttl_after_modify: 0 },
        })
        this.appliedTtl = seconds
      }
      deleted += await this.deleteBefore(BigInt(Math.floor(nowMs - age)) * 1000n)
    }
    const max = Math.floor(policy.maxRows ?? 0)
    if (max > 0) {
      const r = await this.rows(
        `SELECT ${this.generation === 'modern' ? 'toUnixTimestamp64Micro(time_received)' : 'time_received'} AS t ` +
          `FROM ${this.table} ORDER BY time_received DESC LIMIT 1 OFFSET ${chUInt(max - 1)}`,
      )
      const t = r[0]?.t
      if (t !== undefined && t !== null) deleted += await this.deleteBefore(toBig(t))
    }
    if (age > 0 || max > 0) await this.trimOptions(nowMs)
    return deleted
  }

  /** The options facts superseded before the oldest flow kept (options-store.ts "Retention"). */
  private async trimOptions(nowMs: number): Promise<void> {
    if ((await this.readOptionKinds()).size === 0) return
    const r = await this.rows(
      `SELECT ${this.generation === 'modern' ? 'toUnixTimestamp64Micro(min(time_received))' : 'min(time_received)'} ` +
        `AS t, count() AS n FROM ${this.table}`,
    )
    const cutoff = Number(r[0]?.n ?? 0) > 0 ? toBig(r[0]?.t) : BigInt(Math.floor(nowMs)) * 1000n
    const where = clickhouseOptionsTrimWhere(this.optionsTable, cutoff)
    const n = await this.rows(`SELECT count() AS n FROM ${this.optionsTable} WHERE ${where}`)
    if (Number(n[0]?.n ?? 0) === 0) return
    await this.command(`ALTER TABLE ${this.optionsTable} DELETE WHERE ${where}`)
    await this.waitForMutations(OPTIONS_TABLE)
  }

  /** Drops the whole database (tests). */
  async dropDatabase(): Promise<void> {
    await this.command(`DROP DATABASE IF EXISTS ${chIdent(this.target.database)}`)
    this.info = undefined
  }

  async close(): Promise<void> {
    await this.client.close()
  }
}
