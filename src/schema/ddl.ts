/**
 * DDL generated from the column table (columns.ts): DuckDB statements the store runs, and ClickHouse
 * CREATE TABLE text for the two server generations (plain forms for 18.16, modern forms with codecs,
 * LowCardinality and TTL), which the ClickHouse backend of a later session will run.
 */
import { COLUMNS, FLOWS_TABLE, type Column } from './columns.js'

const ident = (name: string): string => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad identifier ${name}`)
  return name
}

/** DuckDB: the flows table (IF NOT EXISTS, so running it twice is harmless). */
export function duckdbCreateTable(columns: readonly Column[] = COLUMNS, table = FLOWS_TABLE): string {
  const cols = columns.map((c) => `  ${ident(c.name)} ${c.duck}`).join(',\n')
  return `CREATE TABLE IF NOT EXISTS ${ident(table)} (\n${cols}\n)`
}

/** DuckDB: one ADD COLUMN per column, for upgrading a table made by an older column table. */
export function duckdbAddColumns(columns: readonly Column[] = COLUMNS, table = FLOWS_TABLE): string[] {
  return columns.map((c) => `ALTER TABLE ${ident(table)} ADD COLUMN IF NOT EXISTS ${ident(c.name)} ${c.duck}`)
}

export interface ClickHouseDdlOptions {
  /** Server has DateTime64, IPv6, LowCardinality, codecs and table TTL (anything newer than 18.16). */
  modern: boolean
  table?: string
  /** Modern servers: TTL on time_received in days (0: none). */
  ttlDays?: number
}

/** ClickHouse CREATE TABLE (MergeTree, ordered by time then exporter) as text. */
export function clickhouseCreateTable(
  opts: ClickHouseDdlOptions,
  columns: readonly Column[] = COLUMNS,
): string {
  const table = ident(opts.table ?? FLOWS_TABLE)
  const cols = columns.map((c) => `  ${ident(c.name)} ${opts.modern ? c.chModern : c.ch}`).join(',\n')
  const lines = [
    `CREATE TABLE IF NOT EXISTS ${table} (\n${cols}\n)`,
    'ENGINE = MergeTree()',
    // 18.16 needs an explicit partition expression on a plain UInt64 microsecond column.
    opts.modern
      ? 'PARTITION BY toYYYYMMDD(time_received)'
      : 'PARTITION BY toYYYYMMDD(toDateTime(intDiv(time_received, 1000000)))',
    'ORDER BY (time_received, exporter)',
  ]
  if (opts.modern && (opts.ttlDays ?? 0) > 0)
    lines.push(`TTL toDateTime(time_received) + INTERVAL ${Math.floor(opts.ttlDays ?? 0)} DAY`)
  return lines.join('\n')
}
