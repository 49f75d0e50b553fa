/**
 * The metering process (RFC 7011 §2, RFC 5470 §5.2): packet batches → packet decoder → flow cache → flow
 * records on an IPFIX exporter. One instance per metering thread; the offline probe, the live service and
 * the worker threads all drive the same class.
 *
 * Time is whatever the caller says it is: packet time offline, packet time or the wall clock live. Expiry
 * runs whenever time advances (a timeout takes effect at exactly its due time); the exporter ticks
 * (template refresh, statistics, message age) whenever time crosses the next whole second.
 *
 * Settings generations (live field-group change, probe/service.ts): a new pipeline may be given the
 * previous one as `predecessor`, sharing its exporter. A decoded IP packet whose flow the predecessor still
 * holds goes to the predecessor's cache, so flows started before the change finish with the field groups
 * they started with; every other packet (new flows, ARP) goes to the new pipeline. The predecessor's flows
 * expire as time advances; the service drops it once it is empty. The two use different flow template IDs
 * (`flowTemplateIdBase`); L7 and ARP templates have the same layout in both and are shared.
 */
import type { PacketBatch } from '../capture/batch.js'
import { Anomalies } from '../decode/anomalies.js'
import { IpReassembly, type IpReassemblyOptions, type IpReassemblyStats } from '../decode/ip-reassembly.js'
import { PacketDecoder } from '../decode/packet-decoder.js'
import { DecodeResult, PacketInfo } from '../decode/packet.js'
import { EndReason, END_REASON_NAMES, type FlowFeature, type FlowView } from '../flow/feature.js'
import { ArpFields, ETHERTYPE_ARP } from '../flow/fields/arp.js'
import { CoreFields } from '../flow/fields/core.js'
import { createFieldGroups } from '../flow/fields/index.js'
import { L7Hub } from '../flow/fields/l7-hub.js'
import { isTransactionGroup, type L7Summary, type TransactionGroup } from '../flow/fields/l7-transactions.js'
import { FlowCache } from '../flow/flow-cache.js'
import { FlowRecords } from '../flow/flow-records.js'
import type { IpfixExporter } from '../ipfix/exporter.js'

export interface PipelineOptions {
  activeTimeout: number
  inactiveTimeout: number
  tcpEndLinger: number
  maxFlows: number
  /** Field groups (`--fields`), undefined for the default set. */
  fields?: string[]
  /** Bounds of IP reassembly for the L7 groups (default DEFAULT_IP_REASSEMBLY_OPTIONS). */
  ipReassembly?: IpReassemblyOptions
  /** First flow template ID (default 256; see FlowRecords). */
  flowTemplateIdBase?: number
  /** Called once per unsupported link type. */
  onWarning?: (message: string) => void
  /**
   * What the exporter's clock reads (µs) until packet time passes it (offline: the first packet's time, so
   * nothing set up before the first packet is exported at time 0; see export-setup.ts). Default 0.
   */
  startUs?: number
}

/** What the exporter asks of the metering process for the Metering Process Statistics (RFC 7011 §4.2). */
export interface MeteringHooks {
  now: () => number
  meteringStats: () => {
    ignoredPackets: number
    ignoredOctets: number
    firstIgnoredMs: number
    lastIgnoredMs: number
  }
}

/** Packet counters of the metering process. */
export interface PipelineCounters {
  packets: number
  nonIp: number
  malformed: number
  unsupported: number
  ignoredOctets: number
  firstIgnoredUs: number
  lastIgnoredUs: number
}

export class MeteringPipeline {
  readonly anomalies = new Anomalies()
  readonly decoder: PacketDecoder
  readonly cache: FlowCache
  readonly core: CoreFields
  readonly exporter: IpfixExporter
  readonly txGroups: readonly TransactionGroup<unknown>[]
  /** The flow field groups, in record order. */
  readonly features: readonly FlowFeature[]
  readonly counters: PipelineCounters = {
    packets: 0,
    nonIp: 0,
    malformed: 0,
    unsupported: 0,
    ignoredOctets: 0,
    firstIgnoredUs: 0,
    lastIgnoredUs: 0,
  }
  /** Current time in µs since the epoch (packet time offline). */
  nowUs = 0
  /** The previous settings generation whose flows run to their end (see the file comment). */
  predecessor: MeteringPipeline | undefined
  private nextTickUs = 0
  private readonly pkt = new PacketInfo()
  /** IP reassembly for the L7 groups (none without them). */
  private readonly reassembly: IpReassembly | undefined
  private readonly arp: ReturnType<ArpFields['attach']> | undefined
  private readonly warnedLinkTypes = new Set<number>()
  private readonly onWarning: ((message: string) => void) | undefined

  /** `createExporter` gets the hooks the exporter needs from this pipeline (time, metering statistics). */
  constructor(opts: PipelineOptions, createExporter: (hooks: MeteringHooks) => IpfixExporter) {
    this.onWarning = opts.onWarning
    this.decoder = new PacketDecoder(this.anomalies)
    const groups = createFieldGroups(opts.fields)
    // Flow features go to the cache; the `arp` group records ARP packets on its own (see fields/arp.ts).
    const features = groups.filter((f) => !(f instanceof ArpFields))
    this.features = features
    const arpGroup = groups.find((f): f is ArpFields => f instanceof ArpFields)
    // With L7 groups, fragmented datagrams reach them whole; the drops count in this pipeline's anomalies.
    const hub = features.find((f): f is L7Hub => f instanceof L7Hub)
    if (hub !== undefined) {
      this.reassembly = new IpReassembly(this.anomalies, opts.ipReassembly)
      hub.reassembleWith(this.reassembly)
    }
    const core = features.find((f): f is CoreFields => f instanceof CoreFields)
    if (!core) throw new Error('the core field group is missing')
    this.core = core
    const c = this.counters
    const startUs = opts.startUs ?? 0
    this.exporter = createExporter({
      now: () => (this.nowUs > startUs ? this.nowUs : startUs) / 1e6,
      meteringStats: () => ({
        ignoredPackets: c.malformed + c.unsupported,
        ignoredOctets: c.ignoredOctets,
        firstIgnoredMs: c.firstIgnoredUs / 1000,
        lastIgnoredMs: c.lastIgnoredUs / 1000,
      }),
    })
    const records = new FlowRecords(features, this.exporter, opts.flowTemplateIdBase)
    this.arp = arpGroup?.attach(this.exporter)
    // L7 groups write one record per transaction (see fields/l7-transactions.ts): the open ones of a flow
    // leave just before its last record (the L7 hub's beforeExport), so the record's transaction count
    // includes them.
    const txGroups = features.filter(isTransactionGroup)
    this.txGroups = txGroups
    for (const f of features) f.attach?.(this.exporter)
    const before = features.filter((f) => f.beforeExport !== undefined)
    const first = before[0]
    const onExpire =
      first === undefined
        ? records.write
        : before.length === 1
          ? (id: number, flow: FlowView): void => {
              first.beforeExport!(id, flow)
              records.write(id, flow)
            }
          : (id: number, flow: FlowView): void => {
              for (const f of before) f.beforeExport!(id, flow)
              records.write(id, flow)
            }
    this.cache = new FlowCache(
      {
        activeTimeout: opts.activeTimeout,
        inactiveTimeout: opts.inactiveTimeout,
        tcpEndLinger: opts.tcpEndLinger,
        maxFlows: opts.maxFlows,
      },
      features,
      onExpire,
    )
  }

  /** Meter one batch: per packet one decode into a reused PacketInfo and one cache update. */
  processBatch(batch: PacketBatch): void {
    const { buf, view, offset, caplen, origlen, tsUs, linkType, ifIndex } = batch
    const n = batch.count
    const { decoder, cache, pkt, arp } = this
    const c = this.counters
    for (let i = 0; i < n; i++) {
      const ts = tsUs[i]!
      // Compared with the field, not a local copy: the optimizer kept a local loop variable as a tagged
      // value, boxing a heap number each time the time advanced.
      if (ts > this.nowUs) {
        this.nowUs = ts
        // Timeouts are exact in packet time: a flow leaves before the first packet at or after its due
        // time is counted (a few comparisons when nothing is due).
        cache.expireDue(ts)
        this.predecessor?.advanceTo(ts)
        if (ts >= this.nextTickUs) this.tick()
      }
      c.packets++
      decoder.setTime(ts)
      const r = decoder.decodeAt(buf, view, offset[i]!, caplen[i]!, origlen[i]!, linkType[i]!, pkt)
      if (r === DecodeResult.Ip) {
        const prev = this.predecessor
        if (prev !== undefined && prev.cache.has(pkt)) prev.cache.update(pkt, ts, ifIndex[i]!)
        else cache.update(pkt, ts, ifIndex[i]!)
      } else if (r === DecodeResult.NonIp) {
        c.nonIp++
        if (arp !== undefined && pkt.etherType === ETHERTYPE_ARP)
          arp.record(pkt, offset[i]! + caplen[i]!, ts, ifIndex[i]!)
      } else {
        if (r === DecodeResult.Malformed) c.malformed++
        else this.unsupportedLinkType(linkType[i]!)
        c.ignoredOctets += origlen[i]!
        if (c.firstIgnoredUs === 0) c.firstIgnoredUs = ts
        c.lastIgnoredUs = ts
      }
    }
  }

  /**
   * Let time pass without packets (live capture on a quiet link): expire what is due and tick the exporter.
   * Time never goes back; an earlier `nowUs` is ignored.
   */
  advanceTo(nowUs: number): void {
    if (nowUs <= this.nowUs) return
    this.nowUs = nowUs
    this.cache.expireDue(nowUs)
    this.predecessor?.advanceTo(nowUs)
    if (nowUs >= this.nextTickUs) this.tick()
  }

  /** Export every flow and every open transaction (end of input, shutdown). */
  flush(reason: EndReason = EndReason.ForcedEnd): void {
    this.flushSome(reason, Infinity)
  }

  /**
   * flush in steps of at most `max` flows, so that a producer that can wait lets its outputs drain in
   * between (the offline probe): true once every flow and open transaction has left.
   */
  flushSome(reason: EndReason, max: number): boolean {
    if (this.predecessor !== undefined && !this.predecessor.flushSome(reason, max)) return false
    if (!this.cache.flushAll(reason, max)) return false
    for (const g of this.txGroups) g.finishAll()
    // Datagrams still missing fragments will not complete: counted, so every one is counted once.
    this.reassembly?.finish()
    return true
  }

  /** Change the timeouts live; flows stay in the cache. */
  setTimeouts(t: { activeTimeout: number; inactiveTimeout: number; tcpEndLinger?: number }): void {
    this.predecessor?.setTimeouts(t)
    this.cache.setTimeouts(t)
  }

  /** Records exported per end reason name (only reasons that occurred). */
  endReasons(): Record<string, number> {
    const out: Record<string, number> = {}
    this.cache.counters.exportedByReason.forEach((n, reason) => {
      if (n > 0) out[END_REASON_NAMES[reason] ?? String(reason)] = n
    })
    return out
  }

  /** What IP reassembly for the L7 groups did; undefined when no L7 group is on (there is none). */
  ipReassembly(): IpReassemblyStats | undefined {
    return this.reassembly?.stats()
  }

  /** Per L7 group: flows claimed, transactions and anomalies; undefined when no L7 group is on. */
  l7Summary(): Record<string, L7Summary> | undefined {
    if (this.txGroups.length === 0) return undefined
    return Object.fromEntries(this.txGroups.map((g) => [g.name, g.summary()]))
  }

  /** Adds the L7 groups' anomalies into `out` as `<group>.<name>` (see TransactionGroup.addAnomaliesTo). */
  addL7AnomaliesTo(out: Record<string, number>): void {
    for (const g of this.txGroups) g.addAnomaliesTo(out)
  }

  /** Tick the exporter at `nowUs` (a field: see FlowCache.packetUs). */
  private tick(): void {
    this.exporter.tick()
    this.nextTickUs = (Math.floor(this.nowUs / 1e6) + 1) * 1e6
  }

  private unsupportedLinkType(lt: number): void {
    this.counters.unsupported++
    if (!this.warnedLinkTypes.has(lt)) {
      this.warnedLinkTypes.add(lt)
      this.onWarning?.(`link type ${lt} is not supported: its packets are counted and skipped`)
    }
  }
}
