/**
 * IPFIX message decoder for one transport session (RFC 7011 §3, §8, §9): header, Template and Options
 * Template Sets (keyed by Observation Domain ID + Template ID; redefinition replaces; withdrawals, which are
 * ignored over UDP per §8.4), and Data Sets decoded by their template, incl. reduced-size encoding (§6.2),
 * variable-length fields (§7), padding (§3.3.1) and unknown elements (kept as raw octets, §9).
 *
 * Errors never escape decode(): they become named counters (snake_case, see DecoderCounters) and the
 * message's `error`. A structurally malformed message (§9.1) yields no data records; template changes from
 * Sets before the fault stay applied. Data Sets without a known template are counted (`no_template`).
 */
import { VARLEN, isLegalLength, lookupElement, type ElementDef, type IeDataType } from './elements.js'
import { ipv4Text, ipv6Text } from '../util/address-text.js'

/** A decoded field value; see recordToJson for the JSON form. */
export type FieldValue =
  | number // ≤ 32-bit integers, floats, dateTimeSeconds (seconds)
  | bigint // 64-bit integers; dateTimeMilliseconds (ms); dateTimeMicro/Nanoseconds (ns since 1970)
  | boolean
  | string // addresses (text), strings
  | Uint8Array // octetArray, unknown elements, lists (raw content)
  | null // a value that could not be decoded (ill-formed UTF-8, boolean not 1/2: see counters)

export interface DecodedField {
  readonly pen: number
  readonly id: number
  /** Element name, or '<pen>.<id>' when unknown. */
  readonly name: string
  /** The element's type; unknown elements decode as octetArray (RFC 5153 §5.1). */
  readonly type: IeDataType
  readonly value: FieldValue
}

export interface DecodedRecord {
  readonly odid: number
  readonly templateId: number
  /** Options data record (its template has scope fields); the first scopeCount fields are the scope. */
  readonly isOptions: boolean
  readonly scopeCount: number
  readonly fields: readonly DecodedField[]
}

export interface DecodedMessage {
  readonly version: number
  readonly length: number
  readonly exportTime: number
  readonly sequence: number
  readonly odid: number
  readonly records: DecodedRecord[]
  /** Template and options template records accepted from this message (incl. identical refreshes). */
  templates: number
  /** Counter name of the fault that made the message malformed (its records are dropped), if any. */
  error?: string
}

export interface DecoderOptions {
  /** 'udp' ignores template withdrawals (RFC 7011 §8.4). Default 'tcp' (withdrawals applied). */
  transport?: 'udp' | 'tcp' | 'file'
  /** Cap on stored templates of this session (RFC 7011 §11.4). Default 4096. */
  maxTemplates?: number
}

export type DecoderCounters = Record<string, number>

interface FieldDef {
  readonly pen: number
  readonly id: number
  readonly length: number
  readonly name: string
  readonly type: IeDataType
}

interface DecTemplate {
  readonly id: number
  readonly scopeCount: number
  readonly fields: readonly FieldDef[]
  /** Smallest record: variable-length fields count 1. */
  readonly minLength: number
}

class Malformed extends Error {
  constructor(readonly counter: string) {
    super(counter)
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })
const NTP_UNIX_OFFSET = 2208988800n

export class IpfixDecoder {
  readonly counters: DecoderCounters = {}
  private readonly templates = new Map<number, DecTemplate>()
  private readonly udp: boolean
  private readonly maxTemplates: number

  constructor(opts: DecoderOptions = {}) {
    this.udp = opts.transport === 'udp'
    this.maxTemplates = opts.maxTemplates ?? 4096
  }

  /** Number of stored templates (all Observation Domains). */
  get templateCount(): number {
    return this.templates.size
  }

  private count(name: string, n = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + n
  }

  /** Decodes one message; never throws. */
  decode(message: Uint8Array): DecodedMessage {
    const view = new DataView(message.buffer, message.byteOffset, message.byteLength)
    const out: DecodedMessage = {
      version: 0,
      length: 0,
      exportTime: 0,
      sequence: 0,
      odid: 0,
      records: [],
      templates: 0,
    }
    try {
      this.decodeInto(message, view, out)
    } catch (e) {
      const name = e instanceof Malformed ? e.counter : 'exception'
      this.count(name)
      this.count('malformed_messages')
      out.records.length = 0
      out.error = name
    }
    return out
  }

  private decodeInto(
    bytes: Uint8Array,
    view: DataView,
    out: { -readonly [K in keyof DecodedMessage]: DecodedMessage[K] },
  ): void {
    if (bytes.byteLength < 16) throw new Malformed('short_header')
    out.version = view.getUint16(0)
    out.length = view.getUint16(2)
    out.exportTime = view.getUint32(4)
    out.sequence = view.getUint32(8)
    out.odid = view.getUint32(12)
    if (out.version !== 10) throw new Malformed('bad_version')
    if (out.length < 16) throw new Malformed('bad_message_length')
    if (out.length > bytes.byteLength) throw new Malformed('truncated_message')
    if (out.length < bytes.byteLength) this.count('trailing_bytes')
    const end = out.length

    // Pass 1: the Set lengths must tile the message (RFC 7011 §3.3.2, §9.1) before anything is applied.
    for (let p = 16; p < end;) {
      if (end - p < 4) throw new Malformed('truncated_set_header')
      const len = view.getUint16(p + 2)
      if (len < 4) throw new Malformed('bad_set_length')
      if (len > end - p) throw new Malformed('set_overruns_message')
      p += len
    }
    // Pass 2: process the Sets in order (withdrawals and definitions take effect in message order, §8.1).
    for (let p = 16; p < end;) {
      const setId = view.getUint16(p)
      const len = view.getUint16(p + 2)
      const body = p + 4
      const bodyEnd = p + len
      p = bodyEnd
      if (len === 4) {
        this.count('empty_set')
        continue
      }
      if (setId === 2 || setId === 3) this.templateSet(view, body, bodyEnd, setId, out)
      else if (setId >= 256) this.dataSet(bytes, view, body, bodyEnd, setId, out)
      else this.count('reserved_set_id')
    }
  }

  private templateSet(view: DataView, p: number, end: number, setId: number, out: DecodedMessage): void {
    const odid = out.odid
    const options = setId === 3
    const hdr = options ? 6 : 4
    while (end - p >= 4) {
      const tid = view.getUint16(p)
      const count = view.getUint16(p + 2)
      if (tid === 0 && count === 0 && this.allZero(view, p, end)) break // padding (§3.3.1)
      if (count === 0) {
        this.withdraw(odid, tid, setId)
        p += 4
        continue
      }
      if (end - p < hdr) throw new Malformed('template_truncated')
      const scope = options ? view.getUint16(p + 4) : 0
      p += hdr
      // Each specifier needs ≥ 4 octets: check before building anything from wire counts (CVE-2019-14459).
      if (count * 4 > end - p) throw new Malformed('template_truncated')
      const fields: FieldDef[] = []
      let bad: string | undefined
      let min = 0
      for (let i = 0; i < count; i++) {
        if (end - p < 4) throw new Malformed('template_truncated')
        let id = view.getUint16(p)
        const length = view.getUint16(p + 2)
        p += 4
        let pen = 0
        if (id & 0x8000) {
          if (end - p < 4) throw new Malformed('template_truncated')
          id &= 0x7fff
          pen = view.getUint32(p)
          p += 4
        }
        const def: ElementDef | undefined = lookupElement(pen, id)
        const type: IeDataType = def?.type ?? 'octetArray'
        if (def !== undefined && !isLegalLength(type, length, true)) bad ??= 'template_bad_field_length'
        min += length === VARLEN ? 1 : length
        fields.push({ pen, id, length, type, name: def?.name ?? `${pen}.${id}` })
      }
      if (tid < 256) bad ??= 'template_bad_id'
      if (options && (scope === 0 || scope > count)) bad ??= 'template_bad_scope_count'
      if (bad !== undefined) {
        this.count(bad)
        continue
      }
      const key = odid * 65536 + tid
      const old = this.templates.get(key)
      if (old === undefined && this.templates.size >= this.maxTemplates) {
        this.count('template_limit')
        continue
      }
      const t: DecTemplate = { id: tid, scopeCount: scope, fields, minLength: min }
      if (old !== undefined && !sameTemplate(old, t)) this.count('template_redefined')
      this.templates.set(key, t)
      out.templates++
    }
    // Fewer than 4 octets left: padding.
  }

  private allZero(view: DataView, p: number, end: number): boolean {
    for (let i = p; i < end; i++) if (view.getUint8(i) !== 0) return false
    return true
  }

  private withdraw(odid: number, tid: number, setId: number): void {
    if (this.udp) {
      this.count('udp_withdrawal_ignored')
      return
    }
    if (tid === 2 || tid === 3) {
      if (tid !== setId) {
        this.count('withdrawal_mismatched')
        return
      }
      // All (Options) Templates Withdrawal for this Observation Domain (§8.1).
      for (const [k, t] of this.templates)
        if (Math.floor(k / 65536) === odid && t.scopeCount > 0 === (setId === 3)) this.templates.delete(k)
      this.count('withdrawal_all')
      return
    }
    const key = odid * 65536 + tid
    const t = this.templates.get(key)
    if (t === undefined || t.scopeCount > 0 !== (setId === 3)) {
      this.count('withdrawal_unknown')
      return
    }
    this.templates.delete(key)
    this.count('withdrawal')
  }

  private dataSet(
    bytes: Uint8Array,
    view: DataView,
    p: number,
    end: number,
    setId: number,
    out: DecodedMessage,
  ): void {
    const t = this.templates.get(out.odid * 65536 + setId)
    if (t === undefined) {
      this.count('no_template')
      return
    }
    if (t.minLength === 0) {
      // Every field is zero-length: no record can be delimited, so the body is padding (§5.3 case 19).
      this.count('zero_length_records')
      return
    }
    while (end - p >= t.minLength) {
      const fields: DecodedField[] = []
      for (const f of t.fields) {
        let len = f.length
        if (len === VARLEN) {
          if (p >= end) throw new Malformed('partial_record')
          len = view.getUint8(p++)
          if (len === 255) {
            if (end - p < 2) throw new Malformed('varlen_overrun')
            len = view.getUint16(p)
            p += 2
          }
          if (len > end - p) throw new Malformed('varlen_overrun')
        } else if (len > end - p) throw new Malformed('partial_record')
        fields.push({
          pen: f.pen,
          id: f.id,
          name: f.name,
          type: f.type,
          value: this.value(bytes, view, p, len, f.type),
        })
        p += len
      }
      out.records.push({
        odid: out.odid,
        templateId: t.id,
        isOptions: t.scopeCount > 0,
        scopeCount: t.scopeCount,
        fields,
      })
    }
  }

  private value(bytes: Uint8Array, view: DataView, p: number, len: number, type: IeDataType): FieldValue {
    return decodeValue(bytes, view, p, len, type, (name) => this.count(name))
  }
}

/**
 * Decodes one field value of `type` from bytes[p, p + len) (the caller has checked the range). Never throws;
 * ill-formed booleans and UTF-8 give null and call `count` with the counter name. Shared with the collector.
 */
export function decodeValue(
  bytes: Uint8Array,
  view: DataView,
  p: number,
  len: number,
  type: IeDataType,
  count: (name: string) => void,
): FieldValue {
  switch (type) {
    case 'unsigned8':
    case 'unsigned16':
    case 'unsigned32':
    case 'dateTimeSeconds':
      return readUnsigned(view, p, len)
    case 'signed8':
    case 'signed16':
    case 'signed32':
      return len === 0 ? 0 : readSigned(view, p, len)
    case 'unsigned64':
      return readUnsignedBig(view, p, len)
    case 'signed64':
      return len === 0 ? 0n : BigInt.asIntN(len * 8, readUnsignedBig(view, p, len))
    case 'float32':
      return len === 4 ? view.getFloat32(p) : 0
    case 'float64':
      return len === 8 ? view.getFloat64(p) : len === 4 ? view.getFloat32(p) : 0
    case 'boolean': {
      if (len === 0) return null
      const b = view.getUint8(p)
      if (b === 1 || b === 2) return b === 1
      count('invalid_boolean')
      return null
    }
    case 'macAddress':
      return len === 6 ? macText(view, p) : null
    case 'ipv4Address':
      return len === 4 ? ipv4Text(view.getUint32(p)) : null
    case 'ipv6Address':
      return len === 16 ? ipv6Text(view, p) : null
    case 'dateTimeMilliseconds':
      return readUnsignedBig(view, p, len)
    case 'dateTimeMicroseconds':
    case 'dateTimeNanoseconds': {
      if (len !== 8) return null
      const sec = BigInt(view.getUint32(p))
      let frac = view.getUint32(p + 4)
      // RFC 7011 §6.1.9: the low 11 bits of a microsecond fraction MUST be ignored.
      if (type === 'dateTimeMicroseconds') frac = (frac & ~0x7ff) >>> 0
      const ns = (BigInt(frac) * 1_000_000_000n) >> 32n
      return (sec - NTP_UNIX_OFFSET) * 1_000_000_000n + ns
    }
    case 'string':
      try {
        return utf8.decode(bytes.subarray(p, p + len))
      } catch {
        count('invalid_utf8')
        return null
      }
    case 'octetArray':
    case 'basicList':
    case 'subTemplateList':
    case 'subTemplateMultiList':
      return bytes.slice(p, p + len) // a copy: never pin the datagram
  }
}

function sameTemplate(a: DecTemplate, b: DecTemplate): boolean {
  if (a.scopeCount !== b.scopeCount || a.fields.length !== b.fields.length) return false
  return a.fields.every((f, i) => {
    const g = b.fields[i]
    return g !== undefined && f.id === g.id && f.pen === g.pen && f.length === g.length
  })
}

function readUnsigned(view: DataView, p: number, len: number): number {
  let v = 0
  for (let i = 0; i < len; i++) v = v * 256 + view.getUint8(p + i)
  return v
}

function readSigned(view: DataView, p: number, len: number): number {
  const u = readUnsigned(view, p, len)
  const half = 2 ** (len * 8 - 1)
  return u >= half ? u - 2 * half : u
}

function readUnsignedBig(view: DataView, p: number, len: number): bigint {
  if (len <= 6) return BigInt(readUnsigned(view, p, len))
  if (len === 8) return view.getBigUint64(p)
  let v = 0n
  for (let i = 0; i < len; i++) v = (v << 8n) | BigInt(view.getUint8(p + i))
  return v
}

const hex2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

function macText(view: DataView, p: number): string {
  let s = ''
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + (hex2[view.getUint8(p + i)] ?? '')
  return s
}

function hexOf(b: Uint8Array): string {
  let s = ''
  for (const x of b) s += hex2[x] ?? ''
  return s
}

function isoWithFraction(ns: bigint, digits: 3 | 6 | 9): string {
  const ms = ns / 1_000_000n - (ns < 0n && ns % 1_000_000n !== 0n ? 1n : 0n)
  if (ms > 8_640_000_000_000_000n || ms < -8_640_000_000_000_000n) return ns.toString()
  const base = new Date(Number(ms)).toISOString() // ...T00:00:00.123Z
  if (digits === 3) return base
  const sub = (((ns % 1_000_000n) + 1_000_000n) % 1_000_000n).toString().padStart(6, '0')
  return base.slice(0, -1) + sub.slice(0, digits - 3) + 'Z'
}

/** JSON-safe form of one value of the given type. */
export { ipv4Text, ipv6Text }

export function valueToJson(type: IeDataType, v: FieldValue): unknown {
  if (v === null) return null
  switch (type) {
    case 'dateTimeSeconds':
      return typeof v === 'number' ? new Date(v * 1000).toISOString() : v
    case 'dateTimeMilliseconds':
      return typeof v === 'bigint' ? isoWithFraction(v * 1_000_000n, 3) : v
    case 'dateTimeMicroseconds':
      return typeof v === 'bigint' ? isoWithFraction(v, 6) : v
    case 'dateTimeNanoseconds':
      return typeof v === 'bigint' ? isoWithFraction(v, 9) : v
    default:
      if (typeof v === 'bigint')
        return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER)
          ? Number(v)
          : v.toString()
      if (v instanceof Uint8Array) return hexOf(v)
      return v
  }
}

/** A record as a plain object keyed by element name; a repeated element becomes an array (template order). */
export function recordToJson(rec: DecodedRecord): Record<string, unknown> {
  const o: Record<string, unknown> = {}
  for (const f of rec.fields) {
    const v = valueToJson(f.type, f.value)
    if (!Object.hasOwn(o, f.name)) o[f.name] = v
    else {
      // valueToJson never returns arrays, so an array here is a repeat list (RFC 7011 §8: keep every occurrence).
      const prev = o[f.name]
      if (Array.isArray(prev)) prev.push(v)
      else o[f.name] = [prev, v]
    }
  }
  return o
}
