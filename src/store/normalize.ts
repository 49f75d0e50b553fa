/**
 * Decoded record (collector output, with exporter and domain metadata) → one flow row keyed by column name
 * (schema/columns.ts), and a stored row back to the `recordToJson` form, so a round trip can be checked
 * field by field.
 *
 * Each column takes the first of its elements present whose value fits the column (an integer in range for
 * integer columns, text for text ones). Everything else goes to `extra` in `valueToJson` form: elements
 * without a column, values that do not fit, all occurrences of a repeated element (as a list, in record
 * order), and values taken from a non-canonical element (flowStartSeconds into time_start, say), so the
 * original element survives; such columns are listed under `extra["@derived"]`, and rowToJson leaves them
 * out (their element comes from `extra`).
 */
import type { CollectedRecord } from '../collector/decode-message.js'
import { valueToJson, type DecodedField, type FieldValue } from '../ipfix/decoder.js'
import { COLUMNS, COLUMN_BY_IE, type Column } from '../schema/columns.js'
import { ipKey } from '../schema/ip-key.js'

export type RowValue = number | bigint | boolean | string | null

/** One flow row: column name → value (times as bigint microseconds since 1970). */
export type FlowRow = Record<string, RowValue>

const MAX = { u8: 0xff, u16: 0xffff, u32: 0xffffffff } as const

/** The column value for a field, or undefined when it does not fit the column. */
export function convert(c: Column, f: DecodedField): RowValue | undefined {
  const v: FieldValue = f.value
  switch (c.kind) {
    case 'u8':
    case 'u16':
    case 'u32': {
      const n = typeof v === 'bigint' ? Number(v) : v
      return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= MAX[c.kind] ? n : undefined
    }
    case 'u64':
      if (typeof v === 'bigint') return v >= 0n && v < 1n << 64n ? v : undefined
      return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? BigInt(v) : undefined
    case 'bool':
      return typeof v === 'boolean' ? v : undefined
    case 'text':
      if (f.type === 'macAddress')
        return v instanceof Uint8Array ? (valueToJson(f.type, v) as string) : undefined
      return typeof v === 'string' ? v : undefined
    case 'time':
      switch (f.type) {
        case 'dateTimeSeconds':
          return typeof v === 'number' ? BigInt(v) * 1_000_000n : undefined
        case 'dateTimeMilliseconds':
          return typeof v === 'bigint' ? v * 1000n : undefined
        case 'dateTimeMicroseconds':
        case 'dateTimeNanoseconds':
          return typeof v === 'bigint' ? v / 1000n : undefined
        default:
          return undefined
      }
    default:
      return undefined
  }
}

/**
 * The cap of the total columns, 2^63−1: they are UInt64, but top-N sums them as signed 64-bit integers
 * (DuckDB sums BIGINT on a fast path and UBIGINT through HUGEINT, a quarter of a top-N's time). A flow of
 * more than 9.2 EB exists only in a broken export; the per-direction columns keep its values as sent.
 */
export const TOTAL_MAX = (1n << 63n) - 1n

/** Both directions added, an absent one as 0, capped at TOTAL_MAX. */
export function total(a: RowValue | undefined, b: RowValue | undefined): bigint {
  const s = (typeof a === 'bigint' ? a : 0n) + (typeof b === 'bigint' ? b : 0n)
  return s > TOTAL_MAX ? TOTAL_MAX : s
}

/** Key in `extra` listing the columns filled from a non-canonical element (kept in `extra` as sent). */
export const DERIVED = '@derived'

export const VERSION_NAMES: Record<string, string> = {
  '10': 'ipfix',
  '9': 'netflow9',
  '5': 'netflow5',
  sflow: 'sflow',
}

/**
 * The element a column value stands for when read back: the address columns by the value's family, the
 * ICMP columns by the family of the row's source address, otherwise the first element of the column.
 */
export function canonicalIe(c: Column, v: RowValue, row: FlowRow): string | undefined {
  if (c.name === 'src_addr' || c.name === 'dst_addr')
    return typeof v === 'string' && v.includes(':') ? c.ies[1] : c.ies[0]
  if (c.name === 'icmp_type_code' || c.name === 'rev_icmp_type_code')
    return typeof row.src_addr === 'string' && row.src_addr.includes(':') ? c.ies[1] : c.ies[0]
  return c.ies[0]
}

/**
 * Field `k` of a record as it goes to `extra`: an RFC 6313 list as the JSON the collector decoded it to
 * (structured.ts: elements, sub-template records), anything else (and an undecodable list, as hex) in
 * valueToJson form.
 */
export function extraValue(r: CollectedRecord, k: number): unknown {
  const s = r.structured?.get(k)
  if (s !== undefined) return s
  const f = r.fields[k]!
  return valueToJson(f.type, f.value)
}

/** One decoded data record → a row; `receivedUs` is the collector's clock in microseconds. */
export function normalize(r: CollectedRecord, receivedUs: bigint = BigInt(Date.now()) * 1000n): FlowRow {
  // Every key in COLUMNS order first: all rows share one shape, which keeps property access fast.
  const row: FlowRow = {}
  for (const c of COLUMNS) row[c.name] = null
  const extra: Record<string, unknown> = {}
  const counts = new Map<string, number>()
  for (const f of r.fields) counts.set(f.name, (counts.get(f.name) ?? 0) + 1)
  const from = new Map<Column, DecodedField>()
  for (let k = 0; k < r.fields.length; k++) {
    const f = r.fields[k]!
    const repeated = (counts.get(f.name) ?? 0) > 1
    if (repeated) {
      const prev = extra[f.name]
      const v = extraValue(r, k)
      if (Array.isArray(prev)) prev.push(v)
      else extra[f.name] = [v]
    }
    const c = COLUMN_BY_IE.get(f.name)
    const v = c !== undefined && !from.has(c) ? convert(c, f) : undefined
    if (c !== undefined && v !== undefined) {
      row[c.name] = v
      from.set(c, f)
    } else if (!repeated) extra[f.name] = extraValue(r, k)
  }
  const derived: string[] = []
  for (const [c, f] of from)
    if (f.name !== canonicalIe(c, row[c.name] ?? null, row)) {
      derived.push(c.name)
      if (!Object.hasOwn(extra, f.name)) extra[f.name] = valueToJson(f.type, f.value)
    }
  if (derived.length > 0) extra[DERIVED] = derived
  for (const c of COLUMNS) {
    switch (c.meta) {
      case 'received':
        row[c.name] = receivedUs
        break
      case 'exporter':
        row[c.name] = r.exporter
        break
      case 'domain':
        row[c.name] = r.odid
        break
      case 'template':
        row[c.name] = r.templateId
        break
      case 'version':
        row[c.name] = VERSION_NAMES[String(r.version)] ?? String(r.version)
        break
      case 'srcKey':
        row[c.name] = typeof row.src_addr === 'string' ? (ipKey(row.src_addr) ?? null) : null
        break
      case 'dstKey':
        row[c.name] = typeof row.dst_addr === 'string' ? (ipKey(row.dst_addr) ?? null) : null
        break
      case 'totalBytes':
        row[c.name] = total(row.bytes, row.rev_bytes)
        break
      case 'totalPackets':
        row[c.name] = total(row.packets, row.rev_packets)
        break
      default:
        if (c.kind === 'json') row[c.name] = Object.keys(extra).length > 0 ? JSON.stringify(extra) : null
        else row[c.name] ??= null
    }
  }
  return row
}

/** A stored value (times as bigint µs) in `recordToJson` form. */
function columnJson(c: Column, v: RowValue): unknown {
  if (c.kind === 'time' && typeof v === 'bigint') return valueToJson('dateTimeMilliseconds', v / 1000n)
  if (typeof v === 'bigint') return valueToJson('unsigned64', v)
  return v
}

/**
 * A stored row → the element-keyed object `recordToJson` gives for the original record (element order is
 * not kept). Times come back in milliseconds, the probe's precision.
 */
export function rowToJson(row: FlowRow): Record<string, unknown> {
  const text = row.extra
  const extra = typeof text === 'string' ? (JSON.parse(text) as Record<string, unknown>) : {}
  const derivedList = extra[DERIVED]
  const derived = new Set(Array.isArray(derivedList) ? (derivedList as string[]) : [])
  delete extra[DERIVED]
  const o: Record<string, unknown> = {}
  for (const c of COLUMNS) {
    const v = row[c.name]
    if (c.ies.length === 0 || v === null || v === undefined || derived.has(c.name)) continue
    const ie = canonicalIe(c, v, row)
    // A repeated element is in extra whole (as a list).
    if (ie !== undefined && !Object.hasOwn(extra, ie)) o[ie] = columnJson(c, v)
  }
  return { ...o, ...extra }
}
