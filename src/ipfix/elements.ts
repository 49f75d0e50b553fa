/**
 * Information Element table: IANA elements (RFC 7012 §4, generated into iana-elements.ts), reverse elements
 * (RFC 5103 §6.1, PEN 29305) and registered enterprise / RFC 5610-learned / Flowtel elements.
 * Also the per-type length rules (RFC 7011 §6.1, reduced-size encoding §6.2, variable length §7).
 */
import { IANA_ELEMENTS } from './iana-elements.js'

export { IE_DATA_TYPES, type IeDataType } from './data-types.js'
import type { IeDataType } from './data-types.js'

export interface ElementDef {
  readonly pen: number
  readonly id: number
  readonly name: string
  readonly type: IeDataType
  readonly semantics?: string
  readonly units?: string
}

/** RFC 5103 §6.1: "IPFIX Reverse Information Element Private Enterprise" number. */
export const REVERSE_PEN = 29305
/** RFC 7011 §7: Field Length value that marks a variable-length field. */
export const VARLEN = 65535

/**
 * RFC 5103 §6.1: elements that MUST NOT be exported in reverse (identifiers, process configuration and
 * statistics, paddingOctets, biflowDirection). lookupElement(REVERSE_PEN, id) is undefined for these.
 */
const NON_REVERSIBLE = new Set([
  40, 41, 42, 130, 131, 137, 143, 144, 145, 148, 149, 163, 164, 165, 166, 167, 168, 173, 210, 211, 212, 213,
  214, 215, 216, 217, 239,
])

const key = (pen: number, id: number): number => pen * 65536 + id
const byKey = new Map<number, ElementDef>()
const byName = new Map<string, ElementDef>()

function add(def: ElementDef): void {
  byKey.set(key(def.pen, def.id), def)
  byName.set(def.name, def)
}

for (const [id, name, type, semantics, units] of IANA_ELEMENTS) {
  const def: { -readonly [K in keyof ElementDef]: ElementDef[K] } = { pen: 0, id, name, type }
  if (semantics) def.semantics = semantics
  if (units) def.units = units
  add(def)
}

function reverseOf(def: ElementDef): ElementDef {
  const r = {
    ...def,
    pen: REVERSE_PEN,
    name: 'reverse' + def.name.charAt(0).toUpperCase() + def.name.slice(1),
  }
  add(r)
  return r
}

/** The element (pen, id), or undefined. PEN 29305 gives the reverse of the IANA element `id` (RFC 5103). */
export function lookupElement(pen: number, id: number): ElementDef | undefined {
  const def = byKey.get(key(pen, id))
  if (def !== undefined || pen !== REVERSE_PEN || NON_REVERSIBLE.has(id)) return def
  const fwd = byKey.get(key(0, id))
  return fwd === undefined ? undefined : reverseOf(fwd)
}

/** The element called `name` (IANA, reverse*, or registered); throws an Error naming it when unknown. */
export function elementByName(name: string): ElementDef {
  const def = byName.get(name)
  if (def !== undefined) return def
  if (name.startsWith('reverse') && name.length > 7) {
    const base = name.charAt(7).toLowerCase() + name.slice(8)
    const fwd = byName.get(base)
    if (fwd !== undefined && fwd.pen === 0) {
      const r = lookupElement(REVERSE_PEN, fwd.id)
      if (r !== undefined) return r
      throw new Error(`information element ${name}: ${base} is not reversible (RFC 5103 §6.1)`)
    }
  }
  throw new Error(`unknown information element: ${name}`)
}

/** Adds or replaces elements (enterprise, RFC 5610-learned, Flowtel-own). IANA ids cannot be overridden. */
export function registerElements(defs: readonly ElementDef[]): void {
  for (const d of defs) {
    if (!Number.isInteger(d.id) || d.id < 1 || d.id > 32767)
      throw new Error(`element ${d.name}: id ${d.id} outside 1..32767 (RFC 7012 §4)`)
    if (!Number.isInteger(d.pen) || d.pen < 0 || d.pen > 0xffffffff)
      throw new Error(`element ${d.name}: bad enterprise number ${d.pen}`)
    if (d.pen === 0 && byKey.has(key(0, d.id)) && byKey.get(key(0, d.id))?.name !== d.name)
      throw new Error(`element ${d.name}: IANA id ${d.id} is already ${byKey.get(key(0, d.id))?.name}`)
    add(d)
  }
}

/** Canonical encoded length of a type; VARLEN (65535) for octetArray, string and the RFC 6313 lists. */
export function defaultLength(type: IeDataType): number {
  switch (type) {
    case 'unsigned8':
    case 'signed8':
    case 'boolean':
      return 1
    case 'unsigned16':
    case 'signed16':
      return 2
    case 'unsigned32':
    case 'signed32':
    case 'float32':
    case 'dateTimeSeconds':
    case 'ipv4Address':
      return 4
    case 'unsigned64':
    case 'signed64':
    case 'float64':
    case 'dateTimeMilliseconds':
    case 'dateTimeMicroseconds':
    case 'dateTimeNanoseconds':
      return 8
    case 'macAddress':
      return 6
    case 'ipv6Address':
      return 16
    case 'octetArray':
    case 'string':
    case 'basicList':
    case 'subTemplateList':
    case 'subTemplateMultiList':
      return VARLEN
  }
}

/**
 * Whether a Field Length is legal for a type: the canonical size, a reduced size (RFC 7011 §6.2: integers of
 * 16/32/64 bits to any smaller size, float64 to 4), or anything (incl. VARLEN) for octetArray, string and lists.
 * Zero-length fixed fields are accepted only with `allowZero` (real devices send them; telegraf#14370).
 */
export function isLegalLength(type: IeDataType, length: number, allowZero = false): boolean {
  if (!Number.isInteger(length) || length < 0 || length > VARLEN) return false
  const full = defaultLength(type)
  if (full === VARLEN) return true
  if (length === 0) return allowZero
  switch (type) {
    case 'unsigned16':
    case 'signed16':
    case 'unsigned32':
    case 'signed32':
    case 'unsigned64':
    case 'signed64':
      return length <= full
    case 'float64':
      return length === 4 || length === 8
    default:
      return length === full
  }
}
