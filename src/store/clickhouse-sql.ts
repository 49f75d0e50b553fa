/**
 * Values in ClickHouse SQL text, and the ClickHouse dialect of the query compiler (query/sql.ts).
 *
 * ClickHouse 18.16 has no query parameters, so values are written into the statement. THIS FILE IS THE ONLY
 * PLACE that does so, and every value goes through one of the literal writers below, each of which accepts
 * exactly one JavaScript type and produces a token that cannot end early:
 *
 * - chString: a single-quoted string. Backslash and quote are backslash-escaped; every other character below
 *   0x20, and 0x7f, becomes `\xHH`; the rest is copied. ClickHouse reads `\\`, `\'` and `\xHH` in string
 *   literals (18.16 and later), so the literal ends only at the final quote.
 * - chUInt: a decimal unsigned integer below 2^64, checked (no sign, no exponent, no text).
 * - chHex: exactly 2·n hex digits of a bigint, inside unhex('…').
 * - chBool: 1 or 0.
 *
 * Identifiers (database, table, columns) never come from input: they are checked against
 * `[A-Za-z_][A-Za-z0-9_]*` by chIdent. The unit tests (clickhouse-sql.test.ts) try injections through filter
 * strings and run them against a real server.
 */
import { IPV4_COLUMN_OF, type Column } from '../schema/columns.js'
import type { ParamType, SqlDialect, SqlParam } from '../query/sql.js'
import type { ClickHouseGeneration } from './clickhouse-version.js'

/** A string as a ClickHouse single-quoted literal. */
export function chString(s: string): string {
  if (typeof s !== 'string') throw new TypeError('chString: not a string')
  let out = "'"
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0
    if (ch === '\\') out += '\\\\'
    else if (ch === "'") out += "\\'"
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`
    else out += ch
  }
  return out + "'"
}

const U64_MAX = (1n << 64n) - 1n

/** An unsigned integer below 2^64 as decimal digits. */
export function chUInt(n: bigint | number): string {
  const v = typeof n === 'number' ? (Number.isSafeInteger(n) ? BigInt(n) : undefined) : n
  if (typeof v !== 'bigint' || v < 0n || v > U64_MAX)
    throw new RangeError(`chUInt: ${String(n)} is not a UInt64`)
  return v.toString(10)
}

/** A non-negative bigint below 2^(8·bytes) as unhex('…') with exactly 2·bytes digits. */
export function chHex(n: bigint, bytes: number): string {
  if (typeof n !== 'bigint' || n < 0n || n >= 1n << BigInt(8 * bytes))
    throw new RangeError(`chHex: ${String(n)} does not fit ${bytes} bytes`)
  return `unhex('${n.toString(16).padStart(2 * bytes, '0')}')`
}

export function chBool(b: boolean): string {
  if (typeof b !== 'boolean') throw new TypeError('chBool: not a boolean')
  return b ? '1' : '0'
}

/** An identifier we generate (database, table, column); anything else is refused. */
export function chIdent(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
    throw new Error(`bad ClickHouse identifier ${JSON.stringify(name)}`)
  return name
}

/** A 128-bit key as IPv6 text with all eight groups (only hex digits and colons). */
function ipv6Text(key: bigint): string {
  const groups: string[] = []
  for (let i = 7; i >= 0; i--) groups.push(((key >> BigInt(16 * i)) & 0xffffn).toString(16))
  return groups.join(':')
}

/**
 * A glob (`*`, `?`, `[abc]`, `[a-z]`, `[!abc]`, as DuckDB's GLOB reads it) → an anchored RE2 pattern for
 * ClickHouse `match()`; every other character is matched literally.
 */
export function globToRegex(glob: string): string {
  let re = '^'
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i] ?? ''
    if (ch === '*') re += '.*'
    else if (ch === '?') re += '.'
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 2)
      if (end < 0) {
        re += '\\['
        continue
      }
      let body = glob.slice(i + 1, end)
      const negate = body.startsWith('!')
      if (negate) body = body.slice(1)
      // Inside a class only \, ^, ] and [ are special to RE2; '-' keeps its range meaning.
      re += `[${negate ? '^' : ''}${body.replace(/[\\^[\]]/g, (c) => `\\${c}`)}]`
      i = end
    } else re += ch.replace(/[\\^$.|?*+()[\]{}]/g, (c) => `\\${c}`)
  }
  return `(?s)${re}$`
}

/** The ClickHouse dialect of query/sql.ts for a table of a generation; values become literals. */
export class ClickHouseDialect implements SqlDialect {
  readonly params: SqlParam[] = []
  readonly falseLiteral = '0'
  readonly nestTop = true
  readonly packKeys = true
  constructor(
    readonly table: string,
    readonly generation: ClickHouseGeneration,
    /** The computed IPv4 columns the table has (columns.ts COMPUTED_COLUMNS). */
    readonly ipv4Columns: ReadonlySet<string> = new Set(),
  ) {}

  ipv4Column(keyColumn: string): string | undefined {
    const c = IPV4_COLUMN_OF.get(keyColumn)
    return c !== undefined && this.ipv4Columns.has(c) ? c : undefined
  }

  ipv4ToKey(expr: string): string {
    return `IPv4ToIPv6(${expr})`
  }

  value(value: bigint | string | boolean, type: ParamType): string {
    switch (type) {
      case 'VARCHAR':
        if (typeof value !== 'string') throw new TypeError('expected a string value')
        return chString(value)
      case 'BOOLEAN':
        if (typeof value !== 'boolean') throw new TypeError('expected a boolean value')
        return chBool(value)
      case 'UHUGEINT':
        if (typeof value !== 'bigint') throw new TypeError('expected an address key')
        return this.ipKey(value)
      case 'TIMESTAMP':
        if (typeof value !== 'bigint') throw new TypeError('expected a time')
        return this.time(value)
      case 'UBIGINT':
        if (typeof value !== 'bigint') throw new TypeError('expected an integer value')
        return chUInt(value)
    }
  }

  ipKey(key: bigint): string {
    if (this.generation === 'legacy') return chHex(key, 16)
    chHex(key, 16) // range check
    return `toIPv6('${ipv6Text(key)}')`
  }

  time(us: bigint): string {
    return this.generation === 'legacy' ? chUInt(us) : `fromUnixTimestamp64Micro(toInt64(${chUInt(us)}))`
  }

  glob(column: string, pattern: string): string {
    return `match(${chIdent(column)}, ${chString(globToRegex(pattern))})`
  }

  flags(mask: number): string {
    const m = chUInt(mask)
    return `bitAnd(bitOr(coalesce(tcp_flags, 0), coalesce(rev_tcp_flags, 0)), ${m}) = ${m}`
  }

  selectColumn(c: Column): string {
    const name = chIdent(c.name)
    if (c.kind === 'ipkey') return `IPv6NumToString(${name}) AS ${name}${IP_SUFFIX}`
    if (c.kind === 'time' && this.generation === 'modern')
      return `toUnixTimestamp64Micro(${name}) AS ${name}${TIME_SUFFIX}`
    return name
  }

  topAddress(keyColumn: string, name: string): string {
    return `IPv6NumToString(${chIdent(keyColumn)}) AS ${chIdent(name)}${ADDRESS_SUFFIX}`
  }
}

/**
 * Result columns renamed by selectColumn: ClickHouse substitutes a SELECT alias wherever its name appears
 * (WHERE, ORDER BY), so a converted column must not be aliased to its own name; the store strips these.
 */
export const IP_SUFFIX = '__ip_text'
export const TIME_SUFFIX = '__us'
/** A top-N address (its key as IPv6 text), which the store turns into the address text (keyText). */
export const ADDRESS_SUFFIX = '__addr'
