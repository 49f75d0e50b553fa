/**
 * RFC 5610 Information Element Type Records learned at run time, per transport session (RFC 5610 §3, §5:
 * the description applies to the elements the exporter sends in that session).
 *
 * An options data record is a type record when it carries informationElementId (303) and
 * informationElementDataType (339); privateEnterpriseNumber (346, absent = 0), informationElementName (341),
 * informationElementSemantics (344) and informationElementUnits (345) are used when present. The learned
 * type names and types an element only where the collector's dictionaries do not know it (IANA, vendor
 * files): a dictionary element keeps its definition, and a learned name that is already another element's
 * is not taken (the element keeps its `<pen>.<id>` name, typed). Bad records (unknown type code, id outside
 * 1..32767, RFC 5103 reverse PEN) are counted and ignored. The table is bounded per session and overall.
 */
import type { DecodedField } from '../ipfix/decoder.js'
import {
  IE_DATA_TYPES,
  REVERSE_PEN,
  elementByName,
  lookupElement,
  type ElementDef,
  type IeDataType,
} from '../ipfix/elements.js'
import type { Counter } from './data-set.js'

/** RFC 5610 §3.1: data type codes are indexes into IE_DATA_TYPES (kept in IANA code order). */
const TYPE_BY_CODE: readonly IeDataType[] = IE_DATA_TYPES
/** RFC 5610 §3.2: semantics codes. */
const SEMANTICS_BY_CODE = [
  'default',
  'quantity',
  'totalCounter',
  'deltaCounter',
  'identifier',
  'flags',
  'list',
  'snmpCounter',
  'snmpGauge',
]
/** RFC 5610 §3.3: units codes (IANA "IPFIX Information Element Units"). */
const UNITS_BY_CODE = [
  'none',
  'bits',
  'octets',
  'packets',
  'flows',
  'seconds',
  'milliseconds',
  'microseconds',
  'nanoseconds',
  '4-octet words',
  'messages',
  'hops',
  'entries',
  'frames',
  'ports',
  'inferred',
]

/** A learned definition as persisted with the templates. */
export interface PersistedType {
  session: string
  pen: number
  id: number
  type: IeDataType
  name: string
  semantics?: string
  units?: string
}

export interface LearnedTypesOptions {
  /** Learned elements per session. Default 4096. */
  maxPerSession?: number
  /** Learned elements over all sessions. Default 65 536. */
  maxTotal?: number
}

const key = (pen: number, id: number): number => pen * 65536 + id
const NAME = /^[A-Za-z][A-Za-z0-9_]{0,127}$/

/** Whether an options record of these fields is an RFC 5610 type record. */
export function isTypeRecord(fields: ReadonlyArray<{ readonly pen: number; readonly id: number }>): boolean {
  let id = false
  let type = false
  for (const f of fields)
    if (f.pen === 0) {
      if (f.id === 303) id = true
      else if (f.id === 339) type = true
    }
  return id && type
}

function num(v: DecodedField['value'] | undefined): number | undefined {
  if (typeof v === 'number') return v
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v)
  return undefined
}

export class LearnedTypes {
  private readonly sessions = new Map<string, Map<number, ElementDef>>()
  private total = 0
  private readonly maxPerSession: number
  private readonly maxTotal: number

  constructor(
    private readonly count: Counter,
    opts: LearnedTypesOptions = {},
  ) {
    this.maxPerSession = opts.maxPerSession ?? 4096
    this.maxTotal = opts.maxTotal ?? 65_536
  }

  get size(): number {
    return this.total
  }

  /** The learned definition of (pen, id) in a session, if any. */
  lookup(session: string, pen: number, id: number): ElementDef | undefined {
    return this.sessions.get(session)?.get(key(pen, id))
  }

  /** A lookup bound to one session (undefined when the session has learned nothing). */
  forSession(session: string): ((pen: number, id: number) => ElementDef | undefined) | undefined {
    const m = this.sessions.get(session)
    return m === undefined ? undefined : (pen, id) => m.get(key(pen, id))
  }

  /**
   * Learns from one type record; returns the definition when it is new or changed (the caller retypes the
   * session's templates), undefined when it was ignored or already known.
   */
  learn(session: string, fields: readonly DecodedField[]): ElementDef | undefined {
    let pen = 0
    let id: number | undefined
    let code: number | undefined
    let name: string | undefined
    let semantics: string | undefined
    let units: string | undefined
    for (const f of fields) {
      if (f.pen !== 0) continue
      if (f.id === 346) pen = num(f.value) ?? -1
      else if (f.id === 303) id = num(f.value)
      else if (f.id === 339) code = num(f.value)
      else if (f.id === 341 && typeof f.value === 'string') name = f.value
      else if (f.id === 344) semantics = SEMANTICS_BY_CODE[num(f.value) ?? -1]
      else if (f.id === 345) units = UNITS_BY_CODE[num(f.value) ?? -1]
    }
    const type = code === undefined ? undefined : TYPE_BY_CODE[code]
    if (id === undefined || id < 1 || id > 32767 || pen < 0 || pen > 0xffffffff || pen === REVERSE_PEN) {
      this.count('type_record_bad_id')
      return undefined
    }
    if (type === undefined || !IE_DATA_TYPES.includes(type)) {
      this.count('type_record_bad_type')
      return undefined
    }
    // The dictionaries win: the record adds nothing for an element they define.
    if (lookupElement(pen, id) !== undefined) {
      this.count('type_record_known')
      return undefined
    }
    let useName = `${pen}.${id}`
    if (name !== undefined && NAME.test(name)) {
      if (nameTaken(name)) this.count('type_record_name_taken')
      else useName = name
    } else if (name !== undefined) this.count('type_record_bad_name')
    const def: ElementDef = {
      pen,
      id,
      name: useName,
      type,
      ...(semantics !== undefined && semantics !== 'default' ? { semantics } : {}),
      ...(units !== undefined && units !== 'none' ? { units } : {}),
    }
    return this.put(session, def) ? def : undefined
  }

  /** Adds a definition; false when it was there already (same type and name) or a limit refused it. */
  put(session: string, def: ElementDef): boolean {
    let m = this.sessions.get(session)
    const old = m?.get(key(def.pen, def.id))
    if (old !== undefined && old.type === def.type && old.name === def.name) return false
    if (old === undefined) {
      if ((m?.size ?? 0) >= this.maxPerSession || this.total >= this.maxTotal) {
        this.count('type_record_limit')
        return false
      }
      this.total++
    } else this.count('type_record_redefined')
    if (m === undefined) {
      m = new Map()
      this.sessions.set(session, m)
    }
    m.set(key(def.pen, def.id), def)
    this.count('type_records_learned')
    return true
  }

  /** A session's learned types go with it (the end of a TCP session). */
  dropSession(session: string): void {
    const m = this.sessions.get(session)
    if (m === undefined) return
    this.total -= m.size
    this.sessions.delete(session)
  }

  toJSON(): PersistedType[] {
    const out: PersistedType[] = []
    for (const [session, m] of this.sessions)
      for (const d of m.values())
        out.push({
          session,
          pen: d.pen,
          id: d.id,
          type: d.type,
          name: d.name,
          ...(d.semantics !== undefined ? { semantics: d.semantics } : {}),
          ...(d.units !== undefined ? { units: d.units } : {}),
        })
    return out
  }

  /** Loads what toJSON wrote; bad entries are counted and skipped. */
  load(data: unknown): number {
    if (!Array.isArray(data)) return 0
    let n = 0
    for (const raw of data) {
      const p = raw as Partial<PersistedType>
      const ok =
        typeof p.session === 'string' &&
        Number.isInteger(p.pen) &&
        Number.isInteger(p.id) &&
        typeof p.type === 'string' &&
        IE_DATA_TYPES.includes(p.type) &&
        typeof p.name === 'string' &&
        (p.id ?? 0) >= 1 &&
        (p.id ?? 0) <= 32767 &&
        (p.pen ?? -1) >= 0 &&
        (p.pen ?? -1) <= 0xffffffff
      if (!ok || lookupElement(p.pen!, p.id!) !== undefined) {
        this.count('persist_bad_type')
        continue
      }
      const def: ElementDef = {
        pen: p.pen!,
        id: p.id!,
        type: p.type!,
        name: p.name!,
        ...(typeof p.semantics === 'string' ? { semantics: p.semantics } : {}),
        ...(typeof p.units === 'string' ? { units: p.units } : {}),
      }
      if (this.put(p.session!, def)) n++
    }
    return n
  }
}

function nameTaken(name: string): boolean {
  try {
    elementByName(name)
    return true
  } catch {
    return false
  }
}
