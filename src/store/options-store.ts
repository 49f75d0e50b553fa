/**
 * The options table (`flow_options`) in both stores: one row per options fact (store/options-rows.ts), by
 * exporter, observation domain, kind and key, with its time of receipt. No NULLs (absent text is '', an
 * absent rate 0), so the ClickHouse 18.16 joins of query/joined.ts need no Nullable keys. Its DDL, the
 * ClickHouse INSERT (every value through the literal writers of clickhouse-sql.ts; 18.16 has no query
 * parameters) and the "latest per key" listing (`flowtel query --options KIND`).
 *
 * Retention (optionsTrim*): the recorder stores a fact again when it changes and once an hour, so the table
 * grows with time. The joins and the listing read only the latest fact per (exporter, domain, kind, key);
 * every older fact of a key is history. Flow retention (the stores' retain()) deletes that history once it
 * is older than the oldest flow kept; the latest fact of each key is kept, however old, since it still
 * names the flows kept.
 */
import type { JoinDialect } from '../query/joined.js'
import type { OptionKind, OptionRow } from './options-rows.js'
import { chIdent, chString, chUInt } from './clickhouse-sql.js'

export const OPTIONS_TABLE = 'flow_options'

export const OPTION_KINDS: readonly OptionKind[] = [
  'interface',
  'application',
  'vrf',
  'sampling',
  'stats',
  'other',
]

export function duckdbOptionsTable(): string {
  return (
    `CREATE TABLE IF NOT EXISTS ${OPTIONS_TABLE} (time_received UBIGINT NOT NULL, exporter VARCHAR NOT NULL, ` +
    'observation_domain UINTEGER NOT NULL, kind VARCHAR NOT NULL, key VARCHAR NOT NULL, ' +
    'name VARCHAR NOT NULL, description VARCHAR NOT NULL, category VARCHAR NOT NULL, ' +
    'rate UBIGINT NOT NULL, data VARCHAR NOT NULL)'
  )
}

/** The same table in ClickHouse, in forms 18.16 accepts (and every later server). */
export function clickhouseOptionsTable(database: string): string {
  return (
    `CREATE TABLE IF NOT EXISTS ${chIdent(database)}.${OPTIONS_TABLE} (time_received UInt64, ` +
    'exporter String, observation_domain UInt32, kind String, key String, name String, ' +
    'description String, category String, rate UInt64, data String) ' +
    'ENGINE = MergeTree() ORDER BY (exporter, observation_domain, kind, key, time_received)'
  )
}

/** A ClickHouse INSERT of rows, every value a checked literal. */
export function clickhouseOptionsInsert(table: string, rows: readonly OptionRow[]): string {
  const values = rows.map(
    (r) =>
      `(${chUInt(r.time_received)}, ${chString(r.exporter)}, ${chUInt(r.observation_domain)}, ` +
      `${chString(r.kind)}, ${chString(r.key)}, ${chString(r.name)}, ${chString(r.description)}, ` +
      `${chString(r.category)}, ${chUInt(r.rate)}, ${chString(r.data)})`,
  )
  return (
    `INSERT INTO ${table} (time_received, exporter, observation_domain, kind, key, name, description, ` +
    `category, rate, data) VALUES ${values.join(', ')}`
  )
}

export interface OptionsQuery {
  /** One kind, or all. */
  kind?: OptionKind
  limit?: number
}

/**
 * The latest row of each (exporter, domain, kind, key): the listing SQL. `argMax` is the aggregate name
 * (`arg_max` in DuckDB, `argMax` in ClickHouse); `kind` is one of OPTION_KINDS (checked), so it is inlined.
 */
export function latestOptionsSql(table: string, argMax: string, q: OptionsQuery): string {
  if (q.kind !== undefined && !OPTION_KINDS.includes(q.kind))
    throw new Error(`unknown options kind ${q.kind}`)
  const where = q.kind !== undefined ? ` WHERE kind = '${q.kind}'` : ''
  const limit = Math.max(1, Math.floor(q.limit ?? 1000))
  // Aliased apart from the columns: ClickHouse would read `argMax(name, …) AS name` as a cyclic alias.
  const latest = (c: string): string => `${argMax}(${c}, time_received) AS latest_${c}`
  return (
    `SELECT exporter, observation_domain, kind, key, ${latest('name')}, ${latest('description')}, ` +
    `${latest('category')}, ${latest('rate')}, max(time_received) AS received, ${latest('data')} ` +
    `FROM ${table}${where} GROUP BY exporter, observation_domain, kind, key ` +
    `ORDER BY exporter, observation_domain, kind, key LIMIT ${limit}`
  )
}

/** Result columns of latestOptionsSql with their `latest_` prefix taken off. */
export function unprefixLatest<T>(r: { columns: string[]; rows: Array<Record<string, T>> }): {
  columns: string[]
  rows: Array<Record<string, T>>
} {
  const name = (c: string): string => (c.startsWith('latest_') ? c.slice(7) : c)
  return {
    columns: r.columns.map(name),
    rows: r.rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [name(k), v]))),
  }
}

/** A DuckDB multi-row INSERT with bound values. */
export function duckdbOptionsInsert(rows: readonly OptionRow[]): {
  sql: string
  values: Array<bigint | number | string>
} {
  const values: Array<bigint | number | string> = []
  const tuples = rows.map((r) => {
    const start = values.length
    values.push(
      r.time_received,
      r.exporter,
      r.observation_domain,
      r.kind,
      r.key,
      r.name,
      r.description,
      r.category,
      r.rate,
      r.data,
    )
    return `(${Array.from({ length: 10 }, (_, i) => `$${start + i + 1}`).join(', ')})`
  })
  return { sql: `INSERT INTO ${OPTIONS_TABLE} VALUES ${tuples.join(', ')}`, values }
}

/**
 * The ClickHouse join SQL (query/joined.ts) in 18.16 forms: ANY LEFT JOIN, visitParam* to read the `extra`
 * JSON (JSONExtract* came later), typed NULLs. Element names are checked by the caller (identifiers only).
 */
export function clickhouseJoins(optionsTable: string, kinds: ReadonlySet<string>): JoinDialect {
  return {
    leftJoin: 'ANY LEFT JOIN',
    optionsTable,
    kinds,
    keyText: (e) => `ifNull(toString(${e}), '')`,
    extraText: (element, json) =>
      json === 'string'
        ? `ifNull(visitParamExtractString(extra, ${chString(element)}), '')`
        : `ifNull(visitParamExtractRaw(extra, ${chString(element)}), '')`,
    argMax: (v, by) => `argMax(${v}, ${by})`,
    nullOf: (kind) => (kind === 'text' ? 'CAST(NULL AS Nullable(String))' : 'CAST(NULL AS Nullable(UInt64))'),
    toU64: (e) => `CAST(${e} AS Nullable(UInt64))`,
  }
}

/** Chunks of at most `n` rows (INSERT statements stay small). */
export function chunks<T>(rows: readonly T[], n = 500): T[][] {
  const out: T[][] = []
  for (let i = 0; i < rows.length; i += n) out.push(rows.slice(i, i + n))
  return out
}

const OPTION_KEY = 'exporter, observation_domain, kind, key'

/** DuckDB: deletes the superseded facts received before `$1` (µs); see "Retention" above. */
export function duckdbOptionsTrim(): string {
  return (
    `DELETE FROM ${OPTIONS_TABLE} o WHERE o.time_received < $1 AND EXISTS (SELECT 1 FROM ${OPTIONS_TABLE} n ` +
    'WHERE n.exporter = o.exporter AND n.observation_domain = o.observation_domain AND n.kind = o.kind ' +
    'AND n.key = o.key AND n.time_received > o.time_received)'
  )
}

/**
 * ClickHouse: the condition selecting the superseded facts received before `cutoffUs` (for a count and
 * an `ALTER TABLE … DELETE WHERE`; 18.16 takes the IN subquery in a mutation).
 */
export function clickhouseOptionsTrimWhere(table: string, cutoffUs: bigint): string {
  return (
    `time_received < ${chUInt(cutoffUs)} AND (${OPTION_KEY}, time_received) NOT IN ` +
    `(SELECT ${OPTION_KEY}, max(time_received) FROM ${table} GROUP BY ${OPTION_KEY})`
  )
}
