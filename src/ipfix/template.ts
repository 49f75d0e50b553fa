/**
 * Templates and Options Templates as the exporter defines them (RFC 7011 §3.4.1, §3.4.2.2), with their
 * wire encoding (Field Specifiers, §3.2: enterprise bit + PEN when pen != 0).
 */
import { VARLEN, defaultLength, elementByName, isLegalLength, lookupElement } from './elements.js'

export interface FieldSpec {
  readonly id: number
  readonly pen: number
  /** Field Length; 65535 = variable length (RFC 7011 §7). */
  readonly length: number
}

export class Template {
  readonly id: number
  readonly fields: readonly FieldSpec[]
  /** Number of leading scope fields; > 0 makes this an Options Template. */
  readonly scopeCount: number
  readonly isOptions: boolean
  readonly hasVariableLength: boolean
  /** Sum of the fixed field lengths (variable-length fields count 0). */
  readonly fixedLength: number
  /** Smallest possible record: variable-length fields count 1 (their length octet). */
  readonly minRecordLength: number
  /** The Template Record (or Options Template Record) as sent inside a Set, without the Set header. */
  readonly recordBytes: Uint8Array

  constructor(id: number, fields: readonly FieldSpec[], scopeCount = 0) {
    if (!Number.isInteger(id) || id < 256 || id > 65535)
      throw new Error(`template id ${id} outside 256..65535 (RFC 7011 §3.4.1)`)
    if (fields.length === 0) throw new Error(`template ${id}: no fields`)
    if (!Number.isInteger(scopeCount) || scopeCount < 0 || scopeCount > fields.length)
      throw new Error(
        `template ${id}: scope count ${scopeCount} not in 0..${fields.length} (RFC 7011 §3.4.2.2)`,
      )
    let fixed = 0
    let min = 0
    let varlen = false
    let size = scopeCount > 0 ? 6 : 4
    for (const [i, f] of fields.entries()) {
      if (!Number.isInteger(f.id) || f.id < 1 || f.id > 32767)
        throw new Error(`template ${id} field ${i}: element id ${f.id} outside 1..32767`)
      if (!Number.isInteger(f.pen) || f.pen < 0 || f.pen > 0xffffffff)
        throw new Error(`template ${id} field ${i}: bad enterprise number ${f.pen}`)
      const def = lookupElement(f.pen, f.id)
      const name = def?.name ?? `${f.pen}.${f.id}`
      if (!Number.isInteger(f.length) || f.length < 1 || f.length > VARLEN)
        throw new Error(`template ${id} field ${name}: length ${f.length} outside 1..65535`)
      if (def !== undefined && !isLegalLength(def.type, f.length))
        throw new Error(
          `template ${id} field ${name}: length ${f.length} is illegal for ${def.type} (RFC 7011 §6.2)`,
        )
      if (f.length === VARLEN) {
        varlen = true
        min += 1
      } else {
        fixed += f.length
        min += f.length
      }
      size += f.pen === 0 ? 4 : 8
    }
    if (min > 65535 - 20) throw new Error(`template ${id}: records of ${min} octets cannot fit a message`)
    this.id = id
    this.fields = Object.freeze(fields.map((f) => Object.freeze({ id: f.id, pen: f.pen, length: f.length })))
    this.scopeCount = scopeCount
    this.isOptions = scopeCount > 0
    this.hasVariableLength = varlen
    this.fixedLength = fixed
    this.minRecordLength = min

    const b = new Uint8Array(size)
    const v = new DataView(b.buffer)
    v.setUint16(0, id)
    v.setUint16(2, fields.length)
    let p = 4
    if (scopeCount > 0) {
      v.setUint16(4, scopeCount)
      p = 6
    }
    for (const f of this.fields) {
      v.setUint16(p, f.pen === 0 ? f.id : f.id | 0x8000)
      v.setUint16(p + 2, f.length)
      p += 4
      if (f.pen !== 0) {
        v.setUint32(p, f.pen)
        p += 4
      }
    }
    this.recordBytes = b
  }

  /** Builds a template from element names; a missing length means the type's canonical length (or varlen). */
  static fromNames(
    id: number,
    fields: ReadonlyArray<readonly [name: string, length?: number]>,
    scopeCount?: number,
  ): Template {
    const specs = fields.map(([name, length]) => {
      const def = elementByName(name)
      return { id: def.id, pen: def.pen, length: length ?? defaultLength(def.type) }
    })
    return new Template(id, specs, scopeCount)
  }

  /** True when both templates have the same kind, scope count and Field Specifiers. */
  sameLayout(o: Template): boolean {
    if (o.scopeCount !== this.scopeCount || o.fields.length !== this.fields.length) return false
    return this.fields.every((f, i) => {
      const g = o.fields[i]
      return g !== undefined && g.id === f.id && g.pen === f.pen && g.length === f.length
    })
  }
}
