/**
 * The messages between WorkerStore (worker-store.ts) and the store thread (store-worker.ts), and a typed
 * batch (typed-batch.ts) as it crosses: its column octets and validity bitmaps are transferred (moved, not
 * copied), its text columns cloned, except that a text column holding one string in every row (exporter,
 * flow_version) crosses as that string once (a clone costs about 90 ns a string, sent and received);
 * columns travel by name and are looked up in the column table again.
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

/** id 0: the store opened (or not); id -1: an insert failed (kept and retried); else the reply to request id. */
export type Reply =
  | { readonly id: number; readonly ok: true; readonly value?: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string }

/** The batch as a message, and the buffers to transfer with it (the batch must not be used afterwards). */
export function toWire(b: TypedBatch): { wire: WireTypedBatch; transfer: ArrayBuffer[] } {
  const columns: WireColumn[] = []
  const transfer: ArrayBuffer[] = []
  for (const [name, t] of b.columns) {
    const constant = t.width === 0 ? constantText(t.strings, b.length) : undefined
    columns.push(
      constant !== undefined
        ? { name, bytes: t.bytes, valid: t.valid, strings: [], constant }
        : { name, bytes: t.bytes, valid: t.valid, strings: t.strings },
    )
    for (const a of [t.bytes, t.valid])
      if (a.byteLength > 0 && !transfer.includes(a.buffer as ArrayBuffer))
        transfer.push(a.buffer as ArrayBuffer)
  }
  return { wire: { length: b.length, columns }, transfer }
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
