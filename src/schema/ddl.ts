/**
 * DuckDB DDL generated from the column table (columns.ts). The ClickHouse DDL (both server generations,
 * the cluster layout) is in store/clickhouse-ddl.ts.
 *
 * Two DuckDB layouts of the same logical `flows` table (store/duckdb.ts "Lazy columns"):
 * - full (files made before lazy columns): `flows` is a table with every column of the column table;
 * - lazy: the rows are in `flows_stored`, created with the core columns (CORE_COLUMNS) only, each other column
 *   added the first time a batch holds a value for it; `flows` is a view over it with every column of the
 *   column table, in its order, an absent one as a typed NULL.
 */
import { COLUMNS, FLOWS_TABLE, type Column } from './columns.js'

export const ident = (name: string): string => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad identifier ${name}`)
  return name
}

/** DuckDB, lazy layout: the table holding the rows behind the `flows` view. */
export const FLOWS_STORED = 'flows_stored'

/**
 * DuckDB, lazy layout: the columns a table is created with. The ones every flow record of every exporter
 * fills (metadata, times, the 5-tuple, the forward counters and the totals, which ingest always writes and
 * which retention and top-N read); everything else (reverse counters, flags, L2, L7, the probe's metrics,
 * the `extra` map, NULL for the records of every template without such elements) is added on first value.
 * The `extra` map is not core: the typed path (store/fast-plan.ts) takes only templates with nothing for it.
 */
export const CORE_COLUMNS: ReadonlySet<string> = new Set([
  'time_received',
  'time_start',
  'time_end',
  'exporter',
  'observation_domain',
  'template_id',
  'flow_version',
  'ip_version',
  'src_addr',
  'dst_addr',
  'src_ip_key',
  'dst_ip_key',
  'src_port',
  'dst_port',
  'proto',
  'bytes',
  'packets',
  'total_bytes',
  'total_packets',
])

/** A column's DuckDB type without its storage clause (`USING COMPRESSION …`), for a cast. */
export function duckdbValueType(c: Column): string {
  return c.duck.replace(/\s+USING\s+COMPRESSION\s+\w+$/i, '')
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

/** DuckDB, lazy layout: the stored table with the core columns (IF NOT EXISTS). */
export function duckdbCreateStoredTable(columns: readonly Column[] = COLUMNS): string {
  return duckdbCreateTable(
    columns.filter((c) => CORE_COLUMNS.has(c.name)),
    FLOWS_STORED,
  )
}

/**
 * DuckDB, lazy layout: the `flows` view over the stored table, given the stored table's columns: every
 * column of the column table in its order (a stored one as itself, another as a NULL of its type), then
 * stored columns the column table does not know (added by a later release), so nothing stored is hidden.
 */
export function duckdbFlowsView(stored: readonly string[], columns: readonly Column[] = COLUMNS): string {
  const have = new Set(stored)
  const known = new Set(columns.map((c) => c.name))
  const select = [
    ...columns.map((c) =>
      have.has(c.name) ? ident(c.name) : `CAST(NULL AS ${duckdbValueType(c)}) AS ${ident(c.name)}`,
    ),
    ...stored.filter((n) => !known.has(n)).map((n) => `"${n.replace(/"/g, '""')}"`),
  ]
  return `CREATE OR REPLACE VIEW ${FLOWS_TABLE} AS SELECT ${select.join(', ')} FROM ${FLOWS_STORED}`
}
