/**
 * How N metering workers export as ONE Exporting Process (RFC 7011 §3.1, §8): one Observation Domain, one
 * Sequence Number space per transport session, one template set.
 *
 * Each worker's MeteringPipeline writes into an ordinary IpfixExporter whose only transport is a
 * RelayTransport: it collects the worker's complete IPFIX messages (large ones, 65535 octets, no statistics
 * records, no RFC 5610 records) and hands them to the main thread in one transferred buffer per batch. Its
 * records are fitted to the main exporter's record length (maxRecordLength), which writes each again.
 *
 * On the main thread a RecordMerger takes those messages apart (RFC 7011 §3.3 Sets, §3.4 Template Records,
 * §7 variable-length encoding) and writes every record again into the main IpfixExporter, the one that owns
 * the real transports: it packs the records of all workers into MTU-sized messages with its own headers and
 * Sequence Numbers, sends the templates (and their refreshes), the RFC 5610 element records and the §4
 * statistics exactly as the single-threaded probe does. A worker's header (its time, sequence, domain) is
 * discarded.
 *
 * The application catalogue (RFC 6759 options records, src/flow/fields/app-catalogue-records.ts) is the
 * Exporting Process's, not a worker's: the workers' copies are dropped, and the merger sends it on the main
 * exporter when told the workers' groups include `app` (sendCatalogue: at the start and at every live
 * field-group change, as one thread sends it each time its group is set up) or else once a worker announces
 * its template, and again after every later round of templates the main exporter sends (refresh, new
 * session), as one thread does.
 *
 * Templates: every worker builds its templates from the same field groups, so a template ID means the same
 * layout in every worker. The merger checks it: the first worker to announce an ID defines it, and a
 * different layout for that ID from any worker is an error (the run stops with a message naming both).
 * Live (`remap`), field groups change while the service runs, and the workers switch generation one after
 * the other, so for a moment one worker may announce an ID with the new layout while another still writes
 * records of the old one. There, a different layout is no error: it gets its own ID on the main exporter
 * (one already announced with that layout, or a fresh one from REMAP_FIRST_ID up), and that worker's records
 * of the ID are written under it from then on. Collectors see every layout under a distinct ID.
 */
import { DNS_LOOKUP_PENDING } from '../../flow/fields/app.js'
import {
  APP_OPTIONS_TEMPLATE_ID,
  AppCatalogueRecords,
  appCatalogueTemplate,
  ENGINE_PANA_L7,
} from '../../flow/fields/app-catalogue-records.js'
import { registerEnterpriseElements } from '../../ipfix/enterprise/flowtel.js'
import { IpfixExporter } from '../../ipfix/exporter.js'
import { Template, type FieldSpec } from '../../ipfix/template.js'
import type { Transport, TransportStats } from '../../ipfix/transport.js'
import { DnsShareResolver, type DnsShareReport, type PendingLookup } from './dns-answer-share.js'

const VARLEN = 65535
/** applicationId (RFC 6759), the field a DNS answer cache lookup resolves (see dns-answer-share.ts). */
const APPLICATION_ID = 95

/** First template ID the merger hands out for a layout whose worker ID is taken (above every worker's IDs). */
export const REMAP_FIRST_ID = 4096

/** The worker-side transport: keeps the messages until take() hands them over. */
export class RelayTransport implements Transport {
  readonly name = 'relay'
  readonly stats: TransportStats = { messages: 0, octets: 0, errors: 0, dropped: 0 }
  private chunks: Uint8Array[] = []
  private size = 0

  open(): Promise<void> {
    return Promise.resolve()
  }
  send(message: Uint8Array[]): void {
    for (const c of message) {
      // The exporter reuses its message buffer: copy now.
      this.chunks.push(Uint8Array.from(c))
      this.size += c.byteLength
    }
    this.stats.messages++
  }
  onNewSession(): void {
    // One session for the worker's lifetime.
  }
  close(): Promise<void> {
    return Promise.resolve()
  }

  /** The messages sent since the last take(), concatenated into one fresh (transferable) buffer. */
  take(): ArrayBuffer | undefined {
    if (this.size === 0) return undefined
    const out = new Uint8Array(this.size)
    let p = 0
    for (const c of this.chunks) {
      out.set(c, p)
      p += c.byteLength
    }
    this.stats.octets += this.size
    this.chunks = []
    this.size = 0
    return out.buffer
  }
}

/** Options of a worker's exporter: large messages, no statistics, no RFC 5610 (the main exporter's jobs). */
export const WORKER_EXPORTER_OPTIONS = {
  observationDomainId: 0,
  maxMessageSize: 65535,
  templateRefreshSeconds: 1e9,
  templateRefreshMessages: 0,
  statsIntervalSeconds: 0,
  exportingProcessId: 0,
} as const

/** Length of the record at p for template t (fixed, or walking its variable-length fields), or -1. */
function recordLength(t: Template, v: DataView, p: number, end: number): number {
  if (!t.hasVariableLength) return p + t.fixedLength <= end ? t.fixedLength : -1
  let q = p
  for (const f of t.fields) {
    if (f.length !== VARLEN) {
      q += f.length
      continue
    }
    if (q >= end) return -1
    let n = v.getUint8(q)
    q += 1
    if (n === 255) {
      if (q + 2 > end) return -1
      n = v.getUint16(q)
      q += 2
    }
    q += n
  }
  return q <= end ? q - p : -1
}

/** Offset from the record's start of field `index` of template t (the record is whole: recordLength). */
function fieldOffset(t: Template, v: DataView, p: number, index: number): number {
  let q = p
  for (let i = 0; i < index; i++) {
    const f = t.fields[i]!
    if (f.length !== VARLEN) q += f.length
    else {
      const n = v.getUint8(q)
      q += n === 255 ? 3 + v.getUint16(q + 1) : 1 + n
    }
  }
  return q - p
}

const CATALOGUE_TEMPLATE = appCatalogueTemplate()

/** True when t is the application catalogue's options template (its ID and layout). */
function isCatalogueTemplate(t: Template): boolean {
  return t.id === APP_OPTIONS_TEMPLATE_ID && t.scopeCount === 1 && t.sameLayout(CATALOGUE_TEMPLATE)
}

/** One worker's relayed messages waiting for the answers of their DNS answer cache lookups. */
interface HeldOutput {
  bytes: Uint8Array | undefined
  lookups: PendingLookup[]
}

/** The main-thread side: re-frames the workers' records into the one real exporter. */
export class RecordMerger {
  /** The main exporter's templates by ID, and the worker that first announced each. */
  private readonly templates = new Map<number, { t: Template; worker: number }>()
  /** Remap mode: the main template for each worker's template ID (key worker · 65536 + id). */
  private readonly byWorker = new Map<number, Template>()
  private nextId = REMAP_FIRST_ID
  /** The workers' one DNS answer cache (see dns-answer-share.ts), and what waits for its answers. */
  private readonly dns: DnsShareResolver | undefined
  private readonly held: HeldOutput[][]
  /**
   * Per worker: how many of the lookups of its first held output are known answered (an answer is never
   * taken back), so each check resumes where the last one stopped instead of looking at them all again.
   */
  private readonly heldAnswered: number[]
  /** Tests only: lookups of held outputs looked at, plus one look per output checked. */
  heldSteps = 0
  /** Per worker: data records taken apart so far (matched with PendingLookup.recordIndex). */
  private readonly recordsSeen: number[]
  /** Per template ID: the index of its applicationId field (-1: none). */
  private readonly appIdField = new Map<number, number>()
  /** The catalogue's options records on the main exporter, once a worker has announced their template. */
  private catalogue: AppCatalogueRecords | undefined
  /** The catalogue's template on the main exporter (defined with `catalogue`). */
  private catalogueTemplate: Template | undefined
  /** While a worker's messages are written: its lookups, and the next one to read. */
  private lookups: PendingLookup[] = []
  private nextLookup = 0

  /**
   * `workers`: how many workers relay (needed when their records may wait for a DNS answer cache lookup,
   * see acceptShared).
   */
  constructor(
    private readonly exporter: IpfixExporter,
    private readonly opts: { remap?: boolean; workers?: number } = {},
  ) {
    // The workers registered the Flowmon and Flowtel elements of their templates in their own threads: this
    // one needs them too, for the RFC 5610 records of the main exporter (and the names of JSON lines).
    registerEnterpriseElements()
    const n = opts.workers ?? 0
    this.dns = n > 0 ? new DnsShareResolver(n) : undefined
    this.held = Array.from({ length: n }, () => [])
    this.heldAnswered = new Array<number>(n).fill(0)
    this.recordsSeen = new Array<number>(Math.max(n, 64)).fill(0)
  }

  /** Records (relayed messages) held back until DNS answer cache lookups are answered. */
  get waiting(): number {
    return this.held.reduce((n, h) => n + h.length, 0)
  }

  /**
   * Take in what one worker relayed after a slot: its messages (if any), what its DNS answer cache did and
   * the time it has metered up to. Its records are written once every lookup they wait for is answered,
   * which may take until the other workers have metered up to the same time (their next reports).
   */
  acceptShared(
    worker: number,
    bytes: Uint8Array | undefined,
    report: DnsShareReport | undefined,
    progressUs: number,
  ): void {
    const dns = this.dns
    if (dns === undefined) {
      if (bytes !== undefined) this.accept(worker, bytes)
      return
    }
    const lookups = dns.accept(worker, report, progressUs)
    if (bytes !== undefined || lookups.length > 0) this.held[worker]?.push({ bytes, lookups })
    dns.settle()
    for (let w = 0; w < this.held.length; w++) {
      const queue = this.held[w]!
      while (queue.length > 0 && this.answered(w, queue[0]!)) {
        const out = queue.shift()!
        this.lookups = out.lookups
        this.nextLookup = 0
        try {
          if (out.bytes !== undefined) this.accept(w, out.bytes)
        } finally {
          this.lookups = []
        }
      }
    }
  }

  /** Whether every lookup of `out`, the first output worker `w` holds, is answered. */
  private answered(w: number, out: HeldOutput): boolean {
    const lookups = out.lookups
    let i = this.heldAnswered[w]!
    this.heldSteps++
    while (i < lookups.length && lookups[i]!.entryId !== undefined) {
      this.heldSteps++
      i++
    }
    // The next output starts from its first lookup.
    this.heldAnswered[w] = i < lookups.length ? i : 0
    return i === lookups.length
  }

  /** Template IDs defined so far (for tests). */
  get templateIds(): number[] {
    return [...this.templates.keys()].sort((a, b) => a - b)
  }

  /** Take in the concatenated messages one worker relayed. Throws on a malformed or inconsistent stream. */
  accept(worker: number, bytes: Uint8Array): void {
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    for (let m = 0; m + 16 <= bytes.byteLength;) {
      const len = v.getUint16(m + 2)
      if (v.getUint16(m) !== 10 || len < 16 || m + len > bytes.byteLength)
        throw new Error(`worker ${worker} relayed a malformed IPFIX message at octet ${m}`)
      this.message(worker, v, m + 16, m + len)
      m += len
    }
    // The main exporter sent its templates again (refresh, new session): the catalogue follows them.
    this.catalogue?.followTemplates()
  }

  private message(worker: number, v: DataView, p: number, end: number): void {
    while (p + 4 <= end) {
      const setId = v.getUint16(p)
      const setLen = v.getUint16(p + 2)
      if (setLen < 4 || p + setLen > end) throw new Error(`worker ${worker} relayed a malformed Set`)
      const setEnd = p + setLen
      if (setId === 2 || setId === 3) this.templateSet(worker, v, setId === 3, p + 4, setEnd)
      else if (setId >= 256) this.dataSet(worker, setId, v, p + 4, setEnd)
      p = setEnd
    }
  }

  private templateSet(worker: number, v: DataView, options: boolean, p: number, end: number): void {
    const head = options ? 6 : 4
    while (p + head <= end) {
      const id = v.getUint16(p)
      const count = v.getUint16(p + 2)
      const scope = options ? v.getUint16(p + 4) : 0
      p += head
      const fields: FieldSpec[] = []
      for (let i = 0; i < count; i++) {
        if (p + 4 > end) throw new Error(`worker ${worker} relayed a truncated template ${id}`)
        const raw = v.getUint16(p)
        const length = v.getUint16(p + 2)
        p += 4
        let pen = 0
        if ((raw & 0x8000) !== 0) {
          if (p + 4 > end) throw new Error(`worker ${worker} relayed a truncated template ${id}`)
          pen = v.getUint32(p)
          p += 4
        }
        fields.push({ id: raw & 0x7fff, pen, length })
      }
      this.define(worker, new Template(id, fields, scope))
    }
  }

  private define(worker: number, t: Template): void {
    const known = this.templates.get(t.id)
    if (this.opts.remap === true) {
      let main = known?.t
      if (main === undefined) {
        this.templates.set(t.id, { t, worker })
        this.exporter.addTemplate(t)
        this.startCatalogue(t)
        main = t
      } else if (!main.sameLayout(t)) {
        main = [...this.templates.values()].find((k) => k.t.sameLayout(t))?.t
        if (main === undefined) {
          if (this.nextId > 65535) throw new Error('record merger: no template ID left')
          main = new Template(this.nextId++, t.fields, t.scopeCount)
          this.templates.set(main.id, { t: main, worker })
          this.exporter.addTemplate(main)
        }
      }
      this.byWorker.set(worker * 65536 + t.id, main)
      return
    }
    if (known !== undefined) {
      if (!known.t.sameLayout(t))
        throw new Error(
          `template ${t.id} differs between metering workers ${known.worker} and ${worker}: ` +
            'the workers must use the same field groups',
        )
      return
    }
    this.templates.set(t.id, { t, worker })
    this.exporter.addTemplate(t)
    this.startCatalogue(t)
  }

  /** The catalogue's template `t` is announced: send the catalogue on the main exporter. */
  private startCatalogue(t: Template): void {
    if (this.catalogue !== undefined || !isCatalogueTemplate(t)) return
    this.catalogueTemplate = t
    this.catalogue = new AppCatalogueRecords(this.exporter, t)
    this.catalogue.start(false)
  }

  /**
   * Call after anything that may have made the main exporter send its templates (accept does it, the
   * probe's ticks too): the catalogue follows every round of templates, as in one thread.
   */
  followTemplates(): void {
    this.catalogue?.followTemplates()
  }

  /**
   * The workers' field groups include `app` (at the start, or after a live field-group change): send the
   * catalogue now, before their records, as the one-thread probe does each time its group is set up
   * (otherwise it starts when a worker first announces its template, and the workers' copies are dropped).
   * A new sender each time, as a new group makes: it follows the rounds of templates after this one.
   */
  sendCatalogue(): void {
    let t = this.catalogueTemplate
    if (t === undefined) {
      t = appCatalogueTemplate()
      this.templates.set(t.id, { t, worker: -1 })
      this.exporter.addTemplate(t)
      this.catalogueTemplate = t
    }
    this.catalogue = new AppCatalogueRecords(this.exporter, t)
    this.catalogue.start(false)
  }

  private dataSet(worker: number, id: number, v: DataView, p: number, end: number): void {
    const t = this.opts.remap === true ? this.byWorker.get(worker * 65536 + id) : this.templates.get(id)?.t
    if (t === undefined) throw new Error(`worker ${worker} relayed data for unknown template ${id}`)
    // The catalogue is sent by this exporter itself (startCatalogue), not once per worker.
    const skip = this.catalogue !== undefined && isCatalogueTemplate(t)
    const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
    let appField = this.appIdField.get(t.id)
    if (appField === undefined) {
      appField = t.fields.findIndex((f) => f.id === APPLICATION_ID && f.pen === 0 && f.length === 4)
      this.appIdField.set(t.id, appField)
    }
    // Set padding (RFC 7011 §3.3.1) is shorter than the smallest record.
    while (end - p >= Math.max(1, t.minRecordLength)) {
      const len = recordLength(t, v, p, end)
      if (len < 0) throw new Error(`worker ${worker} relayed a truncated record of template ${id}`)
      const index = this.recordsSeen[worker]!
      this.recordsSeen[worker] = index + 1
      if (skip) {
        p += len
        continue
      }
      if (appField >= 0) this.resolveApplicationId(worker, index, v, p + fieldOffset(t, v, p, appField))
      const w = this.exporter.beginRecord(t, len)
      w.bytes(bytes.subarray(p, p + len))
      this.exporter.endRecord()
      p += len
    }
  }

  /**
   * The applicationId at `at` of the worker's data record number `index`: one waiting for the DNS answer
   * cache (DNS_LOOKUP_PENDING) gets the entry the cache named, else what the worker wrote under the flag.
   */
  private resolveApplicationId(worker: number, index: number, v: DataView, at: number): void {
    const id = v.getUint32(at)
    if ((id & DNS_LOOKUP_PENDING) === 0) return
    // Lookups of records the worker's exporter dropped (too long) come before this one's.
    let l = this.lookups[this.nextLookup]
    while (l !== undefined && l.recordIndex < index) l = this.lookups[++this.nextLookup]
    if (l === undefined || l.recordIndex !== index || l.entryId === undefined)
      throw new Error(`worker ${worker} relayed record ${index} waiting for a DNS lookup it did not report`)
    this.nextLookup++
    const entry = l.entryId
    v.setUint32(
      at,
      entry >= 0 ? ((ENGINE_PANA_L7 << 24) | (entry & 0xffffff)) >>> 0 : id & ~DNS_LOOKUP_PENDING,
    )
  }
}
