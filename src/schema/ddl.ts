/**
 * DuckDB DDL generated from the column table (columns.ts). The ClickHouse DDL (both server generations,
 * the cluster layout) is in store/clickhouse-ddl.ts.
 */
import { COLUMNS, FLOWS_TABLE, type Column } from './columns.js'

export const ident = (name: string): string => {
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
