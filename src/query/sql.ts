/**
 * Compiles a flow query (filter AST from filter.ts, top-N, time window) to SQL. Every value is a bound
 * parameter with its type; the SQL text holds only column names from the column table and fixed keywords,
 * so no user text is ever spliced into it.
 */
import { COLUMNS, COLUMN_BY_NAME, FLOWS_TABLE, type ValueKind } from '../schema/columns.js'
import type { FilterExpr } from './filter.js'

export type ParamType = 'UBIGINT' | 'UHUGEINT' | 'VARCHAR' | 'BOOLEAN' | 'TIMESTAMP'

export interface SqlParam {
  readonly value: bigint | string | boolean
  readonly type: ParamType
}

export interface CompiledSql {
  readonly sql: string
  readonly params: SqlParam[]
}

export type TopMetric = 'bytes' | 'packets' | 'flows'

export interface FlowQuery {
  filter?: FilterExpr
  /** Group by these fields (column names or aliases, see TOP_ALIASES) and rank by `by`. */
  top?: string[]
  by?: TopMetric
  /** Flows whose time_start is ≥ since / < until (µs since 1970). */
  since?: bigint
  until?: bigint
  limit?: number
  /** Without top: every column instead of the summary ones. */
  allColumns?: boolean
  /** Without top: list the flows with the most bytes (both directions) first instead of in time order. */
  orderBy?: 'time' | 'bytes'
}

/** The virtual fields: both directions added. */
const VIRTUAL: Record<string, string> = {
  total_bytes: '(coalesce(bytes, 0) + coalesce(rev_bytes, 0))',
  total_packets: '(coalesce(packets, 0) + coalesce(rev_packets, 0))',
}

/** nfdump-style aggregation names → columns (`-A srcip,dstport`). */
export const TOP_ALIASES: Record<string, string> = {
  srcip: 'src_addr',
  dstip: 'dst_addr',
  srcport: 'src_port',
  dstport: 'dst_port',
  app: 'application',
  inif: 'in_if',
  outif: 'out_if',
  srcmac: 'src_mac',
  dstmac: 'dst_mac',
}

export const SUMMARY_COLUMNS = [
  'time_start',
  'time_end',
  'src_addr',
  'src_port',
  'dst_addr',
  'dst_port',
  'proto',
  'packets',
  'rev_packets',
  'bytes',
  'rev_bytes',
]

function paramType(kind: ValueKind): ParamType {
  switch (kind) {
    case 'text':
    case 'json':
      return 'VARCHAR'
    case 'bool':
      return 'BOOLEAN'
    case 'ipkey':
      return 'UHUGEINT'
    case 'time':
      return 'TIMESTAMP'
    default:
      return 'UBIGINT'
  }
}

class Compiler {
  readonly params: SqlParam[] = []
  bind(value: bigint | string | boolean, type: ParamType): string {
    this.params.push({ value, type })
    return `$${this.params.length}`
  }

  expr(e: FilterExpr): string {
    switch (e.type) {
      case 'and':
      case 'or':
        return `(${this.expr(e.left)} ${e.type.toUpperCase()} ${this.expr(e.right)})`
      case 'not':
        // NULL (an absent value) counts as not matching, so `not X` holds wherever X does not.
        return `(NOT coalesce(${this.expr(e.expr)}, false))`
      case 'ip':
        return this.directed(e.dir, (c) => `${c} = ${this.bind(e.key, 'UHUGEINT')}`)
      case 'net':
        return this.directed(
          e.dir,
          (c) => `${c} BETWEEN ${this.bind(e.lo, 'UHUGEINT')} AND ${this.bind(e.hi, 'UHUGEINT')}`,
        )
      case 'cmp': {
        const virtual = VIRTUAL[e.field]
        const col = COLUMN_BY_NAME.get(e.field)
        const ref = virtual ?? col?.name
        if (ref === undefined) throw new Error(`unknown field ${e.field}`)
        const type = virtual !== undefined ? 'UBIGINT' : paramType(col?.kind ?? 'u64')
        return `${ref} ${e.op} ${this.bind(e.value, type)}`
      }
      case 'glob': {
        const col = COLUMN_BY_NAME.get(e.field)
        if (col === undefined) throw new Error(`unknown field ${e.field}`)
        return `${col.name} GLOB ${this.bind(e.pattern, 'VARCHAR')}`
      }
      case 'flags':
        return `((coalesce(tcp_flags, 0) | coalesce(rev_tcp_flags, 0)) & ${e.mask}) = ${e.mask}`
    }
  }

  private directed(dir: 'src' | 'dst' | 'any', f: (col: string) => string): string {
    if (dir === 'src') return f('src_ip_key')
    if (dir === 'dst') return f('dst_ip_key')
    return `(${f('src_ip_key')} OR ${f('dst_ip_key')})`
  }
}

/** Compiles just a filter (for tests and other statements). */
export function compileFilter(e: FilterExpr): CompiledSql {
  const c = new Compiler()
  return { sql: c.expr(e), params: c.params }
}

/** A top field or alias → its column; throws naming the field when unknown. */
export function topColumn(field: string): string {
  const name = TOP_ALIASES[field.toLowerCase()] ?? field.toLowerCase()
  const col = COLUMN_BY_NAME.get(name)
  if (col === undefined || col.kind === 'json' || col.kind === 'ipkey')
    throw new Error(
      `unknown --top field "${field}": use a column (${COLUMNS.filter((c) => c.role === 'dimension')
        .map((c) => c.name)
        .slice(0, 12)
        .join(', ')}, ...) or ${Object.keys(TOP_ALIASES).join(', ')}`,
    )
  return col.name
}

/** The whole SELECT for a flow query. */
export function compileQuery(q: FlowQuery): CompiledSql {
  const c = new Compiler()
  const where: string[] = []
  if (q.filter !== undefined) where.push(c.expr(q.filter))
  if (q.since !== undefined) where.push(`time_start >= make_timestamp(${c.bind(q.since, 'UBIGINT')}::BIGINT)`)
  if (q.until !== undefined) where.push(`time_start < make_timestamp(${c.bind(q.until, 'UBIGINT')}::BIGINT)`)
  const whereSql = where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''
  const limit = Math.max(1, Math.floor(q.limit ?? (q.top !== undefined ? 10 : 20)))
  if (q.top !== undefined && q.top.length > 0) {
    const cols = q.top.map(topColumn)
    const by = q.by ?? 'bytes'
    const sql =
      `SELECT ${cols.join(', ')}, count(*) AS flows, sum(${VIRTUAL.total_packets}) AS packets, ` +
      `sum(${VIRTUAL.total_bytes}) AS bytes FROM ${FLOWS_TABLE}${whereSql} ` +
      `GROUP BY ${cols.join(', ')} ORDER BY ${by} DESC, ${cols.join(', ')} LIMIT ${limit}`
    return { sql, params: c.params }
  }
  const select = q.allColumns === true ? COLUMNS.map((x) => x.name).join(', ') : SUMMARY_COLUMNS.join(', ')
  const order =
    q.orderBy === 'bytes'
      ? `${VIRTUAL.total_bytes} DESC, time_start, src_addr, dst_addr`
      : 'time_start, src_addr, dst_addr'
  const sql = `SELECT ${select} FROM ${FLOWS_TABLE}${whereSql} ORDER BY ${order} LIMIT ${limit}`
  return { sql, params: c.params }
}
