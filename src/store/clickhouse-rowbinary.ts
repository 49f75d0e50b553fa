/**
 * Batches in ClickHouse's RowBinary input format (ClickHouse docs, "Formats: RowBinary"): per row, per
 * column, a Nullable flag byte (1 = NULL) when the column is Nullable, then the value: integers fixed-width
 * little-endian, String as LEB128 length + UTF-8 bytes, FixedString(16) / IPv6 as 16 bytes in network order,
 * UInt64 (18.16) or DateTime64(6) (Int64 ticks) microsecond times, UInt8 / Bool booleans. The same bytes fit
 * both schema generations (LowCardinality is invisible in RowBinary), so one encoder serves 18.16 and new
 * servers. A value that a column cannot hold (wrong type, out of range, a time before 1970 in an 18.16
 * UInt64 column) is written as NULL, or the type's zero in a non-Nullable column, never as wrong bytes.
 */
import type { Column } from '../schema/columns.js'
import type { ColumnBatch } from './column-batch.js'
import type { RowValue } from './normalize.js'
import { KIND_WIDTH, type TypedBatch } from './typed-batch.js'

class Out {
  buf = Buffer.allocUnsafe(1 << 16)
  pos = 0
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }
  u8(n: number): void {
    this.ensure(1)
    this.buf[this.pos++] = n
  }
}

/** Writes a present value; returns false when the value does not fit (the caller then writes NULL). */
type ValueWriter = (o: Out, v: Exclude<RowValue, null>) => boolean

const U64_MAX = (1n << 64n) - 1n

const intWriter =
  (bytes: 1 | 2 | 4, max: number): ValueWriter =>
  (o, v) => {
    const n = typeof v === 'bigint' ? Number(v) : v
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) return false
    o.ensure(bytes)
    o.buf.writeUIntLE(n, o.pos, bytes)
    o.pos += bytes
    return true
  }

const u64Writer: ValueWriter = (o, v) => {
  const n = typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v
  if (typeof n !== 'bigint' || n < 0n || n > U64_MAX) return false
  o.ensure(8)
  o.buf.writeBigUInt64LE(n, o.pos)
  o.pos += 8
  return true
}

const boolWriter: ValueWriter = (o, v) => {
  if (typeof v !== 'boolean') return false
  o.u8(v ? 1 : 0)
  return true
}

const stringWriter: ValueWriter = (o, v) => {
  if (typeof v !== 'string') return false
  const len = Buffer.byteLength(v, 'utf8')
  o.ensure(len + 10)
  let n = len
  while (n >= 0x80) {
    o.buf[o.pos++] = (n & 0x7f) | 0x80
    n >>>= 7
  }
  o.buf[o.pos++] = n
  o.pos += o.buf.write(v, o.pos, 'utf8')
  return true
}

const ipKeyWriter: ValueWriter = (o, v) => {
  if (typeof v !== 'bigint' || v < 0n || v >= 1n << 128n) return false
  o.ensure(16)
  o.buf.writeBigUInt64BE(v >> 64n, o.pos)
  o.buf.writeBigUInt64BE(v & 0xffffffffffffffffn, o.pos + 8)
  o.pos += 16
  return true
}

function writerFor(c: Column): ValueWriter {
  switch (c.kind) {
    case 'u8':
      return intWriter(1, 0xff)
    case 'u16':
      return intWriter(2, 0xffff)
    case 'u32':
      return intWriter(4, 0xffffffff)
    case 'u64':
    case 'time': // µs since 1970: UInt64 (18.16) or DateTime64(6) ticks (same bytes for times ≥ 1970)
      return u64Writer
    case 'bool':
      return boolWriter
    case 'ipkey':
      return ipKeyWriter
    case 'text':
    case 'json':
      return stringWriter
  }
}

/** The zero value written for a missing value in a non-Nullable column. */
const ZERO: Record<Column['kind'], Exclude<RowValue, null>> = {
  u8: 0,
  u16: 0,
  u32: 0,
  u64: 0n,
  time: 0n,
  bool: false,
  ipkey: 0n,
  text: '',
  json: '',
}

export interface EncodedColumn {
  readonly column: Column
  readonly nullable: boolean
}

/** Encodes a batch as RowBinary, in the order of `columns` (the INSERT's column list). */
export function encodeRowBinary(batch: ColumnBatch, columns: readonly EncodedColumn[]): Buffer {
  const o = new Out()
  const plan = columns.map((c) => ({
    values: batch.columns[c.column.name],
    nullable: c.nullable,
    write: writerFor(c.column),
    zero: ZERO[c.column.kind],
  }))
  for (let i = 0; i < batch.length; i++) {
    for (const p of plan) {
      const v = p.values?.[i] ?? null
      if (p.nullable) {
        const flagAt = o.pos
        o.u8(0)
        if (v === null || !p.write(o, v)) o.buf[flagAt] = 1
      } else if (v === null || !p.write(o, v)) p.write(o, p.zero)
    }
  }
  return o.buf.subarray(0, o.pos)
}

/**
 * RowBinary of a typed batch (typed-batch.ts), in the order of `columns`. Its fixed-width columns already
 * hold little-endian bytes (RowBinary's order), copied as they are; address keys are reversed into network
 * order. The caller leaves out Nullable columns the batch does not have (they are NULL, the column's
 * default); a non-Nullable column without a value gets the type's zero.
 */
export function encodeRowBinaryTyped(batch: TypedBatch, columns: readonly EncodedColumn[]): Buffer {
  const o = new Out()
  const plan = columns.map((c) => {
    const t = batch.columns.get(c.column.name)
    const kind = c.column.kind
    return {
      nullable: c.nullable,
      // 0: fixed width, 1: address key (reversed), 2: text
      mode: kind === 'text' || kind === 'json' ? 2 : kind === 'ipkey' ? 1 : 0,
      width: KIND_WIDTH[kind],
      bytes: t?.bytes ?? new Uint8Array(0),
      valid:
        t === undefined
          ? new Uint8Array(0)
          : kind === 'time'
            ? from1970(t.valid, t.bytes, batch.length)
            : t.valid,
      strings: t?.strings ?? [],
    }
  })
  // Fixed-width octets per row (a string counts its length octet; its text is added as it comes).
  let fixed = 0
  for (const p of plan) fixed += (p.nullable ? 1 : 0) + (p.mode === 2 ? 1 : p.width)
  o.ensure(fixed * batch.length)
  const np = plan.length
  for (let i = 0; i < batch.length; i++) {
    const byte = i >> 3
    const bit = 1 << (i & 7)
    // Room for the row's fixed-width part; each string makes room for itself and the rest of the row.
    o.ensure(fixed)
    let buf = o.buf
    let pos = o.pos
    for (let c = 0; c < np; c++) {
      const p = plan[c]!
      const isValid = (p.valid[byte]! & bit) !== 0
      if (p.nullable) buf[pos++] = isValid ? 0 : 1
      if (p.mode === 2) {
        const v = isValid ? p.strings[i] : undefined
        if (typeof v !== 'string') {
          if (!p.nullable || isValid) buf[pos++] = 0 // the empty string
          continue
        }
        // ASCII up to 127 characters (addresses, names): length octet and characters written directly.
        let ascii = v.length < 128
        if (ascii) {
          o.pos = pos
          o.ensure(v.length + 1 + fixed)
          buf = o.buf
          buf[pos] = v.length
          for (let k = 0; k < v.length; k++) {
            const ch = v.charCodeAt(k)
            if (ch >= 0x80) {
              ascii = false
              break
            }
            buf[pos + 1 + k] = ch
          }
        }
        if (ascii) pos += v.length + 1
        else {
          o.pos = pos
          stringWriter(o, v)
          o.ensure(fixed)
          buf = o.buf
          pos = o.pos
        }
        continue
      }
      const w = p.width
      if (!isValid) {
        if (p.nullable) continue
        buf.fill(0, pos, pos + w)
        pos += w
        continue
      }
      const from = i * w
      const b = p.bytes
      if (p.mode === 1) for (let k = 0; k < 16; k++) buf[pos + k] = b[from + 15 - k]!
      else for (let k = 0; k < w; k++) buf[pos + k] = b[from + k]!
      pos += w
    }
    o.pos = pos
  }
  return o.buf.subarray(0, o.pos)
}

/**
 * The validity of a time column with the times before 1970 (negative µs) cleared: like the row encoder,
 * such a time is written as NULL (or zero), which an 18.16 UInt64 column can hold.
 */
function from1970(valid: Uint8Array, bytes: Uint8Array, n: number): Uint8Array {
  let out = valid
  for (let i = 0; i < n; i++) {
    if ((bytes[i * 8 + 7]! & 0x80) === 0 || (valid[i >> 3]! & (1 << (i & 7))) === 0) continue
    if (out === valid) out = valid.slice()
    out[i >> 3]! &= ~(1 << (i & 7))
  }
  return out
}
