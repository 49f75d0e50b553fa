/**
 * DuckDB data chunks filled in bulk from a ColumnBatch (DuckDB C API through @duckdb/node-bindings:
 * `copy_data_to_vector`, `copy_data_to_vector_validity`, `vector_assign_string_element`). Per column of a
 * chunk of up to 2048 rows the values are written into one reused typed array in the vector's physical
 * layout (UTINYINT/USMALLINT/UINTEGER as 1/2/4-byte integers, UBIGINT and TIMESTAMP (µs) as 8 bytes,
 * UHUGEINT as {lower, upper} 64-bit words, BOOLEAN as one byte, all little-endian as the host is) and a
 * validity bitmap (bit i of 64-bit word i/64 set = row i is not NULL), then copied into the vector with one
 * call each. Strings of at most 12 ASCII characters are written in DuckDB's inline string form
 * (`duckdb_string_t`: 32-bit length, then the characters, zero padded; no heap) with the rest of the chunk's
 * column in one copy, longer or non-ASCII ones take one call each. A column no row of the chunk has costs two
 * calls.
 *
 * The conversion rules are those of the per-cell path they replace: a value the column cannot hold (wrong
 * type, out of range) is stored as NULL.
 */
import duckdb from '@duckdb/node-bindings'
import type { ValueKind } from '../schema/columns.js'
import type { RowValue } from './normalize.js'
import { KIND_WIDTH, type TypedColumn } from './typed-batch.js'

/** Rows per data chunk: DuckDB's vector size. */
export const CHUNK_ROWS = 2048

const U64_MAX = (1n << 64n) - 1n
const U128_MAX = (1n << 128n) - 1n
const I64_MIN = -(1n << 63n)
const I64_MAX = (1n << 63n) - 1n
const TWO32 = 4294967296

/** Scratch buffers for one chunk column: 16 bytes per row (the widest type) and the validity bitmap. */
export class ChunkScratch {
  readonly data = new ArrayBuffer(CHUNK_ROWS * 16)
  readonly u8 = new Uint8Array(this.data)
  readonly u16 = new Uint16Array(this.data)
  readonly u32 = new Uint32Array(this.data)
  readonly u64 = new BigUint64Array(this.data)
  readonly i64 = new BigInt64Array(this.data)
  readonly validity = new ArrayBuffer(CHUNK_ROWS / 8)
  readonly valid = new Uint8Array(this.validity)
  readonly noneValid = new ArrayBuffer(CHUNK_ROWS / 8)
  /** Rows of a text column that are not stored inline: index, string, index, string, … */
  readonly long: Array<number | string> = []
}

/** Octets a string may have to be stored inline in its 16-octet duckdb_string_t. */
const INLINE_MAX = 12

/**
 * Writes `v` into row i of the scratch column as an inline duckdb_string_t; false (nothing written) when
 * it is longer than INLINE_MAX or not ASCII (one octet per character).
 */
function putInline(s: ChunkScratch, i: number, v: string): boolean {
  const len = v.length
  if (len > INLINE_MAX) return false
  const u8 = s.u8
  const at = i * 16 + 4
  for (let k = 0; k < len; k++) {
    const ch = v.charCodeAt(k)
    if (ch >= 0x80) return false
    u8[at + k] = ch
  }
  s.u32[i * 4] = len
  return true
}

/**
 * After putInline for rows [0, n): the inline strings into the vector in one copy, then each of the `long`
 * rows (index, string) with a call of its own (DuckDB copies it into the vector's heap).
 */
function flushStrings(vector: duckdb.Vector, s: ChunkScratch, n: number, long: Array<number | string>): void {
  duckdb.copy_data_to_vector(vector, 0, s.data, 0, n * 16)
  for (let k = 0; k < long.length; k += 2)
    duckdb.vector_assign_string_element(vector, long[k] as number, long[k + 1] as string)
  long.length = 0
}

function setNull(vector: duckdb.Vector, s: ChunkScratch, n: number): void {
  duckdb.vector_ensure_validity_writable(vector)
  duckdb.copy_data_to_vector_validity(vector, 0, s.noneValid, 0, Math.ceil(n / 64) * 8)
}

/**
 * Fills `vector` with values[from, from + n) of a column of `kind` (undefined kind: a column this release
 * does not know, all NULL). `values` may be shorter than from + n (the cells past its end are NULL).
 */
export function fillVector(
  vector: duckdb.Vector,
  kind: ValueKind | undefined,
  values: readonly RowValue[] | undefined,
  from: number,
  n: number,
  s: ChunkScratch,
): void {
  const have = values === undefined || kind === undefined ? 0 : Math.max(0, Math.min(n, values.length - from))
  if (have === 0 || values === undefined || kind === undefined) return setNull(vector, s, n)
  const valid = s.valid
  valid.fill(0)
  let any = false
  let all = true
  switch (kind) {
    case 'u8':
    case 'u16':
    case 'u32': {
      const max = kind === 'u8' ? 0xff : kind === 'u16' ? 0xffff : 0xffffffff
      const a = kind === 'u8' ? s.u8 : kind === 'u16' ? s.u16 : s.u32
      for (let i = 0; i < have; i++) {
        const v = values[from + i]
        const x = typeof v === 'bigint' ? Number(v) : v
        if (typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= max) {
          a[i] = x
          valid[i >> 3]! |= 1 << (i & 7)
          any = true
        } else all = false
      }
      break
    }
    case 'u64': {
      const a = s.u64
      const w = s.u32
      for (let i = 0; i < have; i++) {
        const v = values[from + i]
        if (typeof v === 'number') {
          if (!Number.isSafeInteger(v) || v < 0) {
            all = false
            continue
          }
          w[2 * i] = v % TWO32
          w[2 * i + 1] = Math.floor(v / TWO32)
        } else if (typeof v === 'bigint' && v >= 0n && v <= U64_MAX) a[i] = v
        else {
          all = false
          continue
        }
        valid[i >> 3]! |= 1 << (i & 7)
        any = true
      }
      break
    }
    case 'time': {
      const a = s.i64
      for (let i = 0; i < have; i++) {
        const v = values[from + i]
        if (typeof v === 'bigint' && v >= I64_MIN && v <= I64_MAX) {
          a[i] = v
          valid[i >> 3]! |= 1 << (i & 7)
          any = true
        } else all = false
      }
      break
    }
    case 'ipkey': {
      const a = s.u64
      for (let i = 0; i < have; i++) {
        const v = values[from + i]
        if (typeof v === 'bigint' && v >= 0n && v <= U128_MAX) {
          a[2 * i] = BigInt.asUintN(64, v)
          a[2 * i + 1] = v >> 64n
          valid[i >> 3]! |= 1 << (i & 7)
          any = true
        } else all = false
      }
      break
    }
    case 'bool': {
      const a = s.u8
      for (let i = 0; i < have; i++) {
        const v = values[from + i]
        if (typeof v === 'boolean') {
          a[i] = v ? 1 : 0
          valid[i >> 3]! |= 1 << (i & 7)
          any = true
        } else all = false
      }
      break
    }
    case 'text':
    case 'json': {
      s.u8.fill(0, 0, n * 16)
      for (let i = 0; i < have; i++) {
        const v = values[from + i]
        if (typeof v === 'string') {
          if (!putInline(s, i, v)) s.long.push(i, v)
          valid[i >> 3]! |= 1 << (i & 7)
          any = true
        } else all = false
      }
      if (any) flushStrings(vector, s, n, s.long)
      break
    }
  }
  if (!any) return setNull(vector, s, n)
  const width = KIND_WIDTH[kind]
  if (width > 0) duckdb.copy_data_to_vector(vector, 0, s.data, 0, have * width)
  if (!all || have < n) {
    duckdb.vector_ensure_validity_writable(vector)
    duckdb.copy_data_to_vector_validity(vector, 0, s.validity, 0, Math.ceil(n / 64) * 8)
  }
}

/**
 * Fills `vector` with rows [from, from + n) of a typed column (typed-batch.ts; undefined: all NULL). Its
 * bytes are already in the vector's layout and its validity a bitmap, so a fixed-width column is two copies;
 * `from` is a multiple of CHUNK_ROWS, so the bitmap slice starts on a whole octet.
 */
export function fillVectorTyped(
  vector: duckdb.Vector,
  t: TypedColumn | undefined,
  from: number,
  n: number,
  s: ChunkScratch,
): void {
  if (t === undefined) return setNull(vector, s, n)
  if (t.width > 0)
    duckdb.copy_data_to_vector(
      vector,
      0,
      t.bytes.buffer as ArrayBuffer,
      t.bytes.byteOffset + from * t.width,
      n * t.width,
    )
  else {
    const valid = t.valid
    const u32 = s.u32
    s.u8.fill(0, 0, n * 16)
    // The row before's inline string, copied as its 16 octets when this row holds the same (exporter,
    // flow_version: one value in every row).
    let prev: string | undefined
    let prevAt = 0
    for (let i = 0; i < n; i++) {
      const r = from + i
      const v = t.strings[r]
      if ((valid[r >> 3]! & (1 << (r & 7))) === 0 || typeof v !== 'string') continue
      if (v === prev) {
        const a = i * 4
        const b = prevAt * 4
        u32[a] = u32[b]!
        u32[a + 1] = u32[b + 1]!
        u32[a + 2] = u32[b + 2]!
        u32[a + 3] = u32[b + 3]!
      } else if (putInline(s, i, v)) {
        prev = v
        prevAt = i
      } else s.long.push(i, v)
    }
    flushStrings(vector, s, n, s.long)
  }
  // A new vector is all valid without a mask: one is made only for a chunk with a NULL in this column (DuckDB
  // then also takes its all-valid paths when appending and compressing).
  if (allValid(t.valid, from, n)) return
  duckdb.vector_ensure_validity_writable(vector)
  duckdb.copy_data_to_vector_validity(
    vector,
    0,
    t.valid.buffer as ArrayBuffer,
    t.valid.byteOffset + from / 8,
    Math.ceil(n / 64) * 8,
  )
}

/** Whether bits [from, from + n) of a validity bitmap are all set (`from` a multiple of 8). */
export function allValid(valid: Uint8Array, from: number, n: number): boolean {
  const first = from >> 3
  const whole = n >> 3
  for (let i = 0; i < whole; i++) if (valid[first + i] !== 0xff) return false
  const rest = n & 7
  return rest === 0 || ((valid[first + whole] ?? 0) & ((1 << rest) - 1)) === (1 << rest) - 1
}
