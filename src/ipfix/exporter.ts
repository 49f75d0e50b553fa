/**
 * IPFIX Exporting Process (RFC 7011): packs data records into messages of at most maxMessageSize octets
 * (§10.3.3), keeps one Sequence Number per destination session (§3.1), sends templates before data and
 * refreshes them over UDP (§8, §8.4), and sends the §4.1–§4.3 statistics options records.
 *
 * Each message body is built once and shared by all destinations; each destination gets its own 16-octet
 * header. Templates always travel in template-only messages, which do not advance the Sequence Number.
 *
 * With `rfc5610`, the enterprise elements the data templates use (not RFC 5103 reverse ones) are announced
 * in RFC 5610 §3 Information Element Type Records, sent right after the templates, every time they are sent.
 */
import { REVERSE_PEN, lookupElement, type IeDataType } from './elements.js'
import { BufferWriter, MessageBuilder, messageHeader, type RecordWriter } from './record-writer.js'
import { Template } from './template.js'
import type { Transport } from './transport.js'

export interface ExporterOptions {
  observationDomainId: number
  /** Whole IPFIX message; for UDP 1472 on a 1500-octet IPv4 link, 1452 over IPv6. */
  maxMessageSize: number
  /**
   * Longest data record (default: what a message of maxMessageSize holds). A metering worker's exporter
   * writes large messages but must fit its records to the main exporter's, which writes them again.
   */
  maxRecordLength?: number
  /** UDP: periodic template resend (RFC 6728 default 600 s). */
  templateRefreshSeconds: number
  /** UDP: also resend templates after this many data messages (0 = off). */
  templateRefreshMessages: number
  /** Period of the statistics options records (default 60 s); 0 disables them (and their templates). */
  statsIntervalSeconds: number
  /** Scope of the Exporting Process Reliability Statistics; defaults to process.pid. */
  exportingProcessId?: number
  /** Sequence Number of the first message of each session (tests of the 2^32 wrap); default 0. */
  initialSequence?: number
  /** Seconds (float): packet time offline, wall clock live. Drives Export Time, refreshes and stats. */
  now(): number
  /** RFC 5610: announce the enterprise elements of the data templates with the templates. */
  rfc5610?: boolean
  /** informationElementDescription for an announced element (omitted when undefined). */
  describeElement?(pen: number, id: number): string | undefined
  meteringStats?(): {
    ignoredPackets: number
    ignoredOctets: number
    firstIgnoredMs: number
    lastIgnoredMs: number
  }
}

export interface ExporterStats {
  /** Data messages (template-only messages are not counted here), counted once whatever the destinations. */
  messages: number
  /** Data records sent, incl. options data records. */
  records: number
  /** Octets of the data messages, incl. headers. */
  octets: number
  /** Template-only messages sent, summed over destinations. */
  templateSends: number
  /** Records dropped because they could not fit an empty message (never fragmented). */
  droppedRecords: number
}

/** Template IDs the exporter uses for its own statistics options templates (RFC 7011 §4). */
export const STATS_TEMPLATE_IDS = {
  meteringStatistics: 65533,
  exportingReliability: 65534,
  meteringReliability: 65535,
} as const

/** Options Template ID of the RFC 5610 Information Element Type Records. */
export const RFC5610_TEMPLATE_ID = 65532

// RFC 5610 §3.1-3.3 codes (IANA "IPFIX Information Element Data Types", "... Semantics", "... Units").
const DATA_TYPE_CODES: Readonly<Record<IeDataType, number>> = {
  octetArray: 0,
  unsigned8: 1,
  unsigned16: 2,
  unsigned32: 3,
  unsigned64: 4,
  signed8: 5,
  signed16: 6,
  signed32: 7,
  signed64: 8,
  float32: 9,
  float64: 10,
  boolean: 11,
  macAddress: 12,
  string: 13,
  dateTimeSeconds: 14,
  dateTimeMilliseconds: 15,
  dateTimeMicroseconds: 16,
  dateTimeNanoseconds: 17,
  ipv4Address: 18,
  ipv6Address: 19,
  basicList: 20,
  subTemplateList: 21,
  subTemplateMultiList: 22,
}
const SEMANTICS_CODES: Readonly<Record<string, number>> = {
  default: 0,
  quantity: 1,
  totalCounter: 2,
  deltaCounter: 3,
  identifier: 4,
  flags: 5,
  list: 6,
  snmpCounter: 7,
  snmpGauge: 8,
}
const UNITS_CODES: Readonly<Record<string, number>> = {
  none: 0,
  bits: 1,
  octets: 2,
  packets: 3,
  flows: 4,
  seconds: 5,
  milliseconds: 6,
  microseconds: 7,
  nanoseconds: 8,
  '4-octet words': 9,
  messages: 10,
  hops: 11,
  entries: 12,
  frames: 13,
  ports: 14,
  inferred: 15,
}

/** A partly filled message is sent once its first record is this old (seconds of now()). */
const MAX_MESSAGE_AGE = 1
/** Slots of IpfixExporter.checked (a power of 2; the flow, transaction and options templates differ in it). */
const CHECKED_SLOTS = 64
const TWO32 = 0x1_0000_0000

interface Destination {
  readonly t: Transport
  seq: number
  needTemplates: boolean
  lastTemplates: number
  messagesSinceTemplates: number
  /** Template-only messages sent to this destination. */
  templateSends: number
}

export class IpfixExporter {
  readonly stats: ExporterStats = { messages: 0, records: 0, octets: 0, templateSends: 0, droppedRecords: 0 }
  private readonly opts: ExporterOptions
  private readonly dests: Destination[]
  /** The message being packed; replaced when a transport keeps its buffer (see flush). */
  private msg: MessageBuilder
  /** Records whose maxLength exceeds the message budget are written here first and copied if they fit. */
  private readonly scratch: BufferWriter
  private readonly budget: number
  private readonly templates = new Map<number, Template>()
  private templateBodies: Uint8Array[] | undefined
  /** RFC 5610 data messages (body and record count), rebuilt with the template bodies. */
  private infoBodies: { body: Uint8Array; records: number }[] = []
  private readonly infoTemplate: Template | undefined
  private readonly statsTemplates: Template[]
  private cur: Template | undefined
  /**
   * Templates beginRecord found added, by the low bits of their ID (saves a Map lookup per record; cleared
   * by addTemplate). Several slots, not only the last template: transaction records alternate with flow
   * records, which made the one-template check look the template up on most records.
   */
  private readonly checked: (Template | undefined)[] = new Array<Template | undefined>(CHECKED_SLOTS).fill(
    undefined,
  )
  private inScratch = false
  private recordStart = 0
  private messageStart = 0
  private started = false
  private closed = false
  private lastStats = 0
  /** now() when the exporter started (its first record or tick): where its statistics begin. */
  private startedAt = 0
  private flowRecords = 0
  private readonly notSent = { flows: 0, packets: 0, octets: 0, firstMs: 0, lastMs: 0 }

  constructor(opts: ExporterOptions, destinations: Transport[]) {
    const size = opts.maxMessageSize
    if (!Number.isInteger(size) || size < 64 || size > 65535)
      throw new Error(`maxMessageSize ${size} outside 64..65535 (RFC 7011 §3.1)`)
    this.opts = opts
    this.budget = Math.min(size - 16 - 4, opts.maxRecordLength ?? Infinity)
    this.msg = new MessageBuilder(size)
    this.scratch = new BufferWriter(65535 + 3)
    this.dests = destinations.map((t) => this.destination(t))
    const ids = STATS_TEMPLATE_IDS
    this.statsTemplates = [
      Template.fromNames(
        ids.meteringStatistics,
        [
          ['observationDomainId'],
          ['exportedMessageTotalCount'],
          ['exportedFlowRecordTotalCount'],
          ['exportedOctetTotalCount'],
        ],
        1,
      ),
      Template.fromNames(
        ids.exportingReliability,
        [
          ['exportingProcessId'],
          ['notSentFlowTotalCount'],
          ['notSentPacketTotalCount'],
          ['notSentOctetTotalCount'],
          ['observationTimeMilliseconds'],
          ['observationTimeMilliseconds'],
        ],
        1,
      ),
    ]
    if (opts.meteringStats)
      this.statsTemplates.push(
        Template.fromNames(
          ids.meteringReliability,
          [
            ['observationDomainId'],
            ['ignoredPacketTotalCount'],
            ['ignoredOctetTotalCount'],
            ['observationTimeMilliseconds'],
            ['observationTimeMilliseconds'],
          ],
          1,
        ),
      )
    if (opts.statsIntervalSeconds <= 0) this.statsTemplates.length = 0
    for (const t of this.statsTemplates) this.templates.set(t.id, t)
    if (opts.rfc5610 === true)
      this.infoTemplate = Template.fromNames(
        RFC5610_TEMPLATE_ID,
        [
          ['privateEnterpriseNumber'],
          ['informationElementId'],
          ['informationElementDataType'],
          ['informationElementSemantics'],
          ['informationElementUnits'],
          // libfixbuf only learns from records that carry the range too (0..0: no range given).
          ['informationElementRangeBegin'],
          ['informationElementRangeEnd'],
          ['informationElementName'],
          ['informationElementDescription'],
        ],
        2,
      )
  }

  /** Adds (or, with a different layout on the same ID, replaces) a template; it is sent before its data. */
  addTemplate(t: Template): void {
    this.checked.fill(undefined)
    const old = this.templates.get(t.id)
    if (old === t || (old !== undefined && old.sameLayout(t) && !this.statsTemplates.includes(old))) {
      this.templates.set(t.id, t)
      return
    }
    if (old !== undefined && (this.statsTemplates.includes(old) || old === this.infoTemplate))
      throw new Error(`template id ${t.id} is reserved for the exporter's statistics options templates`)
    if (t.recordBytes.byteLength + 4 > this.budget)
      throw new Error(`template ${t.id} (${t.recordBytes.byteLength} octets) does not fit a message`)
    // Data already packed for the old layout must leave before the new definition.
    if (old !== undefined) this.flush()
    this.templates.set(t.id, t)
    this.templateBodies = undefined
    for (const d of this.dests) d.needTemplates = true
  }

  /**
   * Data records kept so far (sent, or in the message being filled; a dropped record is not counted, nor
   * RFC 5610 ones): the index the record being written gets if kept.
   */
  get recordsKept(): number {
    return this.stats.records + this.msg.records
  }

  /** The longest data record one message holds (after the message and Set headers). */
  get maxRecordLength(): number {
    return this.budget
  }

  beginRecord(t: Template, maxLength: number): RecordWriter {
    if (this.cur !== undefined) this.abandonRecord()
    this.start()
    const slot = t.id & (CHECKED_SLOTS - 1)
    if (t !== this.checked[slot]) {
      // A template with the same ID and layout as the one added serves too (two settings generations of
      // the live probe write the same L7/ARP records: probe/pipeline.ts).
      const added = this.templates.get(t.id)
      if (added !== t && (added === undefined || !added.sameLayout(t)))
        throw new Error(`template ${t.id} was not added to the exporter`)
      this.checked[slot] = t
    }
    if (maxLength > this.budget) {
      this.scratch.pos = 0
      this.scratch.overflow = false
      this.inScratch = true
      this.cur = t
      return this.scratch
    }
    if (this.msg.free(t.id) < maxLength) this.flush()
    if (this.msg.records === 0) this.messageStart = this.opts.now()
    this.msg.openSet(t.id)
    this.recordStart = this.msg.w.pos
    this.inScratch = false
    this.cur = t
    return this.msg.w
  }

  /**
   * Begins a record whose length is only known once written (strings): it is written straight into the
   * message, up to the message's end. endRecordFit() then tells whether it fitted. The message is sent
   * before the record exactly when beginRecord with the record's exact length would have sent it.
   */
  beginRecordFit(t: Template): RecordWriter {
    return this.beginRecord(t, 0)
  }

  /**
   * Ends a record begun with beginRecordFit. True: done (kept, or dropped because even an empty message
   * cannot hold it). False: it did not fit the rest of the message, which has been sent: write the record
   * again (beginRecordFit...) into the now empty message.
   */
  endRecordFit(): boolean {
    const t = this.cur
    if (t === undefined || this.inScratch || !this.msg.w.overflow || this.msg.records === 0) {
      this.endRecord()
      return true
    }
    this.abandonDirect()
    this.cur = undefined
    this.flush()
    return false
  }

  endRecord(): void {
    const t = this.cur
    if (t === undefined) return
    this.cur = undefined
    if (this.inScratch) {
      const s = this.scratch
      const len = s.pos
      if (s.overflow || len > this.budget) {
        this.drop()
        return
      }
      this.checkLength(t, len)
      if (this.msg.free(t.id) < len) this.flush()
      if (this.msg.records === 0) this.messageStart = this.opts.now()
      this.msg.openSet(t.id)
      s.buf.copy(this.msg.w.buf, this.msg.w.pos, 0, len)
      this.msg.w.pos += len
    } else {
      const w = this.msg.w
      if (w.overflow) {
        this.abandonDirect()
        this.drop()
        return
      }
      const len = w.pos - this.recordStart
      if (!this.lengthOk(t, len)) {
        this.abandonDirect()
        this.checkLength(t, len)
      }
    }
    this.msg.records++
    if (!t.isOptions) this.flowRecords++
  }

  /**
   * Accounts for flow records the caller could not export (e.g. flow cache overflow), reported in the
   * Exporting Process Reliability Statistics (RFC 7011 §4.3).
   */
  reportNotSent(flows: number, packets: number, octets: number, timeMs = this.opts.now() * 1000): void {
    const n = this.notSent
    if (n.flows === 0 && n.packets === 0) n.firstMs = timeMs
    n.flows += flows
    n.packets += packets
    n.octets += octets
    n.lastMs = timeMs
  }

  tick(): void {
    if (this.closed || this.cur !== undefined) return
    this.start()
    const now = this.opts.now()
    for (const d of this.dests) if (this.templatesDue(d, now)) this.sendTemplates(d, now)
    const every = this.opts.statsIntervalSeconds
    if (every > 0 && now - this.lastStats >= every) {
      this.lastStats = now
      this.writeStats()
    }
    if (this.msg.records > 0 && Math.abs(now - this.messageStart) >= MAX_MESSAGE_AGE) this.flush()
  }

  flush(): void {
    if (this.cur !== undefined) return
    const n = this.msg.records
    if (n === 0) {
      this.msg.reset()
      return
    }
    // The body already follows a reserved 16-octet header in the message buffer. A transport that can
    // send from a reused buffer (UDP) gets the message buffer itself; the others get one copy of header +
    // body as a single chunk (one allocation, no chunk list to gather). Once a transport keeps the buffer
    // (a queued datagram), later destinations get copies and the next message gets a new buffer.
    this.msg.closeSet()
    const w = this.msg.w
    const size = w.pos
    const now = this.opts.now()
    const exportTime = Math.floor(now)
    const odid = this.opts.observationDomainId
    let kept = false
    for (const d of this.dests) {
      if (this.templatesDue(d, now)) this.sendTemplates(d, now)
      if (kept) {
        const out = Buffer.allocUnsafe(size)
        w.buf.copy(out, 16, 16, size)
        this.sendTo(d, [messageHeader(size - 16, exportTime, d.seq, odid, out)])
      } else {
        const v = w.view
        v.setUint16(0, 10)
        v.setUint16(2, size)
        v.setUint32(4, exportTime >>> 0)
        v.setUint32(8, d.seq >>> 0)
        v.setUint32(12, odid >>> 0)
        if (d.t.sendReused !== undefined) kept = this.sendReusedTo(d, w.buf.subarray(0, size))
        else {
          const out = Buffer.allocUnsafe(size)
          w.buf.copy(out, 0, 0, size)
          this.sendTo(d, [out])
        }
      }
      d.seq = (d.seq + n) % TWO32
      d.messagesSinceTemplates++
    }
    if (kept) this.msg = new MessageBuilder(this.opts.maxMessageSize)
    this.msg.reset()
    this.stats.messages++
    this.stats.records += n
    this.stats.octets += size
  }

  async close(): Promise<void> {
    if (this.closed) return
    if (this.cur !== undefined) this.abandonRecord()
    this.start()
    this.writeStats()
    this.flush()
    const now = this.opts.now()
    for (const d of this.dests) if (d.needTemplates) this.sendTemplates(d, now)
    this.closed = true
    await Promise.all(
      this.dests.map(async (d) => {
        try {
          await d.t.close()
        } catch {
          d.t.stats.errors++
        }
      }),
    )
  }

  /**
   * Live collector change: the packed message leaves for the current destinations, then `next` replace
   * them. Each new transport is a new transport session: Sequence Number from the start and every template
   * before any data (RFC 7011 §8.1). Returns the old transports, for the caller to close once they drained.
   */
  replaceTransports(next: readonly Transport[]): Transport[] {
    if (this.closed) throw new Error('the exporter is closed')
    this.flush()
    const old = this.dests.map((d) => d.t)
    this.dests.splice(0, this.dests.length, ...next.map((t) => this.destination(t)))
    return old
  }

  /** Template-only messages sent to destination `i` (for metrics). */
  templateSendsOf(i: number): number {
    return this.dests[i]?.templateSends ?? 0
  }

  /** Sequence Number the next message to destination `i` will carry (for tests and metrics). */
  sequenceOf(i: number): number {
    return this.dests[i]?.seq ?? 0
  }

  // --- internals

  private destination(t: Transport): Destination {
    const seq0 = (this.opts.initialSequence ?? 0) >>> 0
    const d: Destination = {
      t,
      seq: seq0,
      needTemplates: true,
      lastTemplates: 0,
      messagesSinceTemplates: 0,
      templateSends: 0,
    }
    t.onNewSession(() => {
      d.seq = seq0
      d.needTemplates = true
    })
    return d
  }

  private start(): void {
    if (this.started) return
    this.started = true
    this.startedAt = this.opts.now()
    this.lastStats = this.startedAt
    this.writeStats()
  }

  private lengthOk(t: Template, len: number): boolean {
    return t.hasVariableLength ? len >= t.minRecordLength : len === t.fixedLength
  }

  private checkLength(t: Template, len: number): void {
    if (this.lengthOk(t, len)) return
    const want = t.hasVariableLength ? `at least ${t.minRecordLength}` : `${t.fixedLength}`
    throw new Error(`record for template ${t.id} is ${len} octets, expected ${want}`)
  }

  private drop(): void {
    this.stats.droppedRecords++
    this.reportNotSent(1, 0, 0)
  }

  private abandonDirect(): void {
    const w = this.msg.w
    w.pos = this.recordStart
    w.overflow = false
  }

  private abandonRecord(): void {
    if (!this.inScratch) this.abandonDirect()
    this.cur = undefined
    this.drop()
  }

  private templatesDue(d: Destination, now: number): boolean {
    if (d.needTemplates) return true
    if (d.t.periodicTemplates !== true) return false
    const n = this.opts.templateRefreshMessages
    return (
      now - d.lastTemplates >= this.opts.templateRefreshSeconds || (n > 0 && d.messagesSinceTemplates >= n)
    )
  }

  private sendTemplates(d: Destination, now: number): void {
    this.templateBodies ??= this.buildTemplateBodies()
    const sendsBefore = this.stats.templateSends
    const exportTime = Math.floor(now)
    // RFC 5610 first (its options template, then its records, which are data records and advance the
    // Sequence Number; counted as template sends), so a collector knows the elements before the templates
    // that use them: libfixbuf binds a template's elements when the template arrives.
    if (this.infoBodies.length > 0 && this.infoTemplate !== undefined) {
      const t = new MessageBuilder(this.opts.maxMessageSize)
      t.openSet(3)
      t.w.bytes(this.infoTemplate.recordBytes)
      const body = t.takeBody()
      this.sendTo(d, [messageHeader(body.byteLength, exportTime, d.seq, this.opts.observationDomainId), body])
      this.stats.templateSends++
    }
    for (const { body, records } of this.infoBodies) {
      this.sendTo(d, [messageHeader(body.byteLength, exportTime, d.seq, this.opts.observationDomainId), body])
      d.seq = (d.seq + records) % TWO32
      this.stats.templateSends++
    }
    for (const body of this.templateBodies) {
      this.sendTo(d, [messageHeader(body.byteLength, exportTime, d.seq, this.opts.observationDomainId), body])
      this.stats.templateSends++
    }
    d.needTemplates = false
    d.lastTemplates = now
    d.messagesSinceTemplates = 0
    d.templateSends += this.stats.templateSends - sendsBefore
  }

  /** Template Set(s) of all data templates, then each options template in its own Set (pmacct quirk). */
  private buildTemplateBodies(): Uint8Array[] {
    this.buildInfoBodies()
    const b = new MessageBuilder(this.opts.maxMessageSize)
    const bodies: Uint8Array[] = []
    const put = (setId: number, t: Template): void => {
      const n = t.recordBytes.byteLength
      if (b.free(setId) < n) {
        bodies.push(b.takeBody())
        b.reset()
      }
      b.openSet(setId)
      b.w.bytes(t.recordBytes)
    }
    const all = [...this.templates.values()]
    for (const t of all) if (!t.isOptions) put(2, t)
    for (const t of all)
      if (t.isOptions && t !== this.infoTemplate) {
        b.closeSet()
        put(3, t)
      }
    if (!b.isEmpty) bodies.push(b.takeBody())
    return bodies
  }

  /** RFC 5610 records for every enterprise element of the data templates; adds or drops their template. */
  private buildInfoBodies(): void {
    this.infoBodies = []
    const it = this.infoTemplate
    if (it === undefined) return
    const seen = new Set<number>()
    const defs = []
    for (const t of this.templates.values()) {
      if (t.isOptions) continue
      for (const f of t.fields) {
        if (f.pen === 0 || f.pen === REVERSE_PEN) continue
        const k = f.pen * 65536 + f.id
        if (seen.has(k)) continue
        seen.add(k)
        const def = lookupElement(f.pen, f.id)
        if (def !== undefined) defs.push(def)
      }
    }
    if (defs.length === 0) {
      this.templates.delete(it.id)
      this.checked.fill(undefined)
      return
    }
    this.templates.set(it.id, it)
    this.checked.fill(undefined)
    const b = new MessageBuilder(this.opts.maxMessageSize)
    for (const def of defs) {
      const desc = this.opts.describeElement?.(def.pen, def.id) ?? ''
      const len = 4 + 2 + 1 + 1 + 2 + 16 + 3 + Buffer.byteLength(def.name) + 3 + Buffer.byteLength(desc)
      if (b.free(it.id) < len && b.records > 0) {
        this.infoBodies.push({ records: b.records, body: b.takeBody() })
        b.reset()
      }
      b.openSet(it.id)
      const w = b.w
      w.u32(def.pen)
      w.u16(def.id)
      w.u8(DATA_TYPE_CODES[def.type])
      w.u8(SEMANTICS_CODES[def.semantics ?? 'default'] ?? 0)
      w.u16(UNITS_CODES[def.units ?? 'none'] ?? 0)
      w.u64(0)
      w.u64(0)
      w.string(def.name)
      w.string(desc)
      b.records++
    }
    if (b.records > 0) this.infoBodies.push({ records: b.records, body: b.takeBody() })
  }

  /** Sends from the message buffer; true when the transport kept it (see Transport.sendReused). */
  private sendReusedTo(d: Destination, message: Uint8Array): boolean {
    try {
      return d.t.sendReused?.(message) === true
    } catch {
      d.t.stats.errors++
      return false
    }
  }

  private sendTo(d: Destination, chunks: Uint8Array[]): void {
    try {
      d.t.send(chunks)
    } catch {
      d.t.stats.errors++
    }
  }

  /**
   * The RFC 7011 §4.2/§4.3 statistics. Their pair of observation times is the first and last ignored
   * packet or dropped record; while there is none, the interval the statistics cover (the exporter's start
   * to now), not a time 0 that decoders show as 1970.
   */
  private writeStats(): void {
    const o = this.opts
    const fromMs = Math.floor(this.startedAt * 1000)
    const nowMs = Math.floor(this.opts.now() * 1000)
    const [metering, exporting, ignored] = this.statsTemplates
    if (metering !== undefined) {
      const w = this.beginRecord(metering, metering.fixedLength)
      w.u32(o.observationDomainId)
      w.u64(this.stats.messages)
      w.u64(this.flowRecords)
      w.u64(this.stats.octets)
      this.endRecord()
    }
    if (exporting !== undefined) {
      const n = this.notSent
      const w = this.beginRecord(exporting, exporting.fixedLength)
      w.u32(o.exportingProcessId ?? process.pid)
      w.u64(n.flows)
      w.u64(n.packets)
      w.u64(n.octets)
      const none = n.flows === 0 && n.packets === 0 && n.octets === 0
      w.dateTimeMs(none ? fromMs : Math.max(0, Math.floor(n.firstMs)))
      w.dateTimeMs(none ? nowMs : Math.max(0, Math.floor(n.lastMs)))
      this.endRecord()
    }
    if (ignored !== undefined && o.meteringStats) {
      const m = o.meteringStats()
      const w = this.beginRecord(ignored, ignored.fixedLength)
      w.u32(o.observationDomainId)
      w.u64(m.ignoredPackets)
      w.u64(m.ignoredOctets)
      const none = m.ignoredPackets === 0 && m.ignoredOctets === 0
      w.dateTimeMs(none ? fromMs : Math.max(0, Math.floor(m.firstIgnoredMs)))
      w.dateTimeMs(none ? nowMs : Math.max(0, Math.floor(m.lastIgnoredMs)))
      this.endRecord()
    }
  }
}
