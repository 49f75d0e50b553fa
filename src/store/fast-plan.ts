/**
 * IPFIX data sets (RFC 7011 §3.4.3) decoded straight into typed storage columns (typed-batch.ts): one pass
 * over the set with DataView reads, no record or field objects, no BigInt. A plan is compiled once per
 * template and taken only when every row it makes is exactly the row record-plan.ts / normalize() would
 * make of the same record, that is when
 * - the template is an IPFIX (version 10) data template with fixed-length fields only;
 * - every field has a column of the column table (schema/columns.ts), is that column's canonical element
 *   (address columns: the IPv4 or IPv6 element), fills no column another field fills, and no element
 *   repeats: nothing would go to the `extra` map column;
 * - each value always fits its column: unsigned integers no wider than the column, dateTimeMilliseconds
 *   (8 octets) and dateTimeSeconds (4) into time columns, IPv4/IPv6 addresses into the address columns
 *   (their text, and the 128-bit key beside it);
 * - every metadata column of the column table has a source this file knows.
 * Any other template (options, lists, strings, MACs, booleans, reduced-size encodings wider than a column,
 * elements without a column, a column added with a new metadata source) gets no plan: its records take the
 * record path, so nothing stored today is lost and new columns flow through it.
 */
import type { CollectorTemplate } from '../collector/data-set.js'
import type { MessageContext } from '../collector/pending.js'
import { COLUMNS, COLUMN_BY_IE, type Column } from '../schema/columns.js'
import { ipv6Text } from '../util/address-text.js'
import { VERSION_NAMES } from './normalize.js'
import type { TypedBatch, TypedColumn } from './typed-batch.js'

const enum Op {
  /** Unsigned integer of `len` octets (big-endian) into a column `width` octets wide (little-endian). */
  Uint,
  /** dateTimeMilliseconds (8 octets) → microseconds. */
  Ms,
  /** dateTimeSeconds (4 octets) → microseconds. */
  Sec,
  Ipv4,
  Ipv6,
}

interface Step {
  readonly op: Op
  readonly off: number
  readonly len: number
  readonly column: Column
  /** Index of the step's column in `sums` (a sum column's operand), or -1. */
  readonly sumSlot: number
  /** For address steps: the key column it also fills (src_ip_key / dst_ip_key), if any. */
  readonly key: Column | undefined
}

interface MetaStep {
  readonly column: Column
  readonly source: 'received' | 'exporter' | 'domain' | 'template' | 'version' | 'sum'
  /** 'sum': the slots of its two operands. */
  readonly a: number
  readonly b: number
}

export interface FastPlan {
  readonly recordLength: number
  readonly steps: readonly Step[]
  readonly meta: readonly MetaStep[]
  /** Operand slots of the sum columns. */
  readonly slots: number
}

const UINT_TYPES = new Set(['unsigned8', 'unsigned16', 'unsigned32', 'unsigned64'])
const WIDTH = { u8: 1, u16: 2, u32: 4, u64: 8 } as const
/** The key column beside each address column (metadata srcKey / dstKey of the column table). */
const KEY_OF: Record<string, Column | undefined> = {
  src_addr: COLUMNS.find((c) => c.meta === 'srcKey'),
  dst_addr: COLUMNS.find((c) => c.meta === 'dstKey'),
}

/** The plan for template `t`, or undefined when its records must take the record path. */
export function compileFastPlan(t: CollectorTemplate): FastPlan | undefined {
  if (t.version !== 10 || t.options || t.scopeCount !== 0 || t.fields.length === 0) return undefined
  const taken = new Set<Column>()
  const names = new Set<string>()
  const raw: Array<{ op: Op; off: number; len: number; column: Column }> = []
  let off = 0
  for (const f of t.fields) {
    if (f.length === 0xffff || names.has(f.name)) return undefined
    names.add(f.name)
    const c = COLUMN_BY_IE.get(f.name)
    if (c === undefined || taken.has(c)) return undefined
    taken.add(c)
    let op: Op
    if (c.name === 'src_addr' || c.name === 'dst_addr') {
      if (f.type === 'ipv4Address' && f.length === 4 && f.name === c.ies[0]) op = Op.Ipv4
      else if (f.type === 'ipv6Address' && f.length === 16 && f.name === c.ies[1]) op = Op.Ipv6
      else return undefined
    } else {
      if (f.name !== c.ies[0] || c.name === 'icmp_type_code' || c.name === 'rev_icmp_type_code')
        return undefined
      if (c.kind === 'u8' || c.kind === 'u16' || c.kind === 'u32' || c.kind === 'u64') {
        if (!UINT_TYPES.has(f.type) || f.length < 1 || f.length > WIDTH[c.kind]) return undefined
        op = Op.Uint
      } else if (c.kind === 'time' && f.type === 'dateTimeMilliseconds' && f.length === 8) op = Op.Ms
      else if (c.kind === 'time' && f.type === 'dateTimeSeconds' && f.length === 4) op = Op.Sec
      else return undefined
    }
    raw.push({ op, off, len: f.length, column: c })
    off += f.length
  }
  // Metadata columns; the operands of sum columns get slots.
  const slotOf = new Map<string, number>()
  const meta: MetaStep[] = []
  for (const c of COLUMNS) {
    if (c.meta === undefined) continue
    switch (c.meta) {
      case 'domain':
      case 'template':
        if (c.kind !== 'u16' && c.kind !== 'u32') return undefined
        meta.push({ column: c, source: c.meta, a: -1, b: -1 })
        break
      case 'received':
        if (c.kind !== 'time') return undefined
        meta.push({ column: c, source: c.meta, a: -1, b: -1 })
        break
      case 'exporter':
      case 'version':
        if (c.kind !== 'text') return undefined
        meta.push({ column: c, source: c.meta, a: -1, b: -1 })
        break
      case 'srcKey':
      case 'dstKey':
        if (c.kind !== 'ipkey') return undefined
        break // filled by the address steps
      case 'totalBytes':
      case 'totalPackets': {
        if (c.sumOf === undefined || c.kind !== 'u64') return undefined
        const [x, y] = c.sumOf
        for (const n of [x, y]) if (!slotOf.has(n)) slotOf.set(n, slotOf.size)
        meta.push({ column: c, source: 'sum', a: slotOf.get(x)!, b: slotOf.get(y)! })
        break
      }
      default:
        return undefined // a metadata source added later: the record path knows it
    }
  }
  const steps: Step[] = []
  for (const s of raw) {
    const found = KEY_OF[s.column.name]
    const key = found?.kind === 'ipkey' ? found : undefined
    const slot = slotOf.get(s.column.name)
    // A sum of columns other than 64-bit counters is one the record path knows how to make.
    if (slot !== undefined && s.column.kind !== 'u64') return undefined
    steps.push({ ...s, sumSlot: slot ?? -1, key })
  }
  return { recordLength: off, steps, meta, slots: slotOf.size }
}

const TWO32 = 4294967296
const TWO31 = 2147483648
const SAFE = Number.MAX_SAFE_INTEGER
const I64_MAX = (1n << 63n) - 1n

/** Sets the validity bits of rows [from, from + n). */
function setValid(valid: Uint8Array, from: number, n: number): void {
  let i = from
  const end = from + n
  for (; i < end && (i & 7) !== 0; i++) valid[i >> 3]! |= 1 << (i & 7)
  for (; i + 8 <= end; i += 8) valid[i >> 3] = 0xff
  for (; i < end; i++) valid[i >> 3]! |= 1 << (i & 7)
}

/** The columns (and views on their bytes) a plan writes in one batch; rebound when the batch or plan changes. */
interface Bound {
  readonly plan: FastPlan
  readonly batch: TypedBatch
  readonly cols: TypedColumn[]
  readonly keys: Array<TypedColumn | undefined>
  readonly metaCols: TypedColumn[]
  /** A view per column of cols then metaCols, renewed when the batch grows (its bytes are replaced). */
  readonly views: DataView[]
}

/** A little-endian view on a column's bytes (the same view while the bytes are the same). */
function viewOf(b: Bound, i: number, c: TypedColumn): DataView {
  let v = b.views[i]!
  if (v.buffer !== c.bytes.buffer) {
    v = new DataView(c.bytes.buffer, c.bytes.byteOffset, c.bytes.byteLength)
    b.views[i] = v
  }
  return v
}

/**
 * Unsigned big-endian fields of `len` octets at src[at + r·stride] → little-endian cells `width` octets wide
 * (len ≤ width) of rows base + r.
 */
function uintColumn(
  src: DataView,
  at: number,
  stride: number,
  n: number,
  len: number,
  o: DataView,
  width: number,
  base: number,
): void {
  for (let r = 0; r < n; r++, at += stride) {
    const to = (base + r) * width
    if (len === 1) {
      o.setUint8(to, src.getUint8(at))
      if (width > 1) for (let k = 1; k < width; k++) o.setUint8(to + k, 0)
      continue
    }
    let h = 0
    let l: number
    if (len === 2) l = src.getUint16(at)
    else if (len === 4) l = src.getUint32(at)
    else if (len < 4) {
      l = 0
      for (let i = 0; i < len; i++) l = l * 256 + src.getUint8(at + i)
    } else if (len === 8) {
      h = src.getUint32(at)
      l = src.getUint32(at + 4)
    } else {
      for (let i = 0; i < len - 4; i++) h = h * 256 + src.getUint8(at + i)
      l = src.getUint32(at + len - 4)
    }
    if (width === 2) o.setUint16(to, l, true)
    else if (width === 4) o.setUint32(to, l, true)
    else {
      o.setUint32(to, l, true)
      o.setUint32(to + 4, h, true)
    }
  }
}

/**
 * dateTimeMilliseconds (8 octets) or dateTimeSeconds (4) → signed 64-bit µs cells of rows base + r. False
 * when a value is past 2^63 - 1 µs (a typed column cannot hold what the record path hands the store).
 */
function timeColumn(
  src: DataView,
  at: number,
  stride: number,
  n: number,
  seconds: boolean,
  o: DataView,
  base: number,
): boolean {
  for (let r = 0; r < n; r++, at += stride) {
    const to = (base + r) * 8
    let us: number
    if (seconds) us = src.getUint32(at) * 1_000_000
    else {
      const ms = src.getUint32(at) * TWO32 + src.getUint32(at + 4)
      us = ms * 1000
      if (!(ms <= SAFE) || us > SAFE) {
        // Beyond 2^53 µs (year 2255): exact in BigInt, as the record path computes it.
        const big = src.getBigUint64(at) * 1000n
        if (big > I64_MAX) return false
        o.setBigInt64(to, big, true)
        continue
      }
    }
    o.setUint32(to, us % TWO32, true)
    o.setUint32(to + 4, Math.floor(us / TWO32), true)
  }
  return true
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/** 32-bit words over a key column's bytes (the same view while the bytes are the same). */
const wordViews = new WeakMap<Uint8Array, Uint32Array>()
function keyWords(kb: Uint8Array): Uint32Array {
  let w = wordViews.get(kb)
  if (w === undefined) {
    w = new Uint32Array(kb.buffer, kb.byteOffset, kb.byteLength >> 2)
    wordViews.set(kb, w)
  }
  return w
}

/** Each octet's decimal text, with and without the dot after it. */
const OCTET = Array.from({ length: 256 }, (_, i) => String(i))
const OCTET_DOT = OCTET.map((t) => `${t}.`)

/** ipv4Text (util/address-text.ts) in three concatenations of ready octet texts (about 40 % less). */
function dotted(v: number): string {
  return OCTET_DOT[v >>> 24]! + OCTET_DOT[(v >>> 16) & 255]! + OCTET_DOT[(v >>> 8) & 255]! + OCTET[v & 255]!
}

/** Entries of the IPv4 text cache (a power of two). */
const V4_CACHE = 4096

/**
 * The text of recently seen IPv4 addresses, direct-mapped by a hash of the address (bounded: a new
 * address takes its slot): flows repeat their addresses (servers, gateways, busy clients), and a hit
 * costs a lookup instead of formatting and allocating a string (about 10 times less).
 */
export class Ipv4TextCache {
  private readonly keys = new Int32Array(V4_CACHE)
  private readonly texts: string[] = new Array<string>(V4_CACHE).fill('')

  text(v: number): string {
    const h = Math.imul(v, 0x9e3779b1) >>> 20
    const t = this.texts[h]!
    if (this.keys[h] === (v | 0) && t !== '') return t
    const s = dotted(v)
    this.keys[h] = v
    this.texts[h] = s
    return s
  }
}

/** IPv4 addresses → their text, and the ::ffff:a.b.c.d key (128-bit little-endian) when the column has one. */
function ipv4Column(
  src: DataView,
  at: number,
  stride: number,
  n: number,
  c: TypedColumn,
  key: TypedColumn | undefined,
  base: number,
  texts: Ipv4TextCache,
): void {
  const strings = c.strings
  const kb = key?.bytes
  // On a little-endian host the key is four 32-bit words: the address, 0x0000ffff, 0, 0.
  const k32 = kb !== undefined && LITTLE_ENDIAN && (kb.byteOffset & 3) === 0 ? keyWords(kb) : undefined
  for (let r = 0; r < n; r++, at += stride) {
    const v = src.getUint32(at)
    strings[base + r] = texts.text(v)
    if (k32 !== undefined) {
      const w = (base + r) * 4
      k32[w] = v
      k32[w + 1] = 0xffff
      k32[w + 2] = 0
      k32[w + 3] = 0
      continue
    }
    if (kb === undefined) continue
    const kt = (base + r) * 16
    kb[kt] = v & 255
    kb[kt + 1] = (v >>> 8) & 255
    kb[kt + 2] = (v >>> 16) & 255
    kb[kt + 3] = v >>> 24
    kb[kt + 4] = 0xff
    kb[kt + 5] = 0xff
    for (let i = 6; i < 16; i++) kb[kt + i] = 0
  }
}

/** IPv6 addresses → RFC 5952 text, and the 128-bit key (the address reversed into little-endian). */
function ipv6Column(
  src: DataView,
  bytes: Uint8Array,
  at: number,
  stride: number,
  n: number,
  c: TypedColumn,
  key: TypedColumn | undefined,
  base: number,
): void {
  const strings = c.strings
  const kb = key?.bytes
  for (let r = 0; r < n; r++, at += stride) {
    strings[base + r] = ipv6Text(src, at)
    if (kb === undefined) continue
    const kt = (base + r) * 16
    for (let i = 0; i < 16; i++) kb[kt + i] = bytes[at + 15 - i]!
  }
}

/**
 * A sum column (64-bit counters, capped at 2^63 - 1: normalize.ts TOTAL_MAX) of rows base + r from the
 * operand columns' cells (undefined operand: absent from the template, counts 0).
 */
function sumColumn(
  a: DataView | undefined,
  b: DataView | undefined,
  n: number,
  o: DataView,
  base: number,
): void {
  for (let r = 0; r < n; r++) {
    const at = (base + r) * 8
    let l = (a !== undefined ? a.getUint32(at, true) : 0) + (b !== undefined ? b.getUint32(at, true) : 0)
    let h =
      (a !== undefined ? a.getUint32(at + 4, true) : 0) + (b !== undefined ? b.getUint32(at + 4, true) : 0)
    if (l >= TWO32) {
      l -= TWO32
      h++
    }
    if (h >= TWO31) {
      h = TWO31 - 1
      l = TWO32 - 1
    }
    o.setUint32(at, l, true)
    o.setUint32(at + 4, h, true)
  }
}

/** Plans by template object (templates are replaced, never changed, when redefined or retyped). */
export class FastPlanner {
  private readonly plans = new WeakMap<CollectorTemplate, FastPlan | null>()
  private bound: Bound | undefined
  private readonly v4 = new Ipv4TextCache()
  readonly stats = { sets: 0, records: 0 }

  plan(t: CollectorTemplate): FastPlan | undefined {
    let p = this.plans.get(t)
    if (p === undefined) {
      p = compileFastPlan(t) ?? null
      this.plans.set(t, p)
    }
    return p ?? undefined
  }

  private bind(plan: FastPlan, batch: TypedBatch): Bound {
    const b = this.bound
    if (b !== undefined && b.plan === plan && b.batch === batch) return b
    const cols = plan.steps.map((s) => batch.column(s.column))
    const metaCols = plan.meta.map((m) => batch.column(m.column))
    const views = [...cols, ...metaCols].map(
      (c) => new DataView(c.bytes.buffer, c.bytes.byteOffset, c.bytes.byteLength),
    )
    const keys = plan.steps.map((s) => (s.key !== undefined ? batch.column(s.key) : undefined))
    return (this.bound = { plan, batch, cols, keys, metaCols, views })
  }

  /**
   * Decodes the records of data set bytes[p, end) by `plan` into `batch`; returns how many, or undefined
   * (nothing added) when a value is one only the record path can store. A remainder shorter than a record
   * is padding (RFC 7011 §3.3.1), as in data-set.ts. Column by column: each field's cells of every record
   * of the set in one loop, then the metadata columns.
   */
  decode(
    plan: FastPlan,
    ctx: MessageContext,
    templateId: number,
    bytes: Uint8Array,
    p: number,
    end: number,
    receivedUs: number,
    batch: TypedBatch,
  ): number | undefined {
    if (end > bytes.byteLength) end = bytes.byteLength
    const len = plan.recordLength
    const n = Math.floor((end - p) / len)
    if (n <= 0) return 0
    batch.reserve(n)
    const base = batch.length
    const src = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const b = this.bind(plan, batch)
    const steps = plan.steps
    /** The view on each step's column (the operands of sum columns are read back from them). */
    const stepViews: DataView[] = []
    for (let k = 0; k < steps.length; k++) {
      const s = steps[k]!
      const c = b.cols[k]!
      const o = viewOf(b, k, c)
      stepViews.push(o)
      const at = p + s.off
      switch (s.op) {
        case Op.Uint:
          uintColumn(src, at, len, n, s.len, o, c.width, base)
          break
        case Op.Ms:
        case Op.Sec:
          if (!timeColumn(src, at, len, n, s.op === Op.Sec, o, base)) {
            batch.truncate(base, base + n)
            return undefined
          }
          break
        case Op.Ipv4:
          ipv4Column(src, at, len, n, c, b.keys[k], base, this.v4)
          break
        case Op.Ipv6:
          ipv6Column(src, bytes, at, len, n, c, b.keys[k], base)
          break
      }
      setValid(c.valid, base, n)
      const key = b.keys[k]
      if (key !== undefined) setValid(key.valid, base, n)
    }
    const meta = plan.meta
    for (let k = 0; k < meta.length; k++) {
      const m = meta[k]!
      const c = b.metaCols[k]!
      const o = viewOf(b, steps.length + k, c)
      switch (m.source) {
        case 'received': {
          const h = Math.floor(receivedUs / TWO32)
          const l = receivedUs % TWO32
          for (let r = 0; r < n; r++) {
            o.setUint32((base + r) * 8, l, true)
            o.setUint32((base + r) * 8 + 4, h, true)
          }
          break
        }
        case 'sum': {
          // Operand slot → the step filling it, if the template has one.
          let a: DataView | undefined
          let bb: DataView | undefined
          for (let j = 0; j < steps.length; j++) {
            if (steps[j]!.sumSlot === m.a) a = stepViews[j]
            if (steps[j]!.sumSlot === m.b) bb = stepViews[j]
          }
          sumColumn(a, bb, n, o, base)
          break
        }
        case 'exporter':
        case 'version': {
          const v = m.source === 'exporter' ? ctx.exporter : (VERSION_NAMES['10'] ?? 'ipfix')
          for (let r = 0; r < n; r++) c.strings[base + r] = v
          break
        }
        case 'domain':
        case 'template': {
          const v = m.source === 'domain' ? ctx.domain : templateId
          // u16 or u32 (compileFastPlan): the domain is 32-bit on the wire, a template id 16-bit; a domain
          // past a 16-bit column is NULL.
          if (c.width === 4) for (let r = 0; r < n; r++) o.setUint32((base + r) * 4, v, true)
          else if (v <= 0xffff) for (let r = 0; r < n; r++) o.setUint16((base + r) * 2, v, true)
          else continue
          break
        }
      }
      setValid(c.valid, base, n)
    }
    batch.length += n
    this.stats.sets++
    this.stats.records += n
    return n
  }
}
