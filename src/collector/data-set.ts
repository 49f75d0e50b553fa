/**
 * Templates as the collector holds them, and Data Set decoding by template, shared by IPFIX (RFC 7011 §3.4,
 * §6, §7) and NetFlow v9 (RFC 3954 §5.2, §5.3, §8). Field types resolve through the element table: IPFIX by
 * (PEN, id); NetFlow v9 types below 32768 as IANA ids (then the libfds NetFlow PEN 2^32-2), types from 32768
 * as (2^32-1, type - 32768), never as an enterprise bit (standards §4). Unknown elements decode as octetArray
 * under `<pen>.<id>` (RFC 5153 §5.1). A field whose length its type does not allow is decoded leniently
 * (wider integers as integers, anything else as octets) and counted, rather than losing the template.
 * Trailing NUL padding of strings is removed. Each set is read through a bounded range [p, end); nothing here
 * throws for bad input.
 */
import { decodeValue, type DecodedField } from '../ipfix/decoder.js'
import { VARLEN, isLegalLength, lookupElement, type ElementDef, type IeDataType } from '../ipfix/elements.js'
import { NETFLOW_EXTRA_PEN, NETFLOW_PEN } from '../ipfix/enterprise/vendors.js'

export interface FieldDef {
  readonly pen: number
  readonly id: number
  /** Field length; 65535 = variable length (RFC 7011 §7; de facto in NetFlow v9). */
  readonly length: number
  readonly name: string
  /** The type the value is decoded as (octetArray for unknown elements and impossible lengths). */
  readonly type: IeDataType
}

export interface CollectorTemplate {
  readonly id: number
  /** 9 (NetFlow v9) or 10 (IPFIX): separate namespaces within one session and domain. */
  readonly version: 9 | 10
  /** Number of leading scope fields. */
  readonly scopeCount: number
  /** An options template (IPFIX: scope count > 0; NetFlow v9: an Options Template FlowSet, even scope-less). */
  readonly options: boolean
  readonly fields: readonly FieldDef[]
  /** Smallest record (variable-length fields count 1). */
  readonly minLength: number
}

export type Counter = (name: string, n?: number) => void

/** The type a field of `length` octets is decoded as, given its element's type. */
export function lenientType(type: IeDataType, length: number, count: Counter): IeDataType {
  if (length === VARLEN) {
    if (type === 'string' || type === 'octetArray' || type.endsWith('List')) return type
    count('varlen_fixed_type')
    return 'octetArray'
  }
  if (isLegalLength(type, length, true)) return type
  count('field_length_nonstandard')
  if (length <= 8) {
    if (type.startsWith('unsigned') || type === 'dateTimeSeconds')
      return length > 4 ? 'unsigned64' : 'unsigned32'
    if (type.startsWith('signed')) return length > 4 ? 'signed64' : 'signed32'
    if (type === 'float32' && length === 8) return 'float64'
  }
  return 'octetArray'
}

/** Definitions an exporter announced in its session (RFC 5610, type-records.ts), tried after the table. */
export type LearnedLookup = (pen: number, id: number) => ElementDef | undefined

/** An IPFIX Field Specifier resolved against the element table (then the session's learned types). */
export function resolveIpfixField(
  pen: number,
  id: number,
  length: number,
  count: Counter,
  learned?: LearnedLookup,
): FieldDef {
  const def = lookupElement(pen, id) ?? learned?.(pen, id)
  if (def === undefined) return { pen, id, length, name: `${pen}.${id}`, type: 'octetArray' }
  return { pen, id, length, name: def.name, type: lenientType(def.type, length, count) }
}

/** A NetFlow v9 field type resolved as IANA id, libfds NetFlow PEN, or the 2^32-1 vendor range (ASA NSEL). */
export function resolveV9Field(type: number, length: number, count: Counter): FieldDef {
  let pen = 0
  let id = type
  if (type >= 32768) {
    pen = NETFLOW_EXTRA_PEN
    id = type - 32768
  } else if (lookupElement(0, type) === undefined && lookupElement(NETFLOW_PEN, type) !== undefined) {
    pen = NETFLOW_PEN
  }
  if (length === VARLEN) count('v9_varlen_field')
  return resolveIpfixField(pen, id, length, count)
}

/** Pseudo enterprise number for the NetFlow v9 options scope types (RFC 3954 §6.1), which are no IANA ids. */
export const V9_SCOPE_PEN = 4294967293
const V9_SCOPE_NAMES = ['', 'scopeSystem', 'scopeInterface', 'scopeLineCard', 'scopeCache', 'scopeTemplate']

/**
 * A NetFlow v9 scope field (1 System, 2 Interface, 3 Line Card, 4 Cache, 5 Template). System is opaque (an
 * address or an id, by vendor) and kept as octets; the others are unsigned numbers when they fit.
 */
export function resolveV9Scope(type: number, length: number): FieldDef {
  const name = V9_SCOPE_NAMES[type] ?? `scope${type}`
  const t: IeDataType = length === 0 || length > 8 ? 'octetArray' : length > 4 ? 'unsigned64' : 'unsigned32'
  return { pen: V9_SCOPE_PEN, id: type, length, name, type: t }
}

export function minRecordLength(fields: readonly FieldDef[]): number {
  let min = 0
  for (const f of fields) min += f.length === VARLEN ? 1 : f.length
  return min
}

/**
 * Field values decoded per octet of a Data Set at most. A field of length 0 costs nothing on the wire, so a
 * template of one 1-octet field and thousands of zero-length ones would make every octet a record of
 * thousands of values (a 40 KB exchange ran the collector out of memory). Real templates stay far below:
 * every other field takes at least one octet, and devices send a few zero-length fields (standards §5.3 #19).
 */
export const MAX_FIELD_VALUES_PER_OCTET = 8

/**
 * Decodes the records of one Data Set body bytes[p, end) by template `t`. Records complete before a fault
 * are returned; the fault (a record cut short by the set end, a variable length overrunning it, more field
 * values than MAX_FIELD_VALUES_PER_OCTET allows for the set) is counted and ends the set. A remainder
 * shorter than the smallest record is padding (RFC 7011 §3.3.1).
 */
export function decodeRecords(
  t: CollectorTemplate,
  bytes: Uint8Array,
  p: number,
  end: number,
  count: Counter,
): DecodedField[][] {
  const out: DecodedField[][] = []
  if (end > bytes.byteLength) end = bytes.byteLength
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (t.minLength === 0) {
    // Every field is zero-length: records cannot be delimited; the body is padding (standards §5.3 #19).
    if (end > p) count('zero_length_records')
    return out
  }
  const countValue = (name: string): void => count(name)
  let budget = MAX_FIELD_VALUES_PER_OCTET * (end - p)
  records: while (end - p >= t.minLength) {
    if (t.fields.length > budget) {
      count('field_value_limit')
      break
    }
    budget -= t.fields.length
    const fields: DecodedField[] = []
    let q = p
    for (const f of t.fields) {
      let len = f.length
      if (len === VARLEN) {
        if (q >= end) {
          count('partial_record')
          break records
        }
        len = view.getUint8(q++)
        if (len === 255) {
          if (end - q < 2) {
            count('varlen_overrun')
            break records
          }
          len = view.getUint16(q)
          q += 2
        }
        if (len > end - q) {
          count('varlen_overrun')
          break records
        }
      } else if (len > end - q) {
        count('partial_record')
        break records
      }
      let value = decodeValue(bytes, view, q, len, f.type, countValue)
      // Fixed-length strings arrive NUL-padded (Cisco, NetScaler, ASA): the padding is not part of the value.
      if (typeof value === 'string' && value.endsWith('\0')) value = value.replace(/\0+$/, '')
      fields.push({ pen: f.pen, id: f.id, name: f.name, type: f.type, value })
      q += len
    }
    out.push(fields)
    p = q
  }
  return out
}

/** Serialisable form of a template's fields: [pen, id, length]. */
export type FieldSpecTuple = readonly [number, number, number]

export function templateFromSpecs(
  version: 9 | 10,
  id: number,
  scopeCount: number,
  specs: readonly FieldSpecTuple[],
  count: Counter,
  options = scopeCount > 0,
  learned?: LearnedLookup,
): CollectorTemplate {
  const fields = specs.map(([pen, eid, len]) =>
    pen === V9_SCOPE_PEN
      ? resolveV9Scope(eid, len)
      : version === 9 && pen === 0
        ? resolveV9Field(eid, len, count)
        : resolveIpfixField(pen, eid, len, count, version === 10 ? learned : undefined),
  )
  return { id, version, scopeCount, options, fields, minLength: minRecordLength(fields) }
}

export function sameLayout(a: CollectorTemplate, b: CollectorTemplate): boolean {
  if (a.scopeCount !== b.scopeCount || a.options !== b.options || a.fields.length !== b.fields.length)
    return false
  return a.fields.every((f, i) => {
    const g = b.fields[i]
    return g !== undefined && f.id === g.id && f.pen === g.pen && f.length === g.length
  })
}
