/**
 * Rows held by column in typed arrays, in the physical layout both stores take: each fixed-width column
 * is one byte array of `width` octets per row, little-endian (UInt8/16/32/64 as such, times as signed 64-bit
 * microseconds, address keys as 128-bit {lower, upper} 64-bit words: DuckDB's UHUGEINT), with a validity
 * bitmap (bit i of octet i/8 set = row i is not NULL, so 2048-row DuckDB chunks start on whole octets);
 * text columns are arrays of strings. Filled by fast-plan.ts straight from IPFIX data sets; DuckDB copies
 * the bytes into its vectors (duckdb-chunk.ts), ClickHouse writes them into RowBinary.
 *
 * A column no row has set takes no memory and reads as NULL. `toColumnBatch` gives the same rows as a
 * ColumnBatch (for a store without a typed path, and for a retry after a failed insert).
 */
import type { Column, ValueKind } from '../schema/columns.js'
import type { RowValue } from './normalize.js'
import type { ColumnBatch } from './column-batch.js'

/** Octets per cell of a column kind in the typed layout (and in DuckDB vectors); 0: text, not fixed. */
export const KIND_WIDTH: Record<ValueKind, number> = {
  u8: 1,
  u16: 2,
  u32: 4,
  u64: 8,
  time: 8,
  ipkey: 16,
  bool: 1,
  text: 0,
  json: 0,
}

export interface TypedColumn {
  readonly column: Column
  readonly width: number
  /** width octets per row (fixed-width kinds). */
  bytes: Uint8Array
  /** Text kinds: the values (undefined / null = NULL). */
  strings: Array<string | null>
  /** Bit i set: row i is not NULL. */
  valid: Uint8Array
}

export class TypedBatch {
  length = 0
  private capacity: number
  readonly columns = new Map<string, TypedColumn>()

  /** Room for `initialRows` rows before the first growth (rounded up to whole 64-row bitmap words). */
  constructor(initialRows = 4096) {
    this.capacity = Math.max(64, Math.ceil(initialRows / 64) * 64)
  }

  /** The column's storage (created on first use, grown with the batch). */
  column(c: Column): TypedColumn {
    let t = this.columns.get(c.name)
    if (t === undefined) {
      const width = KIND_WIDTH[c.kind]
      t = {
        column: c,
        width,
        bytes: new Uint8Array(width * this.capacity),
        strings: [],
        valid: new Uint8Array(this.capacity >> 3),
      }
      this.columns.set(c.name, t)
    }
    return t
  }

  /** Makes room for `n` more rows (call before filling rows length .. length + n - 1). */
  reserve(n: number): void {
    const need = this.length + n
    if (need <= this.capacity) return
    let cap = this.capacity
    while (cap < need) cap *= 2
    for (const t of this.columns.values()) {
      const b = new Uint8Array(t.width * cap)
      b.set(t.bytes)
      t.bytes = b
      const v = new Uint8Array(cap >> 3)
      v.set(t.valid)
      t.valid = v
    }
    this.capacity = cap
  }

  /** Drops rows [length, filled) that were being written (their cells become NULL again). */
  truncate(length: number, filled: number): void {
    for (const t of this.columns.values()) {
      for (let i = length; i < filled; i++) t.valid[i >> 3]! &= ~(1 << (i & 7))
      if (t.strings.length > length) t.strings.length = length
    }
    this.length = length
  }

  /** The value of row i of a column as a ColumnBatch holds it (times and 64/128-bit numbers as bigint). */
  value(t: TypedColumn, i: number): RowValue {
    if ((t.valid[i >> 3]! & (1 << (i & 7))) === 0) return null
    const k = t.column.kind
    if (k === 'text' || k === 'json') return t.strings[i] ?? null
    const dv = new DataView(t.bytes.buffer, t.bytes.byteOffset + i * t.width, t.width)
    switch (k) {
      case 'u8':
        return dv.getUint8(0)
      case 'u16':
        return dv.getUint16(0, true)
      case 'u32':
        return dv.getUint32(0, true)
      case 'u64':
        return dv.getBigUint64(0, true)
      case 'time':
        return dv.getBigInt64(0, true)
      case 'ipkey':
        return (dv.getBigUint64(8, true) << 64n) | dv.getBigUint64(0, true)
      case 'bool':
        return dv.getUint8(0) !== 0
    }
  }

  toColumnBatch(): ColumnBatch {
    const columns: Record<string, RowValue[]> = {}
    for (const [name, t] of this.columns) {
      const vs: RowValue[] = []
      for (let i = 0; i < this.length; i++) vs.push(this.value(t, i))
      columns[name] = vs
    }
    return { length: this.length, columns }
  }
}
