/**
 * Compiles a flow query (filter AST from filter.ts, top-N, time window) to SQL for a dialect. DuckDB (the
 * default dialect): every value is a bound parameter with its type; the SQL text holds only column names
 * from the column table and fixed keywords, so no user text is ever spliced into it. ClickHouse 18.16 has no
 * query parameters: its dialect (store/clickhouse-sql.ts) renders each value through one audited literal
 * writer instead.
 */
import { COLUMNS, COLUMN_BY_NAME, FLOWS_TABLE, type Column, type ValueKind } from '../schema/columns.js'
import type { FilterExpr } from './filter.js'
import { JOINED_BY_NAME, joinedSource, type JoinDialect } from './joined.js'

export type ParamType = 'UBIGINT' | 'UHUGEINT' | 'VARCHAR' | 'BOOLEAN' | 'TIMESTAMP'

export interface SqlParam {
  readonly value: bigint | string | boolean
  readonly type: ParamType
}

export interface CompiledSql {
  readonly sql: string
  readonly params: SqlParam[]
  /** Result columns that hold an address key (top-N by address): the store formats them as text (keyText). */
  readonly addressColumns?: string[]
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
  /** Without top: exactly these columns (flow columns and joined fields, see query/joined.ts). */
  columns?: string[]
}

/** Address text columns → the key column top-N groups by (fixed width, hashes fast; text only for the result). */
const ADDRESS_KEYS: Record<string, string> = { src_addr: 'src_ip_key', dst_addr: 'dst_ip_key' }

/** nfdump-style aggregation names → columns (`-A srcip,dstport`). */
export const TOP_ALIASES: Record<string, string> = {
  srcip: 'src_addr',
  dstip: 'dst_addr',
  srcport: 'src_port',
  dstport: 'dst_port',
  app: 'app_name',
  inif: 'in_if',
  inifname: 'in_if_name',
  outifname: 'out_if_name',
  vrf: 'vrf_name',
  sampling: 'sampling_rate',
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

/**
 * Joined fields the default listing adds (query/joined.ts); `flowtel query` leaves out those that are empty
 * in every listed row.
 */
export const SUMMARY_JOINED = [
  'app_name',
  'in_if_name',
  'out_if_name',
  'vrf_name',
  'out_vrf_name',
  'sampling_rate',
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

/** What differs between the SQL engines; a dialect object serves one compilation. */
export interface SqlDialect {
  /** The flows table, qualified as the engine needs. */
  readonly table: string
  /** Values bound so far (DuckDB); ClickHouse inlines literals and leaves this empty. */
  readonly params: SqlParam[]
  /** A value in the statement: a placeholder that binds it, or a literal. */
  value(value: bigint | string | boolean, type: ParamType): string
  /** An address key (128-bit) to compare a `*_ip_key` column with. */
  ipKey(key: bigint): string
  /** A time (µs since 1970) to compare a time column with. */
  time(us: bigint): string
  /** `column` matches the glob `pattern` (`*`, `?`, `[...]`). */
  glob(column: string, pattern: string): string
  /** Both-direction TCP flags contain every bit of `mask`. */
  flags(mask: number): string
  /** The false literal (for coalescing an absent value's comparison). */
  readonly falseLiteral: string
  /** A column in a listing's SELECT (ClickHouse converts some types and renames them; see its store). */
  selectColumn(c: Column): string
  /** Wrap top-N aggregates in a subquery, so their aliases never shadow the columns summed (ClickHouse). */
  readonly nestTop: boolean
  /** An address key column in a top-N result, under the address column's name (as the store reads it). */
  topAddress(keyColumn: string, name: string): string
  /** The options-table joins (query/joined.ts); without them joined fields cannot be used. */
  joins?: JoinDialect | undefined
  /**
   * The table's computed IPv4 column of an address key column (columns.ts COMPUTED_COLUMNS), when it has one:
   * top-N groups IPv4 rows by it, and `ipv4ToKey` turns a group's number back into the key.
   */
  ipv4Column?(keyColumn: string): string | undefined
  ipv4ToKey?(expr: string): string
  /** Top-N may group by integer columns packed into one number (packedGrouping; ClickHouse). */
  readonly packKeys?: boolean
}

/** DuckDB: values bound as typed parameters `$n`. */
export class DuckDbDialect implements SqlDialect {
  readonly table = FLOWS_TABLE
  readonly params: SqlParam[] = []
  readonly falseLiteral = 'false'
  readonly nestTop = false
  constructor(public joins?: JoinDialect) {}
  value(value: bigint | string | boolean, type: ParamType): string {
    this.params.push({ value, type })
    return `$${this.params.length}`
  }
  ipKey(key: bigint): string {
    return this.value(key, 'UHUGEINT')
  }
  time(us: bigint): string {
    return `make_timestamp(${this.value(us, 'UBIGINT')}::BIGINT)`
  }
  glob(column: string, pattern: string): string {
    return `${column} GLOB ${this.value(pattern, 'VARCHAR')}`
  }
  flags(mask: number): string {
    return `((coalesce(tcp_flags, 0) | coalesce(rev_tcp_flags, 0)) & ${mask}) = ${mask}`
  }
  selectColumn(c: Column): string {
    return c.name
  }
  topAddress(keyColumn: string, name: string): string {
    return `${keyColumn} AS ${name}`
  }
}

class Compiler {
  /** Joined fields the compiled expressions use. */
  readonly joined = new Set<string>()
  /**
   * `ipv4`: conditions may use the table's computed IPv4 columns; not in a filter applied over the joined
   * source (query/joined.ts), which carries the stored columns only.
   */
  constructor(
    readonly d: SqlDialect,
    readonly ipv4 = true,
  ) {}
  get params(): SqlParam[] {
    return this.d.params
  }
  bind(value: bigint | string | boolean, type: ParamType): string {
    return this.d.value(value, type)
  }

  expr(e: FilterExpr): string {
    switch (e.type) {
      case 'and':
      case 'or':
        return `(${this.expr(e.left)} ${e.type.toUpperCase()} ${this.expr(e.right)})`
      case 'not':
        // NULL (an absent value) counts as not matching, so `not X` holds wherever X does not.
        return `(NOT coalesce(${this.expr(e.expr)}, ${this.d.falseLiteral}))`
      case 'ip':
        return this.directed(e.dir, (c) => {
          const v4 = this.ipv4Range(c, e.key, e.key)
          return v4 !== undefined ? `${v4.column} = ${v4.lo}` : `${c} = ${this.d.ipKey(e.key)}`
        })
      case 'net':
        return this.directed(e.dir, (c) => {
          const v4 = this.ipv4Range(c, e.lo, e.hi)
          return v4 !== undefined
            ? `${v4.column} BETWEEN ${v4.lo} AND ${v4.hi}`
            : `${c} BETWEEN ${this.d.ipKey(e.lo)} AND ${this.d.ipKey(e.hi)}`
        })
      case 'cmp': {
        const joined = JOINED_BY_NAME.get(e.field)
        if (joined !== undefined) {
          this.joined.add(joined.name)
          const v = this.bind(e.value, joined.kind === 'text' ? 'VARCHAR' : 'UBIGINT')
          if (e.caseless === true) return `lower(${joined.name}) ${e.op} lower(${v})`
          return `${joined.name} ${e.op} ${v}`
        }
        const col = COLUMN_BY_NAME.get(e.field)
        if (col === undefined) throw new Error(`unknown field ${e.field}`)
        return `${col.name} ${e.op} ${this.bind(e.value, paramType(col.kind))}`
      }
      case 'glob': {
        if (JOINED_BY_NAME.get(e.field)?.kind === 'text') {
          this.joined.add(e.field)
          return this.d.glob(e.field, e.pattern)
        }
        const col = COLUMN_BY_NAME.get(e.field)
        if (col === undefined) throw new Error(`unknown field ${e.field}`)
        return this.d.glob(col.name, e.pattern)
      }
      case 'flags':
        return this.d.flags(e.mask)
    }
  }

  /**
   * A key range inside IPv4-mapped space, on a table with the computed IPv4 column of `keyColumn`, as that
   * column's number range (cheaper to compare than the key). Not when the range holds 0.0.0.0, whose number
   * 0 also stands for "not IPv4" there.
   */
  private ipv4Range(
    keyColumn: string,
    lo: bigint,
    hi: bigint,
  ): { column: string; lo: string; hi: string } | undefined {
    const column = this.ipv4 ? this.d.ipv4Column?.(keyColumn) : undefined
    if (column === undefined || lo >> 32n !== 0xffffn || hi >> 32n !== 0xffffn) return undefined
    const lo4 = lo & 0xffffffffn
    if (lo4 === 0n) return undefined
    return {
      column,
      lo: this.bind(lo4, 'UBIGINT'),
      hi: this.bind(hi & 0xffffffffn, 'UBIGINT'),
    }
  }

  private directed(dir: 'src' | 'dst' | 'any', f: (col: string) => string): string {
    if (dir === 'src') return f('src_ip_key')
    if (dir === 'dst') return f('dst_ip_key')
    return `(${f('src_ip_key')} OR ${f('dst_ip_key')})`
  }
}

/** Compiles just a filter (for tests and other statements). */
export function compileFilter(e: FilterExpr, dialect: SqlDialect = new DuckDbDialect()): CompiledSql {
  const c = new Compiler(dialect)
  return { sql: c.expr(e), params: c.params }
}

/** A top field or alias → its column; throws naming the field when unknown. */
export function topColumn(field: string): string {
  const name = TOP_ALIASES[field.toLowerCase()] ?? field.toLowerCase()
  if (JOINED_BY_NAME.has(name)) return name
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

/** A listing's order. Ties broken down to the ports, protocol, end and counters, so both stores agree. */
function listingOrder(q: FlowQuery): string {
  const ties =
    'src_addr, dst_addr, src_port, dst_port, proto, time_end, bytes, packets, rev_bytes, rev_packets'
  return q.orderBy === 'bytes' ? `total_bytes DESC, time_start, ${ties}` : `time_start, ${ties}`
}

/** The listing's columns: `columns`, every flow column, or the summary (with the joined names). */
function listingColumns(q: FlowQuery, joins: boolean): string[] {
  if (q.columns !== undefined) {
    if (q.columns.length === 0)
      throw new Error('--columns names no column: list flow columns, e.g. src_addr,bytes')
    for (const n of q.columns)
      if (!COLUMN_BY_NAME.has(n) && !JOINED_BY_NAME.has(n))
        throw new Error(
          `unknown column "${n}": use a flow column or one of ${[...JOINED_BY_NAME.keys()].join(', ')}`,
        )
    return q.columns
  }
  if (q.allColumns === true) return COLUMNS.map((c) => c.name)
  return joins ? [...SUMMARY_COLUMNS, ...SUMMARY_JOINED] : SUMMARY_COLUMNS
}

/** The joined fields a filter names (query/joined.ts). */
function joinedInFilter(e: FilterExpr | undefined, out: Set<string>): Set<string> {
  if (e === undefined) return out
  switch (e.type) {
    case 'and':
    case 'or':
      joinedInFilter(e.left, out)
      return joinedInFilter(e.right, out)
    case 'not':
      return joinedInFilter(e.expr, out)
    case 'cmp':
    case 'glob':
      if (JOINED_BY_NAME.has(e.field)) out.add(e.field)
      return out
    default:
      return out
  }
}

/**
 * Whether compiling `q` with joins available would join the options table: a joined field in the filter,
 * the top fields or the listing's columns. A store asks which option kinds exist only then, so a top-N on
 * flow columns costs no options lookup.
 */
export function queryUsesOptions(q: FlowQuery): boolean {
  if (joinedInFilter(q.filter, new Set()).size > 0) return true
  if (q.top !== undefined && q.top.length > 0) return q.top.some((f) => JOINED_BY_NAME.has(topColumn(f)))
  return listingColumns(q, true).some((n) => JOINED_BY_NAME.has(n))
}

/**
 * Top-N by address on a table with computed IPv4 columns: the group columns of the IPv4 half (the numbers
 * `g0…` in place of the keys), the same columns shown under the key names (numbers back to keys, Nullable
 * like the keys), and the conditions that split the rows: every address number non-zero, or some zero.
 */
function ipv4Grouping(
  keys: readonly string[],
  d: SqlDialect,
): { groups: string; groupBy: string; shown: string; nonZero: string; zero: string } | undefined {
  const v4 = keys.map((k) => d.ipv4Column?.(k))
  if (d.ipv4ToKey === undefined || v4.every((c) => c === undefined)) return undefined
  const toKey = (e: string): string => d.ipv4ToKey?.(e) ?? e
  const numbers = v4.flatMap((c, i) => (c !== undefined ? [`g${i}`] : []))
  return {
    groups: keys.map((k, i) => (v4[i] !== undefined ? `${v4[i]} AS g${i}` : k)).join(', '),
    groupBy: keys.map((k, i) => (v4[i] !== undefined ? `g${i}` : k)).join(', '),
    shown: keys.map((k, i) => (v4[i] !== undefined ? `toNullable(${toKey(`g${i}`)}) AS ${k}` : k)).join(', '),
    nonZero: numbers.map((n) => `${n} != 0`).join(' AND '),
    zero: v4.flatMap((c) => (c !== undefined ? [`${c} = 0`] : [])).join(' OR '),
  }
}

const INT_BITS: Partial<Record<ValueKind, number>> = { u8: 8, u16: 16, u32: 32 }

/** The aggregate a top-N orders by (`--by`). */
const BY_AGGREGATE: Readonly<Record<'flows' | 'bytes' | 'packets', string>> = {
  flows: 'count()',
  bytes: 'sum(total_bytes)',
  packets: 'sum(total_packets)',
}

/**
 * Top-N whose group columns all fit one 64-bit number (ClickHouse: `packKeys`): Nullable integer columns
 * as their value and a NULL bit (u8 9 bits, u16 17, u32 33), addresses with a computed IPv4 column as its
 * 32-bit number. ClickHouse 18.16 groups one plain integer several times faster than a tuple of Nullable
 * columns. The number is unpacked for the rows returned only. Rows whose IPv4 number is 0 (IPv6, no
 * address, 0.0.0.0) are grouped by their columns themselves in a second half of a UNION ALL (`rest`).
 */
function packedGrouping(
  keys: readonly string[],
  d: SqlDialect,
): { single: boolean; packed: string; shown: string; having: string; rest: string | undefined } | undefined {
  if (d.packKeys !== true) return undefined
  const toKey = (e: string): string => d.ipv4ToKey?.(e) ?? e
  const parts: string[] = []
  const shown: string[] = []
  const nonZero: string[] = []
  const zero: string[] = []
  let off = 0
  const field = (bits: number): string => `bitAnd(bitShiftRight(p, ${off}), ${(1n << BigInt(bits)) - 1n})`
  for (const k of keys) {
    const v4 = d.ipv4Column?.(k)
    const bits = INT_BITS[COLUMN_BY_NAME.get(k)?.kind ?? 'text']
    if (v4 !== undefined) {
      parts.push(off === 0 ? `toUInt64(${v4})` : `bitShiftLeft(toUInt64(${v4}), ${off})`)
      shown.push(`toNullable(${toKey(`toUInt32(${field(32)})`)}) AS ${k}`)
      nonZero.push(`${field(32)} != 0`)
      zero.push(`${v4} = 0`)
      off += 32
    } else if (bits !== undefined) {
      const v = `if(isNull(${k}), ${1n << BigInt(bits)}, toUInt64(assumeNotNull(${k})))`
      parts.push(off === 0 ? v : `bitShiftLeft(${v}, ${off})`)
      shown.push(
        `if(${field(bits + 1)} = ${1n << BigInt(bits)}, NULL, toUInt${bits}(${field(bits)})) AS ${k}`,
      )
      off += bits + 1
    } else return undefined
    if (off > 64) return undefined
  }
  // The narrowest type: a 16-bit key is an array index in ClickHouse, wider ones are hashed. One IPv4
  // column alone is its UInt32 as it is (the conversions cost 18.16 a fifth of the query).
  const width = off <= 8 ? 8 : off <= 16 ? 16 : off <= 32 ? 32 : 64
  const onlyV4 = keys.length === 1 ? d.ipv4Column?.(keys[0]!) : undefined
  return {
    single: onlyV4 !== undefined,
    packed:
      onlyV4 ??
      `toUInt${width}(${parts.length === 1 ? parts[0] : parts.reduce((a, b) => `bitOr(${a}, ${b})`)})`,
    shown: shown.join(', '),
    having: nonZero.join(' AND '),
    rest: zero.length > 0 ? zero.join(' OR ') : undefined,
  }
}

/** The whole SELECT for a flow query. */
export function compileQuery(q: FlowQuery, dialect: SqlDialect = new DuckDbDialect()): CompiledSql {
  const c = new Compiler(dialect, joinedInFilter(q.filter, new Set()).size === 0)
  const filterSql = q.filter !== undefined ? c.expr(q.filter) : undefined
  const filterJoined = c.joined.size > 0
  const limit = Math.max(1, Math.floor(q.limit ?? (q.top !== undefined ? 10 : 20)))
  const times: string[] = []
  if (q.since !== undefined) times.push(`time_start >= ${dialect.time(q.since)}`)
  if (q.until !== undefined) times.push(`time_start < ${dialect.time(q.until)}`)
  const topCols = q.top !== undefined && q.top.length > 0 ? q.top.map(topColumn) : undefined
  // A column grouped twice would come back as two result columns of one name, which the stores cannot read.
  topCols?.forEach((n, i) => {
    if (topCols.indexOf(n) !== i) throw new Error(`--top field "${q.top?.[i] ?? n}" repeats the column ${n}`)
  })
  const shownNames = topCols === undefined ? listingColumns(q, dialect.joins !== undefined) : []
  const used = new Set([...c.joined, ...(topCols ?? shownNames).filter((n) => JOINED_BY_NAME.has(n))])
  let table = dialect.table
  let whereConds: string[]
  const whereOf = (conds: string[]): string => (conds.length > 0 ? ` WHERE ${conds.join(' AND ')}` : '')
  if (used.size > 0) {
    if (dialect.joins === undefined)
      throw new Error(`${[...used].join(', ')}: needs the options table, which this store does not have`)
    // Conditions on flow columns run before the joins; a filter on joined fields after them. A listing
    // whose rows flow columns alone select is ordered and cut before the joins too (only its rows are joined).
    let inner = whereOf(filterSql !== undefined && !filterJoined ? [filterSql, ...times] : times)
    if (topCols === undefined && !filterJoined) inner += ` ORDER BY ${listingOrder(q)} LIMIT ${limit}`
    table = joinedSource(dialect.table, used, inner, dialect.joins) ?? table
    whereConds = filterSql !== undefined && filterJoined ? [filterSql] : []
  } else whereConds = filterSql !== undefined ? [filterSql, ...times] : times
  const whereSql = whereOf(whereConds)
  if (topCols !== undefined) {
    const cols = topCols
    const by = q.by ?? 'bytes'
    // Addresses group by their key; the other columns by themselves.
    const keys = cols.map((n) => ADDRESS_KEYS[n] ?? n)
    const addressColumns = cols.filter((n) => ADDRESS_KEYS[n] !== undefined)
    const g = keys.join(', ')
    const shownAs = (n: string, i: number): string => {
      const key = ADDRESS_KEYS[n]
      if (key !== undefined) return dialect.topAddress(key, n)
      const col = COLUMN_BY_NAME.get(n)
      return dialect.nestTop && col !== undefined ? dialect.selectColumn(col) : (keys[i] ?? n)
    }
    if (dialect.nestTop) {
      const aggs = 'count() AS flows_n, sum(total_packets) AS packets_n, sum(total_bytes) AS bytes_n'
      const own = table === dialect.table
      const packed = own ? packedGrouping(keys, dialect) : undefined
      const v4 = own && packed === undefined ? ipv4Grouping(keys, dialect) : undefined
      const rest = (zero: string): string =>
        // PREWHERE: only the granules holding such rows are read past the IPv4 columns.
        ` UNION ALL SELECT ${g}, ${aggs} FROM ${table} PREWHERE ${zero}${whereSql} GROUP BY ${g}`
      // One IPv4 key: its top `limit` numbers by the ordering aggregate alone first, then all the aggregates
      // for those only (18.16 spends as much on two more sums over every row as on the grouping). The
      // numbers order as their keys do, so ties at the cut fall as in one pass.
      const topOnly =
        packed?.single === true
          ? ` PREWHERE ${packed.packed} IN (SELECT p FROM (SELECT ${packed.packed} AS p, ${BY_AGGREGATE[by]} ` +
            `AS n FROM ${table}${whereSql} GROUP BY p HAVING ${packed.having} ORDER BY n DESC, p LIMIT ${limit}))`
          : ''
      const inner =
        packed !== undefined
          ? `SELECT ${packed.shown}, flows_n, packets_n, bytes_n FROM (SELECT ${packed.packed} AS p, ${aggs} ` +
            `FROM ${table}${topOnly}${whereSql} GROUP BY p${packed.having !== '' ? ` HAVING ${packed.having}` : ''})` +
            (packed.rest !== undefined ? rest(packed.rest) : '')
          : v4 !== undefined
            ? // IPv4 rows grouped by the numbers (every address column non-zero), the rest by the keys.
              `SELECT ${v4.shown}, flows_n, packets_n, bytes_n FROM (SELECT ${v4.groups}, ${aggs} FROM ` +
              `${table}${whereSql} GROUP BY ${v4.groupBy} HAVING ${v4.nonZero})${rest(v4.zero)}`
            : `SELECT ${g}, ${aggs} FROM ${table}${whereSql} GROUP BY ${g}`
      const sql =
        `SELECT ${cols.map(shownAs).join(', ')}, flows_n AS flows, packets_n AS packets, bytes_n AS bytes ` +
        `FROM (${inner}) ORDER BY ${by} DESC, ${g} LIMIT ${limit}`
      return { sql, params: c.params, addressColumns }
    }
    // As BIGINT: DuckDB sums those on a fast path, UBIGINT through HUGEINT (the totals are capped at 2^63−1,
    // store/normalize.ts TOTAL_MAX).
    const sql =
      `SELECT ${cols.map(shownAs).join(', ')}, count(*) AS flows, sum(total_packets::BIGINT) AS packets, ` +
      `sum(total_bytes::BIGINT) AS bytes FROM ${table}${whereSql} ` +
      `GROUP BY ${g} ORDER BY ${by} DESC, ${g} LIMIT ${limit}`
    return { sql, params: c.params, addressColumns }
  }
  const select = shownNames
    .map((n) => {
      const col = COLUMN_BY_NAME.get(n)
      return col !== undefined ? dialect.selectColumn(col) : n
    })
    .join(', ')
  const sql = `SELECT ${select} FROM ${table}${whereSql} ORDER BY ${listingOrder(q)} LIMIT ${limit}`
  return { sql, params: c.params }
}
