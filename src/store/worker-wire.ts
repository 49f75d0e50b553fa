/**
 * The messages between WorkerStore (worker-store.ts) and the store thread (store-worker.ts), and a typed
 * batch (typed-batch.ts) as it crosses: its column octets and validity bitmaps are transferred (moved, not
 * copied), its text columns cloned, except that a text column holding one string in every row (exporter,
 * flow_version) crosses as that string once (a clone costs about 90 ns a string, sent and received);
 * columns travel by name and are looked up in the column table again. A batch that filled less than half
 * of its room (a flush by time) crosses with its columns cut to its rows, so a queue of small batches does
 * not hold the room of full ones. wireBytes and columnBatchBytes estimate the octets a batch holds while it
 * waits in the queue (the bound of worker-store.ts).
 */
import { COLUMN_BY_NAME } from '../schema/columns.js'
import type { FlowQuery } from '../query/sql.js'
import type { ColumnBatch } from './column-batch.js'
import type { OptionRow } from './options-rows.js'
import type { OptionsQuery } from './options-store.js'
import type { RetentionPolicy } from './store.js'
import { TypedBatch } from './typed-batch.js'

export interface WireColumn {
  readonly name: string
  readonly bytes: Uint8Array
  readonly valid: Uint8Array
  readonly strings: Array<string | null>
  /** Set when every row's string is this one (`strings` is then empty). */
  readonly constant?: string
}

export interface WireTypedBatch {
  readonly length: number
  readonly columns: WireColumn[]
}

export type Request = { readonly id: number } & (
  | { op: 'insert'; batch: ColumnBatch }
  | { op: 'insertTyped'; batch: WireTypedBatch }
  | { op: 'query'; query: FlowQuery }
  | { op: 'insertOptions'; rows: readonly OptionRow[] }
  | { op: 'options'; query: OptionsQuery }
  | { op: 'retain'; policy: RetentionPolicy }
  | { op: 'count' }
  | { op: 'migrate' }
  | { op: 'close' }
)

/**
 * id 0: the store opened (or not); id -1: an insert failed (kept and retried); else the reply to request id
 * (`abandoned`: an insert skipped because the close deadline passed).
 */
export type Reply =
  | { readonly id: number; readonly ok: true; readonly value?: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string; readonly abandoned?: boolean }

/** The batch as a message, and the buffers to transfer with it (the batch must not be used afterwards). */
export function toWire(b: TypedBatch): { wire: WireTypedBatch; transfer: ArrayBuffer[] } {
  const columns: WireColumn[] = []
  const transfer: ArrayBuffer[] = []
  // Rows kept: whole 64-row bitmap words, as TypedBatch rounds its room (fromWire's batch claims as much).
  const room = Math.max(64, Math.ceil(b.length / 64) * 64)
  for (const [name, t] of b.columns) {
    const constant = t.width === 0 ? constantText(t.strings, b.length) : undefined
    const cut = t.valid.byteLength > room >> 2 // more than twice the room the rows need
    const bytes = cut ? t.bytes.slice(0, room * t.width) : t.bytes
    const valid = cut ? t.valid.slice(0, room >> 3) : t.valid
    columns.push(
      constant !== undefined
        ? { name, bytes, valid, strings: [], constant }
        : { name, bytes, valid, strings: t.strings },
    )
    for (const a of [bytes, valid])
      if (a.byteLength > 0 && !transfer.includes(a.buffer as ArrayBuffer))
        transfer.push(a.buffer as ArrayBuffer)
  }
  return { wire: { length: b.length, columns }, transfer }
}

/** Octets a string takes in a V8 heap, about (header and one octet a character: most are Latin-1). */
const stringBytes = (s: string): number => 16 + s.length
/** Octets of an array slot. */
const SLOT = 8

/** Octets the wire batch holds while queued, about: its column buffers and strings. */
export function wireBytes(w: WireTypedBatch): number {
  let n = 64
  for (const c of w.columns) {
    n += 64 + c.bytes.byteLength + c.valid.byteLength
    if (c.constant !== undefined) n += stringBytes(c.constant)
    for (const s of c.strings) n += SLOT + (typeof s === 'string' ? stringBytes(s) : 0)
  }
  return n
}

/** Octets a plain column batch holds while queued, about: an array slot a cell, and what its value takes. */
export function columnBatchBytes(b: ColumnBatch): number {
  let n = 64
  for (const name in b.columns) {
    const vs = b.columns[name]!
    n += 64 + vs.length * SLOT
    for (const v of vs) {
      if (v === null || typeof v === 'boolean') continue
      if (typeof v === 'string') n += stringBytes(v)
      else if (typeof v === 'bigint') n += 24
      else if (!Number.isInteger(v) || v > 0x3fffffff || v < -0x40000000) n += 16 // a heap number
    }
  }
  return n
}

/** The string rows [0, n) all hold (null rows included), or undefined. */
function constantText(strings: ReadonlyArray<string | null>, n: number): string | undefined {
  const s = strings[0]
  if (n === 0 || strings.length < n || typeof s !== 'string') return undefined
  for (let i = 1; i < n; i++) if (strings[i] !== s) return undefined
  return s
}

/** The typed batch again (columns this release does not know are left out: they were never filled). */
export function fromWire(w: WireTypedBatch): TypedBatch {
  const b = new TypedBatch(w.length)
  for (const c of w.columns) {
    const column = COLUMN_BY_NAME.get(c.name)
    if (column === undefined) continue
    const t = b.column(column)
    t.bytes = c.bytes
    t.valid = c.valid
    if (c.constant !== undefined) {
      const strings: string[] = []
      for (let i = 0; i < w.length; i++) strings.push(c.constant)
      t.strings = strings
    } else t.strings = c.strings
  }
  b.length = w.length
  return b
}
