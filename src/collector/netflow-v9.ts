/**
 * NetFlow v9 export packets (RFC 3954): a 20-byte header (version 9, count, sysUpTime ms, UNIX secs, package
 * sequence, source id) and FlowSets walked by their lengths (the Count field is not trusted, standards §4):
 * 0 Template, 1 Options Template (scope and option lengths in octets, multiples of 4; scope length 0 accepted,
 * RFC 5153 §10.1), 2..255 reserved, ≥ 256 data. The source id plays the observation domain (§5.1); there is
 * no withdrawal and a new definition replaces the old (§7). Field types resolve as IANA ids, with types from
 * 32768 as vendor types (data-set.ts); field length 65535 is taken as variable length (de facto, goflow2#76).
 * Sequence numbers count packets per source id. FIRST/LAST_SWITCHED become absolute times in decode-message.ts.
 */
import {
  minRecordLength,
  resolveV9Field,
  resolveV9Scope,
  type CollectorTemplate,
  type FieldDef,
} from './data-set.js'
import type { DecodeOutput, MessageDecoderHost } from './decode-output.js'
import type { MessageContext } from './pending.js'
import type { TransportSession } from './session.js'

export const V9_HEADER = 20

export function decodeV9(
  col: MessageDecoderHost,
  bytes: Uint8Array,
  sess: TransportSession,
  now: number,
  out: DecodeOutput,
): void {
  if (bytes.byteLength < V9_HEADER) return col.fail(out, 'v9_short_header')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const ctx: MessageContext = {
    version: 9,
    session: sess.id,
    exporter: sess.key.exporterAddress,
    sysUptime: view.getUint32(4),
    exportTime: view.getUint32(8),
    sequence: view.getUint32(12),
    domain: view.getUint32(16),
  }
  sess.sequence('v9', ctx.domain).observe(ctx.sequence, 1)
  const end = bytes.byteLength
  let p = V9_HEADER
  while (end - p >= 4) {
    const setId = view.getUint16(p)
    const len = view.getUint16(p + 2)
    if (len < 4) return col.fail(out, 'v9_bad_flowset_length')
    if (len > end - p) return col.fail(out, 'v9_flowset_overrun')
    const body = p + 4
    const bodyEnd = p + len
    p = bodyEnd
    if (setId === 0) templateFlowSet(col, view, body, bodyEnd, ctx, sess, now, out)
    else if (setId === 1) optionsFlowSet(col, view, body, bodyEnd, ctx, sess, now, out)
    else if (setId >= 256) col.dataSet(ctx, setId, bytes, body, bodyEnd, now, out)
    else col.count('v9_reserved_flowset_id')
  }
  if (p < end) col.count('v9_trailing_bytes')
}

function templateFlowSet(
  col: MessageDecoderHost,
  view: DataView,
  p: number,
  end: number,
  ctx: MessageContext,
  sess: TransportSession,
  now: number,
  out: DecodeOutput,
): void {
  while (end - p >= 4) {
    const tid = view.getUint16(p)
    const count = view.getUint16(p + 2)
    p += 4
    if (count === 0) {
      if (tid !== 0) col.count('v9_empty_template')
      continue // padding, or a template without fields
    }
    if (count * 4 > end - p) {
      col.count('v9_template_truncated')
      return
    }
    const fields: FieldDef[] = []
    for (let i = 0; i < count; i++, p += 4)
      fields.push(resolveV9Field(view.getUint16(p), view.getUint16(p + 2), col.count))
    if (tid < 256) {
      col.count('template_bad_id')
      continue
    }
    const t: CollectorTemplate = {
      id: tid,
      version: 9,
      scopeCount: 0,
      options: false,
      fields,
      minLength: minRecordLength(fields),
    }
    col.defineTemplate(ctx, sess.key.protocol, t, now, out)
  }
}

function optionsFlowSet(
  col: MessageDecoderHost,
  view: DataView,
  p: number,
  end: number,
  ctx: MessageContext,
  sess: TransportSession,
  now: number,
  out: DecodeOutput,
): void {
  while (end - p >= 6) {
    const tid = view.getUint16(p)
    const scopeLen = view.getUint16(p + 2)
    const optLen = view.getUint16(p + 4)
    if (tid === 0 && scopeLen === 0 && optLen === 0) return // padding
    p += 6
    // FastNetMon CVE-2026-48684: lengths must be multiples of 4 and fit the FlowSet.
    if (scopeLen % 4 !== 0 || optLen % 4 !== 0) {
      col.count('v9_options_bad_length')
      return
    }
    if (scopeLen + optLen > end - p) {
      col.count('v9_template_truncated')
      return
    }
    const fields: FieldDef[] = []
    for (const stop = p + scopeLen; p < stop; p += 4)
      fields.push(resolveV9Scope(view.getUint16(p), view.getUint16(p + 2)))
    const scopeCount = fields.length
    for (const stop = p + optLen; p < stop; p += 4)
      fields.push(resolveV9Field(view.getUint16(p), view.getUint16(p + 2), col.count))
    if (tid < 256) {
      col.count('template_bad_id')
      continue
    }
    if (fields.length === 0) {
      col.count('v9_empty_template')
      continue
    }
    if (scopeCount === 0) col.count('v9_options_zero_scope')
    const t: CollectorTemplate = {
      id: tid,
      version: 9,
      scopeCount,
      options: true,
      fields,
      minLength: minRecordLength(fields),
    }
    col.defineTemplate(ctx, sess.key.protocol, t, now, out)
  }
}
