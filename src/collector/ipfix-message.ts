/**
 * IPFIX messages in the collector (RFC 7011 §3, §8, §9): header checks, Set tiling, Template and Options
 * Template Sets into the session's template store (withdrawals applied over TCP and files, ignored and counted
 * over UDP, §8.4), and Data Sets decoded or kept until their template arrives. A message whose Set lengths do
 * not tile it is malformed and discarded (§9.1). A bad template record is rejected and counted and the rest
 * of its Set is skipped; the other Sets of the message are still processed (standards §5.3).
 */
import { minRecordLength, resolveIpfixField, type CollectorTemplate, type FieldDef } from './data-set.js'
import type { DecodeOutput, MessageDecoderHost } from './decode-output.js'
import type { MessageContext } from './pending.js'
import type { TransportSession } from './session.js'

export const IPFIX_HEADER = 16

export function decodeIpfix(
  col: MessageDecoderHost,
  bytes: Uint8Array,
  sess: TransportSession,
  now: number,
  out: DecodeOutput,
): void {
  if (bytes.byteLength < IPFIX_HEADER) return col.fail(out, 'short_header')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const length = view.getUint16(2)
  if (length < IPFIX_HEADER) return col.fail(out, 'bad_message_length')
  if (length > bytes.byteLength) return col.fail(out, 'truncated_message')
  if (length < bytes.byteLength) col.count('trailing_bytes')
  const ctx: MessageContext = {
    version: 10,
    session: sess.id,
    exporter: sess.key.exporterAddress,
    domain: view.getUint32(12),
    exportTime: view.getUint32(4),
    sequence: view.getUint32(8),
    sysUptime: 0,
  }
  const end = length
  for (let p = IPFIX_HEADER; p < end;) {
    if (end - p < 4) return col.fail(out, 'truncated_set_header')
    const len = view.getUint16(p + 2)
    if (len < 4) return col.fail(out, 'bad_set_length')
    if (len > end - p) return col.fail(out, 'set_overruns_message')
    p += len
  }
  let units: number | undefined = 0
  for (let p = IPFIX_HEADER; p < end;) {
    const setId = view.getUint16(p)
    const len = view.getUint16(p + 2)
    const body = p + 4
    const bodyEnd = p + len
    p = bodyEnd
    if (len === 4) {
      col.count('empty_set')
      continue
    }
    if (setId === 2 || setId === 3) templateSet(col, view, body, bodyEnd, setId === 3, ctx, sess, now, out)
    else if (setId >= 256) {
      const n = col.dataSet(ctx, setId, bytes, body, bodyEnd, now, out)
      units = n === undefined || units === undefined ? undefined : units + n
    } else col.count('reserved_set_id')
  }
  sess.sequence('ipfix', ctx.domain).observe(ctx.sequence, units)
}

function templateSet(
  col: MessageDecoderHost,
  view: DataView,
  p: number,
  end: number,
  options: boolean,
  ctx: MessageContext,
  sess: TransportSession,
  now: number,
  out: DecodeOutput,
): void {
  const hdr = options ? 6 : 4
  const setId = options ? 3 : 2
  const learned = col.templates.types.forSession(sess.id)
  while (end - p >= 4) {
    const tid = view.getUint16(p)
    const count = view.getUint16(p + 2)
    if (tid === 0 && count === 0 && allZero(view, p, end)) return // padding (§3.3.1)
    if (count === 0) {
      p += 4
      if (sess.key.protocol === 'udp') {
        col.count('udp_withdrawal_ignored')
        continue
      }
      if (tid === 2 || tid === 3) {
        if (tid !== setId) col.count('withdrawal_mismatched')
        else col.withdrawAll(ctx, options, out)
      } else col.withdraw(ctx, tid, options, out)
      continue
    }
    if (end - p < hdr) {
      col.count('template_truncated')
      return
    }
    const scope = options ? view.getUint16(p + 4) : 0
    p += hdr
    // Each specifier needs ≥ 4 octets: check before building anything from wire counts (CVE-2019-14459).
    if (count * 4 > end - p) {
      col.count('template_truncated')
      return
    }
    const fields: FieldDef[] = []
    for (let i = 0; i < count; i++) {
      if (end - p < 4) {
        col.count('template_truncated')
        return
      }
      let id = view.getUint16(p)
      const length = view.getUint16(p + 2)
      p += 4
      let pen = 0
      if (id & 0x8000) {
        if (end - p < 4) {
          col.count('template_truncated')
          return
        }
        id &= 0x7fff
        pen = view.getUint32(p)
        p += 4
      }
      fields.push(resolveIpfixField(pen, id, length, col.count, learned))
    }
    if (tid < 256) {
      col.count('template_bad_id')
      continue
    }
    if (options && (scope === 0 || scope > count)) {
      col.count('template_bad_scope_count')
      continue
    }
    const t: CollectorTemplate = {
      id: tid,
      version: 10,
      scopeCount: scope,
      options,
      fields,
      minLength: minRecordLength(fields),
    }
    col.defineTemplate(ctx, sess.key.protocol, t, now, out)
  }
}

function allZero(view: DataView, p: number, end: number): boolean {
  for (let i = p; i < end; i++) if (view.getUint8(i) !== 0) return false
  return true
}
