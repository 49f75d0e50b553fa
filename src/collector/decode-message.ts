/**
 * The collector's decoding core: one FlowCollector for all exporters. Each datagram (or TCP-framed message)
 * is dispatched by the version in its first two octets: 5 (NetFlow v5), 9 (NetFlow v9, RFC 3954), 10 (IPFIX,
 * RFC 7011); sFlow v5 (version 5 in a 32-bit field) is told apart from NetFlow v5 by its first four octets.
 * Template state is per transport session (template-store.ts); data before its template waits in a bounded
 * buffer (pending.ts) and is decoded when the template arrives; sequence numbers are accounted per session and
 * domain (session.ts). Nothing throws for bad input: every fault is a named counter.
 */
import type { DecodedField } from '../ipfix/decoder.js'
import { lookupElement } from '../ipfix/elements.js'
import { registerVendorElements } from '../ipfix/enterprise/vendors.js'
import { decodeRecords, type CollectorTemplate } from './data-set.js'
import { decodeIpfix } from './ipfix-message.js'
import { decodeV5 } from './netflow-v5.js'
import { decodeV9 } from './netflow-v9.js'
import { PendingStore, type MessageContext, type PendingOptions } from './pending.js'
import {
  TransportSession,
  sessionId,
  type SequenceOptions,
  type SessionKey,
  type TransportProtocol,
} from './session.js'
import { decodeSflow } from './sflow.js'
import { isListType, listToJson, type ListContext } from './structured.js'
import { isTypeRecord } from './type-records.js'
import { TemplateStore, templateKey, type TemplateStoreOptions } from './template-store.js'
import { uptimeToUnixMs } from './netflow-v5.js'
import type { CollectedRecord, ColumnSink, DecodeOutput, MessageDecoderHost } from './decode-output.js'

export type {
  CollectedRecord,
  ColumnSink,
  DecodeOutput,
  FlowVersion,
  TemplateEvent,
} from './decode-output.js'

export interface CollectorOptions {
  templates?: TemplateStoreOptions
  pending?: PendingOptions
  sequence?: SequenceOptions
  /** Sessions kept at most (least recently seen is dropped, with its templates). Default 10 000. */
  maxSessions?: number
  /** Add absolute flowStart/EndMilliseconds to NetFlow v9 records that carry sysUpTime times. Default true. */
  absoluteTimes?: boolean
}

export class FlowCollector implements MessageDecoderHost {
  readonly counters: Record<string, number> = {}
  readonly templates: TemplateStore
  readonly pending: PendingStore
  readonly sessions = new Map<string, TransportSession>()
  private readonly maxSessions: number
  private readonly absoluteTimes: boolean
  /**
   * Where flow data sets go straight into storage columns, when set (collect --store without JSON output):
   * their records are then counted in `DecodeOutput.columnar`, not listed in `records`.
   */
  columnSink: ColumnSink | undefined

  constructor(private readonly opts: CollectorOptions = {}) {
    registerVendorElements()
    this.templates = new TemplateStore(opts.templates)
    this.pending = new PendingStore(opts.pending)
    this.maxSessions = opts.maxSessions ?? 10_000
    this.absoluteTimes = opts.absoluteTimes ?? true
  }

  readonly count = (name: string, n = 1): void => {
    this.counters[name] = (this.counters[name] ?? 0) + n
  }

  /** The key object and session of the last message (listeners pass one key object per exporter). */
  private lastKey: SessionKey | undefined
  private lastSession: TransportSession | undefined

  /** The session object for a key (created on first use; the least recently seen is evicted when full). */
  session(key: SessionKey, now: number): TransportSession {
    const last = this.lastSession
    // The same key object as the last message, its session still live: it is already the most recent.
    if (key === this.lastKey && last !== undefined && this.sessions.get(last.id) === last) {
      last.lastSeen = now
      return last
    }
    const id = sessionId(key)
    let s = this.sessions.get(id)
    if (s !== undefined) {
      this.sessions.delete(id) // keep the map in least-recently-seen order
    } else {
      if (this.sessions.size >= this.maxSessions) {
        const oldest = this.sessions.keys().next()
        if (!oldest.done) {
          this.endSession(oldest.value)
          this.count('session_evicted')
        }
      }
      s = new TransportSession(key, this.opts.sequence, this.count)
      this.count('sessions')
    }
    s.lastSeen = now
    this.sessions.set(id, s)
    this.lastKey = key
    this.lastSession = s
    return s
  }

  /** Ends a session: its templates and pending data go (the end of a TCP session, RFC 7011 §8.1). */
  endSession(id: string): void {
    this.templates.dropSession(id)
    this.pending.dropSession(id)
    this.sessions.delete(id)
  }

  /** Decodes one message from `key`'s session; never throws. */
  decode(message: Uint8Array, key: SessionKey, now = Date.now()): DecodeOutput {
    const out: DecodeOutput = { records: [], events: [] }
    this.count('messages')
    try {
      const sess = this.session(key, now)
      if (message.byteLength < 4) {
        this.fail(out, 'short_header')
        return out
      }
      const v = new DataView(message.buffer, message.byteOffset, message.byteLength)
      const version = v.getUint16(0)
      if (version === 10) decodeIpfix(this, message, sess, now, out)
      else if (version === 9) decodeV9(this, message, sess, now, out)
      else if (version === 5) this.v5(message, sess, out)
      else if (version === 0 && v.getUint32(0) === 5) decodeSflow(this, message, sess, out)
      else this.fail(out, 'bad_version')
    } catch {
      this.fail(out, 'exception')
    }
    this.count('records', out.records.length + (out.columnar ?? 0))
    return out
  }

  /** Counts a fault that ends the message (kept records stay). */
  fail(out: DecodeOutput, name: string): void {
    this.count(name)
    this.count('malformed_messages')
    out.error ??= name
  }

  private v5(message: Uint8Array, sess: TransportSession, out: DecodeOutput): void {
    const r = decodeV5(message)
    if ('error' in r) {
      this.fail(out, r.error)
      return
    }
    const h = r.header
    const domain = (h.engineType << 8) | h.engineId
    sess.sequence('v5', domain).observe(h.sequence, h.count)
    for (const fields of r.records)
      out.records.push({
        version: 5,
        exporter: sess.key.exporterAddress,
        odid: domain,
        templateId: 0,
        isOptions: false,
        scopeCount: 0,
        fields,
        exportTime: h.unixSecs,
        sequence: h.sequence,
        deferred: false,
      })
  }

  /** Stores a template from a message, reports it, and decodes any data that waited for it. */
  defineTemplate(
    ctx: MessageContext,
    protocol: TransportProtocol,
    t: CollectorTemplate,
    now: number,
    out: DecodeOutput,
  ): void {
    const status = this.templates.set(ctx.session, protocol, ctx.domain, t, now)
    // Every template event counted by kind and status: the log of them is rate-limited (event-log-limit.ts).
    this.count(`${t.options ? 'options_templates' : 'templates'}_${status}`)
    out.events.push({
      event: t.options ? 'options-template' : 'template',
      version: t.version,
      exporter: ctx.exporter,
      domain: ctx.domain,
      templateId: t.id,
      status,
      scopeCount: t.scopeCount,
      fields: t.fields.map((f) => ({ name: f.name, pen: f.pen, id: f.id, length: f.length })),
    })
    if (status === 'rejected') return
    const waiting = this.pending.take(templateKey(ctx.session, t.version, ctx.domain, t.id))
    for (const w of waiting) {
      this.count('pending_decoded')
      this.emit(w.ctx, t, w.body, 0, w.body.byteLength, true, out, now)
    }
  }

  withdraw(ctx: MessageContext, id: number, options: boolean, out: DecodeOutput): void {
    if (this.templates.withdraw(ctx.session, ctx.version, ctx.domain, id, options))
      out.events.push({
        event: 'withdrawal',
        version: ctx.version,
        exporter: ctx.exporter,
        domain: ctx.domain,
        templateId: id,
      })
  }

  withdrawAll(ctx: MessageContext, options: boolean, out: DecodeOutput): void {
    this.templates.withdrawAll(ctx.session, ctx.version, ctx.domain, options)
    out.events.push({
      event: 'withdrawal-all',
      version: ctx.version,
      exporter: ctx.exporter,
      domain: ctx.domain,
      templateId: options ? 3 : 2,
    })
  }

  /**
   * A Data Set body bytes[p, end) for template `setId`: decoded now, or kept until its template arrives.
   * Returns the records decoded, or undefined when the set was deferred (its record count is unknown).
   */
  dataSet(
    ctx: MessageContext,
    setId: number,
    bytes: Uint8Array,
    p: number,
    end: number,
    now: number,
    out: DecodeOutput,
  ): number | undefined {
    const t = this.templates.get(ctx.session, ctx.version, ctx.domain, setId, now, end - p)
    if (t === undefined) {
      this.count('no_template')
      this.pending.add(
        templateKey(ctx.session, ctx.version, ctx.domain, setId),
        setId,
        bytes.subarray(p, end),
        ctx,
        now,
      )
      return undefined
    }
    return this.emit(ctx, t, bytes, p, end, false, out, now)
  }

  private emit(
    ctx: MessageContext,
    t: CollectorTemplate,
    bytes: Uint8Array,
    p: number,
    end: number,
    deferred: boolean,
    out: DecodeOutput,
    now: number,
  ): number {
    if (this.columnSink !== undefined && !t.options) {
      const n = this.columnSink.takeDataSet(t, ctx, bytes, p, end)
      if (n !== undefined) {
        out.columnar = (out.columnar ?? 0) + n
        return n
      }
    }
    const recs = decodeRecords(t, bytes, p, end, this.count)
    const lists = t.version === 10 && t.fields.some((f) => isListType(f.type))
    if (t.options && t.version === 10 && isTypeRecord(t.fields))
      for (const fields of recs) this.learnType(ctx, fields)
    for (const fields of recs) {
      if (ctx.version === 9 && this.absoluteTimes) addAbsoluteTimes(fields, ctx)
      const rec: CollectedRecord = {
        version: ctx.version,
        exporter: ctx.exporter,
        odid: ctx.domain,
        templateId: t.id,
        isOptions: t.options,
        scopeCount: t.scopeCount,
        fields,
        exportTime: ctx.exportTime,
        sequence: ctx.sequence,
        deferred,
      }
      if (lists) {
        const structured = this.lists(ctx, fields, now)
        if (structured !== undefined) rec.structured = structured
      }
      out.records.push(rec)
    }
    return recs.length
  }

  /** An RFC 5610 type record: learned for the session; its templates take it when they next decode. */
  private learnType(ctx: MessageContext, fields: DecodedField[]): void {
    const def = this.templates.types.learn(ctx.session, fields)
    if (def !== undefined) this.templates.typesChanged(ctx.session)
  }

  /** The RFC 6313 lists of one record as JSON, by field index, with the session's templates. */
  private lists(ctx: MessageContext, fields: DecodedField[], now: number): Map<number, unknown> | undefined {
    let m: Map<number, unknown> | undefined
    const lctx: ListContext = {
      template: (id, octets) => this.templates.get(ctx.session, ctx.version, ctx.domain, id, now, octets),
      count: this.count,
    }
    fields.forEach((f, i) => {
      if (!isListType(f.type) || !(f.value instanceof Uint8Array)) return
      const j = listToJson(f.type, f.value, lctx)
      if (j === undefined) this.count('list_kept_hex')
      else (m ??= new Map()).set(i, j)
    })
    return m
  }

  /** Drops expired templates and pending data (call periodically). */
  expire(now = Date.now()): void {
    this.templates.expire(now)
    this.pending.expire(now)
  }

  /** All counters: the collector's, the template store's and the pending buffer's. */
  allCounters(): Record<string, number> {
    return { ...this.counters, ...this.templates.counters, ...this.pending.counters }
  }
}

const START_MS = lookupElement(0, 152)
const END_MS = lookupElement(0, 153)

/** RFC 3954 §8 FIRST/LAST_SWITCHED (sysUpTime ms) → flowStart/EndMilliseconds, uptime wrap handled. */
function addAbsoluteTimes(fields: DecodedField[], ctx: MessageContext): void {
  let first: number | undefined
  let last: number | undefined
  let has152 = false
  let has153 = false
  for (const f of fields) {
    if (f.pen !== 0) continue
    if (f.id === 22 && typeof f.value === 'number') first = f.value
    else if (f.id === 21 && typeof f.value === 'number') last = f.value
    else if (f.id === 152) has152 = true
    else if (f.id === 153) has153 = true
  }
  const unixMs = ctx.exportTime * 1000
  if (first !== undefined && !has152 && START_MS !== undefined)
    fields.push({
      pen: 0,
      id: 152,
      name: START_MS.name,
      type: 'dateTimeMilliseconds',
      value: uptimeToUnixMs(unixMs, ctx.sysUptime, first),
    })
  if (last !== undefined && !has153 && END_MS !== undefined)
    fields.push({
      pen: 0,
      id: 153,
      name: END_MS.name,
      type: 'dateTimeMilliseconds',
      value: uptimeToUnixMs(unixMs, ctx.sysUptime, last),
    })
}
