/**
 * RFC 6313 structured data as JSON: basicList (§4.5.1), subTemplateList (§4.5.2) and subTemplateMultiList
 * (§4.5.3), the last two decoded with the templates of the exporter's session (the caller passes a lookup).
 *
 *   basicList            → { semantic, element, values: [...] }
 *   subTemplateList      → { semantic, templateId, records: [{ name: value, ... }] }
 *   subTemplateMultiList → { semantic, lists: [{ templateId, records: [...] }] }
 *
 * Records inside a list may hold lists again: decoding recurses, at most MAX_DEPTH levels (standards §5.3
 * #39: a list that references its own template, or 10 000 levels). A malformed list gives undefined and a
 * counter; the caller keeps its hex and the rest of the record (§5.3 #37 zero element length, #38 overrun,
 * #39 depth, #40 inner length < 4 or beyond the list). A subTemplateList whose template is unknown is not
 * decodable either (#41: counted, kept as hex); inside a subTemplateMultiList only that entry is left as
 * `{ templateId, unknownTemplate: true, data: "<hex>" }` and the other entries are decoded.
 */
import { decodeValue, valueToJson, type DecodedField } from '../ipfix/decoder.js'
import { VARLEN, lookupElement, type IeDataType } from '../ipfix/elements.js'
import { decodeRecords, type CollectorTemplate } from './data-set.js'

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
/** Counters of decodeRecords that mean a record could not be delimited (others are about one value). */
const RECORD_FAULTS = new Set([
  'partial_record',
  'varlen_overrun',
  'zero_length_records',
  'field_value_limit',
])
/** Nesting levels of lists decoded at most (standards §5.3 #39). */
export const MAX_DEPTH = 16

export interface BasicListJson {
  semantic: string
  element: string
  values: unknown[]
}

export interface SubTemplateListJson {
  semantic: string
  templateId: number
  records: Array<Record<string, unknown>>
}

export interface SubTemplateMultiListJson {
  semantic: string
  lists: Array<
    | { templateId: number; records: Array<Record<string, unknown>> }
    | { templateId: number; unknownTemplate: true; data: string }
  >
}

/** What decoding the lists of one record needs: the session's templates, the counters, the depth so far. */
export interface ListContext {
  /**
   * The template `id` of the session and domain the record came from (undefined: unknown), to decode records
   * from `octets` bytes.
   */
  readonly template?: (id: number, octets: number) => CollectorTemplate | undefined
  readonly count: (name: string) => void
  readonly depth?: number
}

/** The list types of RFC 6313. */
export function isListType(t: IeDataType): boolean {
  return t === 'basicList' || t === 'subTemplateList' || t === 'subTemplateMultiList'
}

const semanticName = (s: number): string => SEMANTICS[s] ?? String(s)

/** Any of the three list types as JSON, or undefined (counted) when malformed or not decodable. */
export function listToJson(type: IeDataType, b: Uint8Array, ctx: ListContext): unknown {
  const depth = ctx.depth ?? 0
  if (depth >= MAX_DEPTH) {
    ctx.count('list_depth_exceeded')
    return undefined
  }
  if (type === 'basicList') return basicListToJson(b, ctx.count, ctx)
  if (type === 'subTemplateList') return subTemplateListToJson(b, ctx)
  if (type === 'subTemplateMultiList') return subTemplateMultiListToJson(b, ctx)
  return undefined
}

/** A value inside a list: a nested list decoded (undefined if malformed), anything else in JSON form. */
function innerValue(
  type: IeDataType,
  v: DecodedField['value'],
  ctx: ListContext,
): { ok: boolean; v: unknown } {
  if (isListType(type) && v instanceof Uint8Array) {
    const inner = listToJson(type, v, { ...ctx, depth: (ctx.depth ?? 0) + 1 })
    return inner === undefined ? { ok: false, v: undefined } : { ok: true, v: inner }
  }
  return { ok: true, v: valueToJson(type, v) }
}

/** The list, or undefined (with the reason passed to `count`) when it is malformed. */
export function basicListToJson(
  b: Uint8Array,
  count: (name: string) => void,
  ctx: ListContext = { count },
): BasicListJson | undefined {
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
    const raw = decodeValue(b, v, p, len, type, count)
    const inner = innerValue(type, raw, ctx)
    if (!inner.ok) return undefined
    values.push(inner.v)
    p += len
  }
  return { semantic: semanticName(semantic), element: def?.name ?? `${pen}.${id}`, values }
}

/**
 * The records of template `t` in b[p, end), each as an object keyed by element name (a repeated element as
 * an array), nested lists decoded; undefined when a record is cut short or a nested list is malformed.
 */
function listRecords(
  t: CollectorTemplate,
  b: Uint8Array,
  p: number,
  end: number,
  ctx: ListContext,
): Array<Record<string, unknown>> | undefined {
  if (t.minLength === 0) {
    if (end > p) {
      ctx.count('list_zero_length_template') // records cannot be delimited (loop guard)
      return undefined
    }
    return []
  }
  const faults: string[] = []
  const recs = decodeRecords(t, b, p, end, (name) => {
    if (RECORD_FAULTS.has(name)) faults.push(name)
    ctx.count(`list_${name}`)
  })
  if (faults.length > 0) return undefined
  const out: Array<Record<string, unknown>> = []
  for (const fields of recs) {
    const o: Record<string, unknown> = {}
    for (const f of fields) {
      const inner = innerValue(f.type, f.value, ctx)
      if (!inner.ok) return undefined
      if (!Object.hasOwn(o, f.name)) o[f.name] = inner.v
      else {
        const prev = o[f.name]
        // A repeated element: every occurrence, in template order (a list value is an object, not an array).
        if (Array.isArray(prev) && !isListType(f.type)) prev.push(inner.v)
        else o[f.name] = [prev, inner.v]
      }
    }
    out.push(o)
  }
  return out
}

export function subTemplateListToJson(b: Uint8Array, ctx: ListContext): SubTemplateListJson | undefined {
  if (b.byteLength < 3) {
    ctx.count('stl_truncated')
    return undefined
  }
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const semantic = v.getUint8(0)
  const templateId = v.getUint16(1)
  const t = ctx.template?.(templateId, b.byteLength - 3)
  if (t === undefined) {
    ctx.count('stl_unknown_template')
    return undefined
  }
  const records = listRecords(t, b, 3, b.byteLength, ctx)
  if (records === undefined) return undefined
  return { semantic: semanticName(semantic), templateId, records }
}

export function subTemplateMultiListToJson(
  b: Uint8Array,
  ctx: ListContext,
): SubTemplateMultiListJson | undefined {
  if (b.byteLength < 1) {
    ctx.count('stml_truncated')
    return undefined
  }
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const semantic = v.getUint8(0)
  const lists: SubTemplateMultiListJson['lists'] = []
  let p = 1
  while (p < b.byteLength) {
    if (b.byteLength - p < 4) {
      ctx.count('stml_truncated')
      return undefined
    }
    const templateId = v.getUint16(p)
    const len = v.getUint16(p + 2)
    if (len < 4 || len > b.byteLength - p) {
      ctx.count('stml_bad_length') // standards §5.3 #40 (loop guard)
      return undefined
    }
    const t = ctx.template?.(templateId, len - 4)
    if (t === undefined) {
      ctx.count('stml_unknown_template')
      lists.push({
        templateId,
        unknownTemplate: true,
        data: Buffer.from(b.subarray(p + 4, p + len)).toString('hex'),
      })
    } else {
      const records = listRecords(t, b, p + 4, p + len, ctx)
      if (records === undefined) return undefined
      lists.push({ templateId, records })
    }
    p += len
  }
  return { semantic: semanticName(semantic), lists }
}
