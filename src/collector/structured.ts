/**
 * RFC 6313 basicList values as JSON: semantic (§4.5.1), the element (Field ID with enterprise bit and PEN),
 * and each element value decoded by its type (fixed length, or variable length with the RFC 7011 §7 prefix).
 * A list whose element length is 0 while content remains, or whose content overruns, is not decoded (the
 * caller keeps the hex and counts it: standards §5.3 #37, #38). subTemplateList and subTemplateMultiList stay
 * hex (they need the session's templates; left for later).
 */
import { decodeValue, valueToJson } from '../ipfix/decoder.js'
import { VARLEN, lookupElement } from '../ipfix/elements.js'

const SEMANTICS: Record<number, string> = {
  0: 'noneOf',
  1: 'exactlyOneOf',
  2: 'oneOrMoreOf',
  3: 'allOf',
  4: 'ordered',
  255: 'undefined',
}
/** Elements decoded at most per list (a loop guard). */
const MAX_ELEMENTS = 65535

export interface BasicListJson {
  semantic: string
  element: string
  values: unknown[]
}

/** The list, or undefined (with the reason passed to `count`) when it is malformed. */
export function basicListToJson(b: Uint8Array, count: (name: string) => void): BasicListJson | undefined {
  if (b.byteLength < 5) {
    count('basic_list_truncated')
    return undefined
  }
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const semantic = v.getUint8(0)
  let id = v.getUint16(1)
  const elen = v.getUint16(3)
  let p = 5
  let pen = 0
  if (id & 0x8000) {
    if (b.byteLength < 9) {
      count('basic_list_truncated')
      return undefined
    }
    id &= 0x7fff
    pen = v.getUint32(5)
    p = 9
  }
  const def = lookupElement(pen, id)
  const type = def?.type ?? 'octetArray'
  const values: unknown[] = []
  if (elen === 0 && p < b.byteLength) {
    count('basic_list_zero_length') // RFC 6313 loop guard
    return undefined
  }
  while (p < b.byteLength && values.length < MAX_ELEMENTS) {
    let len = elen
    if (elen === VARLEN) {
      len = v.getUint8(p++)
      if (len === 255) {
        if (b.byteLength - p < 2) {
          count('basic_list_overrun')
          return undefined
        }
        len = v.getUint16(p)
        p += 2
      }
    }
    if (len > b.byteLength - p) {
      count('basic_list_overrun')
      return undefined
    }
    values.push(valueToJson(type, decodeValue(b, v, p, len, type, count)))
    p += len
  }
  return { semantic: SEMANTICS[semantic] ?? String(semantic), element: def?.name ?? `${pen}.${id}`, values }
}
