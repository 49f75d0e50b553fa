/**
 * Column-first ingest: a decoded data record → the cells of one row of a ColumnBatch, with no row object in
 * between. For each record layout (a template: element names and types, in order) a plan is compiled once:
 * which field fills which column, which fields go to the map column `extra` (no column, repeats, a second
 * element for a column already filled). Each record then runs its plan: one conversion per planned column,
 * valueToJson only for what goes to `extra`, the address keys parsed without BigInt arithmetic for IPv4.
 *
 * The row is exactly what normalize() makes of the record (record-plan.test.ts compares them over the probe's
 * records and the store suite's rows). A record whose values do not fit its planned columns (a value out of a
 * column's range, an undecodable value) is handed to normalize() itself, so the rules live in one place.
 */
import type { CollectedRecord } from '../collector/decode-message.js'
import { valueToJson } from '../ipfix/decoder.js'
import { COLUMN_BY_IE, type Column } from '../schema/columns.js'
import { ipKey } from '../schema/ip-key.js'
import {
  DERIVED,
  VERSION_NAMES,
  canonicalIe,
  convert,
  extraValue,
  normalize,
  total,
  type FlowRow,
  type RowValue,
} from './normalize.js'
import type { ColumnBatch } from './column-batch.js'

interface Plan {
  readonly names: readonly string[]
  readonly types: readonly string[]
  /** Per field: the column it fills (undefined: it goes to extra, or only its repeat list does). */
  readonly cols: ReadonlyArray<Column | undefined>
  /** Per field: the element occurs more than once in the record (all occurrences go to extra as a list). */
  readonly repeated: readonly boolean[]
  /** Some field goes to extra whatever the values. */
  readonly extra: boolean
  /** Per field: its column has other elements too, so whether the value is canonical is checked per record. */
  readonly checkCanonical: readonly boolean[]
}

function compile(r: CollectedRecord): Plan {
  const counts = new Map<string, number>()
  for (const f of r.fields) counts.set(f.name, (counts.get(f.name) ?? 0) + 1)
  const taken = new Set<Column>()
  const cols: Array<Column | undefined> = []
  const repeated: boolean[] = []
  const checkCanonical: boolean[] = []
  let extra = false
  for (const f of r.fields) {
    const rep = (counts.get(f.name) ?? 0) > 1
    const c = COLUMN_BY_IE.get(f.name)
    const fills = c !== undefined && !taken.has(c)
    if (fills) taken.add(c)
    cols.push(fills ? c : undefined)
    repeated.push(rep)
    checkCanonical.push(fills && (c.ies.length > 1 || c.ies[0] !== f.name))
    if (rep || !fills) extra = true
  }
  return {
    names: r.fields.map((f) => f.name),
    types: r.fields.map((f) => f.type),
    cols,
    repeated,
    extra,
    checkCanonical,
  }
}

function fits(p: Plan, r: CollectedRecord): boolean {
  const fs = r.fields
  if (fs.length !== p.names.length) return false
  for (let i = 0; i < fs.length; i++) {
    const f = fs[i]
    if (f === undefined || f.name !== p.names[i] || f.type !== p.types[i]) return false
  }
  return true
}

const V4_MAPPED = 0xffff_0000_0000

/** ipKey() for the decoder's text: a dotted quad without BigInt arithmetic; anything else through ipKey. */
export function addressKey(text: string): bigint | null {
  let n = 0
  let part = 0
  let digits = 0
  let dots = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 46) {
      if (digits === 0 || part > 255) return ipKey(text) ?? null
      n = n * 256 + part
      part = 0
      digits = 0
      dots++
    } else if (c >= 48 && c <= 57 && !(digits === 1 && part === 0)) {
      part = part * 10 + c - 48
      if (++digits > 3) return ipKey(text) ?? null
    } else return ipKey(text) ?? null
  }
  if (dots !== 3 || digits === 0 || part > 255) return ipKey(text) ?? null
  return BigInt(V4_MAPPED + n * 256 + part)
}

/** Sets row `i` of a column (the arrays are filled lazily: cells never set read as null). */
function put(batch: ColumnBatch, name: string, i: number, v: RowValue): void {
  const a = (batch.columns[name] ??= [])
  while (a.length < i) a.push(null)
  a.push(v)
}

/** Appends every column of a row (the path for rows made by normalize). */
export function putRow(batch: ColumnBatch, row: FlowRow, names: readonly string[]): void {
  const i = batch.length
  for (const n of names) put(batch, n, i, row[n] ?? null)
  batch.length++
}

/** Plans by record layout; bounded (a full cache is emptied, not grown). */
export class RecordPlanner {
  private readonly plans = new Map<string, Plan>()
  /** The last record's source and plan: consecutive records of one template skip the map. */
  private last: { r: CollectedRecord; plan: Plan } | undefined
  /** Converted values of the record being appended (reused). */
  private values: RowValue[] = []
  readonly stats = { compiled: 0, planned: 0, fallback: 0 }

  constructor(private readonly maxPlans = 4096) {}

  private plan(r: CollectedRecord): Plan {
    const l = this.last
    if (
      l !== undefined &&
      l.r.templateId === r.templateId &&
      l.r.odid === r.odid &&
      l.r.exporter === r.exporter &&
      l.r.version === r.version &&
      fits(l.plan, r)
    ) {
      l.r = r
      return l.plan
    }
    const plan = this.lookup(r)
    this.last = { r, plan }
    return plan
  }

  private lookup(r: CollectedRecord): Plan {
    const key = `${r.version}|${r.exporter}|${r.odid}|${r.templateId}`
    const p = this.plans.get(key)
    if (p !== undefined && fits(p, r)) return p
    if (this.plans.size >= this.maxPlans) this.plans.clear()
    const fresh = compile(r)
    this.plans.set(key, fresh)
    this.stats.compiled++
    return fresh
  }

  /** Appends record `r` as one row of `batch` (`names`: the batch's columns, for the normalize() path). */
  append(batch: ColumnBatch, r: CollectedRecord, receivedUs: bigint, names: readonly string[]): void {
    const p = this.plan(r)
    const fs = r.fields
    // Convert first: a value that does not fit sends the record to normalize() before any cell is written.
    const values = this.values
    for (let k = 0; k < fs.length; k++) {
      const c = p.cols[k]
      if (c === undefined) continue
      const v = convert(c, fs[k]!)
      if (v === undefined) {
        this.stats.fallback++
        putRow(batch, normalize(r, receivedUs), names)
        return
      }
      values[k] = v
    }
    this.stats.planned++
    const i = batch.length
    let src: RowValue = null
    let dst: RowValue = null
    let bytes: RowValue = null
    let revBytes: RowValue = null
    let packets: RowValue = null
    let revPackets: RowValue = null
    for (let k = 0; k < fs.length; k++) {
      const c = p.cols[k]
      if (c === undefined) continue
      const v = values[k] ?? null
      put(batch, c.name, i, v)
      switch (c.name) {
        case 'src_addr':
          src = v
          break
        case 'dst_addr':
          dst = v
          break
        case 'bytes':
          bytes = v
          break
        case 'rev_bytes':
          revBytes = v
          break
        case 'packets':
          packets = v
          break
        case 'rev_packets':
          revPackets = v
          break
      }
    }
    let extra: Record<string, unknown> | undefined
    if (p.extra) {
      extra = {}
      for (let k = 0; k < fs.length; k++) {
        const f = fs[k]!
        if (p.repeated[k]) {
          const prev = extra[f.name]
          const v = extraValue(r, k)
          if (Array.isArray(prev)) prev.push(v)
          else extra[f.name] = [v]
        } else if (p.cols[k] === undefined) extra[f.name] = extraValue(r, k)
      }
    }
    let derived: string[] | undefined
    for (let k = 0; k < fs.length; k++) {
      if (!p.checkCanonical[k]) continue
      const c = p.cols[k]!
      const f = fs[k]!
      if (f.name === canonicalIe(c, values[k] ?? null, { src_addr: src })) continue
      ;(derived ??= []).push(c.name)
      extra ??= {}
      if (!Object.hasOwn(extra, f.name)) extra[f.name] = valueToJson(f.type, f.value)
    }
    if (derived !== undefined && extra !== undefined) extra[DERIVED] = derived
    put(batch, 'time_received', i, receivedUs)
    put(batch, 'exporter', i, r.exporter)
    put(batch, 'observation_domain', i, r.odid)
    put(batch, 'template_id', i, r.templateId)
    put(batch, 'flow_version', i, VERSION_NAMES[String(r.version)] ?? String(r.version))
    if (typeof src === 'string') put(batch, 'src_ip_key', i, addressKey(src))
    if (typeof dst === 'string') put(batch, 'dst_ip_key', i, addressKey(dst))
    put(batch, 'total_bytes', i, total(bytes, revBytes))
    put(batch, 'total_packets', i, total(packets, revPackets))
    if (extra !== undefined && Object.keys(extra).length > 0) put(batch, 'extra', i, JSON.stringify(extra))
    batch.length++
  }
}
