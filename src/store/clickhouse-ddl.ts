/**
 * ClickHouse DDL from the column table (schema/columns.ts), for both server generations
 * (clickhouse-version.ts), and the documented cluster layout (docs/store.md "ClickHouse cluster"):
 *
 * - Every column is Nullable (an absent element reads back as NULL, as in DuckDB) except the metadata the
 *   collector always fills (time_received, exporter, observation_domain, template_id, flow_version, which
 *   form the sort key) and the totals (total_bytes, total_packets: plain UInt64 sums group fast; DEFAULT
 *   computes them for rows written before they existed).
 * - legacy: `Nullable(T)` with T in plain 18.16 forms, partitioned by day of time_received (UInt64 µs), no
 *   TTL (retention deletes; see clickhouse.ts), and the computed IPv4 columns (columns.ts COMPUTED_COLUMNS)
 *   that top-N by address groups by.
 * - modern: `LowCardinality(Nullable(String))`, `Nullable(DateTime64(6)) CODEC(DoubleDelta, LZ4)`, IPv6,
 *   Bool, codecs, and `TTL time_received + INTERVAL n SECOND` when an age limit is given.
 * - Data-skipping indexes (servers from 20.1, clickhouse-version.ts; not 18.16): minmax on time_start and
 *   time_end. The sort key starts with time_received, so `flowtel query --since/--until` (time_start) could
 *   prune nothing and read the whole table; with the index the server skips the granules whose flow times lie
 *   outside the range. New tables get them in CREATE TABLE, existing ones by ALTER TABLE … ADD INDEX.
 * - cluster: a ReplicatedMergeTree local table on every node (ON CLUSTER), and a Distributed table over it
 *   that collectors insert into and queries read; the sharding key spreads each batch over the shards and
 *   is deterministic, so a retried batch splits the same way and replica deduplication drops the repeat.
 */
import { COLUMNS, COMPUTED_COLUMNS, FLOWS_TABLE, type Column } from '../schema/columns.js'
import { chIdent, chString, chUInt } from './clickhouse-sql.js'
import type { ClickHouseGeneration } from './clickhouse-version.js'

/** Columns that are never NULL (the collector fills them for every row) and form the sort key. */
export const NOT_NULL = new Set([
  'time_received',
  'exporter',
  'observation_domain',
  'template_id',
  'flow_version',
  'total_bytes',
  'total_packets',
])

export const MIGRATIONS_TABLE = 'flowtel_migrations'

/** A sum column's DEFAULT: what rows written before the column existed read (columns.ts sumOf). */
function defaultClause(c: Column): string {
  if (c.sumOf === undefined) return ''
  const [x, y] = c.sumOf.map(chIdent) as [string, string]
  return ` DEFAULT coalesce(${x}, 0) + coalesce(${y}, 0)`
}

/** The column's ClickHouse type (with Nullable and, on modern servers, its codec). */
export function columnType(c: Column, generation: ClickHouseGeneration): string {
  const nullable = !NOT_NULL.has(c.name)
  if (generation === 'legacy') return (nullable ? `Nullable(${c.ch})` : c.ch) + defaultClause(c)
  const lc = /^LowCardinality\((.*)\)$/.exec(c.chModern)
  const base = lc !== null ? (lc[1] ?? '') : c.chModern
  const t = nullable ? `Nullable(${base})` : base
  const type = (lc !== null ? `LowCardinality(${t})` : t) + defaultClause(c)
  return c.chCodec !== undefined ? `${type} ${c.chCodec}` : type
}

export interface ClickHouseTableOptions {
  generation: ClickHouseGeneration
  database: string
  table?: string
  /** Engine clause; default `MergeTree()`. */
  engine?: string
  /** `ON CLUSTER name` on every statement. */
  cluster?: string
  /** Modern servers: rows older than this (by time_received) are dropped by the table TTL. */
  ttlSeconds?: number
  /**
   * The data-skipping indexes (SKIP_INDEXES): for servers that take them (clickhouse-version.ts
   * supportsSkipIndexes). Default: with the modern generation (22.8 and later), not with legacy.
   */
  skipIndexes?: boolean
}

export interface SkipIndex {
  readonly name: string
  readonly column: string
}

/**
 * minmax indexes on the flow times: the flows of a granule (GRANULARITY 1: the index_granularity rows, 8192 by
 * default) span a short time, so a range condition on time_start skips nearly every granule outside it.
 * time_end too, for filters on the end of flows. Each costs two values per granule.
 */
export const SKIP_INDEXES: readonly SkipIndex[] = [
  { name: 'time_start_minmax', column: 'time_start' },
  { name: 'time_end_minmax', column: 'time_end' },
]

/** `name expr TYPE minmax GRANULARITY 1`: an index as CREATE TABLE (after INDEX) and ADD INDEX take it. */
export function skipIndexDefinition(i: SkipIndex): string {
  return `${chIdent(i.name)} ${chIdent(i.column)} TYPE minmax GRANULARITY 1`
}

/** The names of the data-skipping indexes in a table's CREATE statement (system.tables create_table_query). */
export function indexNames(createTableQuery: string): Set<string> {
  const names = new Set<string>()
  for (const m of createTableQuery.matchAll(/\bINDEX\s+`?([A-Za-z_][A-Za-z0-9_]*)`?\s/g))
    if (m[1] !== undefined) names.add(m[1])
  return names
}

/** ADD INDEX for each of SKIP_INDEXES the table lacks (`existing`: indexNames of it). */
export function addMissingIndexes(existing: ReadonlySet<string>, opts: ClickHouseTableOptions): string[] {
  const name = `${chIdent(opts.database)}.${chIdent(opts.table ?? FLOWS_TABLE)}`
  return SKIP_INDEXES.filter((i) => !existing.has(i.name)).map(
    (i) => `ALTER TABLE ${name}${onCluster(opts.cluster)} ADD INDEX ${skipIndexDefinition(i)}`,
  )
}

const onCluster = (cluster: string | undefined): string =>
  cluster !== undefined ? ` ON CLUSTER ${chIdent(cluster)}` : ''

export function partitionBy(generation: ClickHouseGeneration): string {
  // 18.16 needs the day computed from the plain UInt64 microsecond column.
  return generation === 'modern'
    ? 'toYYYYMMDD(time_received)'
    : 'toYYYYMMDD(toDateTime(intDiv(time_received, 1000000)))'
}

export function ttlClause(
  generation: ClickHouseGeneration,
  ttlSeconds: number | undefined,
): string | undefined {
  if (generation !== 'modern' || ttlSeconds === undefined || ttlSeconds <= 0) return undefined
  return `TTL toDateTime(time_received) + INTERVAL ${chUInt(Math.floor(ttlSeconds))} SECOND`
}

export function createDatabase(database: string, cluster?: string): string {
  return `CREATE DATABASE IF NOT EXISTS ${chIdent(database)}${onCluster(cluster)}`
}

/** The computed columns (columns.ts COMPUTED_COLUMNS) a table of a generation has, as column definitions. */
export function computedColumns(generation: ClickHouseGeneration): string[] {
  if (generation !== 'legacy') return []
  return COMPUTED_COLUMNS.map((c) => `${chIdent(c.name)} ${c.ch} MATERIALIZED ${c.chLegacy}`)
}

/** CREATE TABLE for the flows table (MergeTree by default). */
export function createFlowsTable(opts: ClickHouseTableOptions, columns: readonly Column[] = COLUMNS): string {
  const name = `${chIdent(opts.database)}.${chIdent(opts.table ?? FLOWS_TABLE)}`
  const names = new Set(columns.map((c) => c.name))
  const indexes =
    (opts.skipIndexes ?? opts.generation === 'modern')
      ? SKIP_INDEXES.filter((i) => names.has(i.column)).map((i) => `INDEX ${skipIndexDefinition(i)}`)
      : []
  const cols = [
    ...columns.map((c) => `${chIdent(c.name)} ${columnType(c, opts.generation)}`),
    ...computedColumns(opts.generation),
    ...indexes,
  ]
    .map((c) => `  ${c}`)
    .join(',\n')
  const lines = [
    `CREATE TABLE IF NOT EXISTS ${name}${onCluster(opts.cluster)} (\n${cols}\n)`,
    `ENGINE = ${opts.engine ?? 'MergeTree()'}`,
    `PARTITION BY ${partitionBy(opts.generation)}`,
    'ORDER BY (time_received, exporter)',
  ]
  const ttl = ttlClause(opts.generation, opts.ttlSeconds)
  if (ttl !== undefined) lines.push(ttl)
  return lines.join('\n')
}

/** ADD COLUMN for each column of the table that `existing` lacks (18.16 has no ADD COLUMN IF NOT EXISTS). */
export function addMissingColumns(
  existing: ReadonlySet<string>,
  opts: ClickHouseTableOptions,
  columns: readonly Column[] = COLUMNS,
): string[] {
  const name = `${chIdent(opts.database)}.${chIdent(opts.table ?? FLOWS_TABLE)}`
  const add = (def: string): string => `ALTER TABLE ${name}${onCluster(opts.cluster)} ADD COLUMN ${def}`
  // Computed columns come after every stored one, since they read them (older parts compute them on read).
  return [
    ...columns
      .filter((c) => !existing.has(c.name))
      .map((c) => add(`${chIdent(c.name)} ${columnType(c, opts.generation)}`)),
    ...computedColumns(opts.generation)
      .filter((d) => !existing.has(d.split(' ')[0] ?? ''))
      .map(add),
  ]
}

export function createMigrationsTable(database: string, cluster?: string): string {
  // One row per applied step; a plain log table (tiny, written once per step).
  return (
    `CREATE TABLE IF NOT EXISTS ${chIdent(database)}.${MIGRATIONS_TABLE}${onCluster(cluster)} ` +
    '(name String, applied UInt32) ENGINE = TinyLog'
  )
}

export interface ClusterDdlOptions {
  cluster: string
  database: string
  generation: ClickHouseGeneration
  ttlSeconds?: number
  /**
   * The Distributed table's sharding key. Default: spreads rows evenly and deterministically (the same
   * batch retried splits the same way, so ReplicatedMergeTree's block deduplication drops the repeat).
   */
  shardingKey?: string
  /** ZooKeeper path of the replicated local table; {shard} and {replica} are the server's macros. */
  zooPath?: string
  /** The local tables' data-skipping indexes (ClickHouseTableOptions.skipIndexes). */
  skipIndexes?: boolean
}

export const DEFAULT_SHARDING_KEY = 'cityHash64(exporter, observation_domain, time_received)'
export const LOCAL_SUFFIX = '_local'

/**
 * The cluster layout: the database on every node, the replicated local table on every node, and the
 * Distributed table (same name as the single-server table, `flows`) that collectors write and queries read.
 */
export function clusterDdl(o: ClusterDdlOptions): string[] {
  const local = `${FLOWS_TABLE}${LOCAL_SUFFIX}`
  const zoo = o.zooPath ?? `/clickhouse/tables/{shard}/${chIdent(o.database)}/${local}`
  if (!/^[A-Za-z0-9_/{}.-]+$/.test(zoo)) throw new Error(`bad ZooKeeper path ${JSON.stringify(zoo)}`)
  const key = o.shardingKey ?? DEFAULT_SHARDING_KEY
  if (!/^[A-Za-z0-9_(), ]+$/.test(key)) throw new Error(`bad sharding key ${JSON.stringify(key)}`)
  const base = { generation: o.generation, database: o.database, cluster: o.cluster }
  return [
    createDatabase(o.database, o.cluster),
    createFlowsTable({
      ...base,
      table: local,
      engine: `ReplicatedMergeTree(${chString(zoo)}, '{replica}')`,
      ...(o.ttlSeconds !== undefined ? { ttlSeconds: o.ttlSeconds } : {}),
      ...(o.skipIndexes !== undefined ? { skipIndexes: o.skipIndexes } : {}),
    }),
    distributedTable(o.database, o.cluster, key, o.generation),
    createMigrationsTable(o.database, o.cluster),
  ]
}

/**
 * The Distributed table over `flows_local` on every shard, with the stored columns only: 18.16 forwards
 * an insert with every column of the Distributed table, and the local table refuses values for its
 * MATERIALIZED ones (the computed IPv4 columns), so top-N through it groups by the address keys.
 */
function distributedTable(
  database: string,
  cluster: string,
  key: string,
  generation: ClickHouseGeneration,
): string {
  const db = chIdent(database)
  const local = `${FLOWS_TABLE}${LOCAL_SUFFIX}`
  const cols = COLUMNS.map((c) => `  ${chIdent(c.name)} ${columnType(c, generation)}`).join(',\n')
  return (
    `CREATE TABLE IF NOT EXISTS ${db}.${FLOWS_TABLE}${onCluster(cluster)} (\n${cols}\n)\n` +
    `ENGINE = Distributed(${chIdent(cluster)}, ${db}, ${local}, ${key})`
  )
}
