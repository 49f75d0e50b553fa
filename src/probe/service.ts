/**
 * The live probe service (issue 5): live capture on interfaces → metering pipeline → one IPFIX exporter →
 * a transport per collector, run all day and reconfigured live through the TelemetryControl seam (REST API,
 * SIGHUP reload of the config file).
 *
 * Settings are applied whole or not at all (`applySettings`). A top-level key the document leaves out keeps
 * its running value (so a PUT may carry only what changes); a key given replaces the whole value. Everything that can fail (schema, interfaces,
 * opening new transports and captures) happens before anything running is touched. What each change does:
 *   - timeouts: the flow cache keeps its flows; the new timeouts apply to them at once (pipeline.setTimeouts);
 *   - collectors, protocol, transport, TLS, source address, observation domain: new transports are opened;
 *     the message being packed leaves on the old ones, which then close; every new transport is a new
 *     transport session, so it gets all templates before any data and Sequence Numbers from 0 (RFC 7011
 *     §8.1, §10.3.2). No flow record is lost or duplicated: each record leaves once, on the old or the new;
 *   - field groups: a new settings generation (pipeline.ts). Flows already in the cache finish in the previous
 *     generation with the groups they started with (their records, active-timeout ones included, use the
 *     previous generation's templates); the first record with the new groups is the first flow seen after
 *     the change. The previous generation is dropped when it is empty, or at the latest one active timeout
 *     after the change, when what is left in it is exported with flowEndReason forcedEnd (a flow still
 *     running then continues in the new generation as a new flow). A second field change while the previous
 *     generation still drains ends that generation first (forcedEnd): at most two are alive;
 *   - interfaces: removed ones are closed, added ones opened (they must have an IP address);
 *   - capture options (promiscuous, snaplen, buffer, filter): every capture is reopened with them (packets
 *     in flight during the reopen are not seen);
 *   - mtu, workers, api: rejected with an error naming the key: they need a restart of the service.
 *
 * Workers (`workers: N`, N > 1): the metering runs in N worker threads (workers/live-workers.ts): capture
 * batches are hashed to them by flow key, their records go through the one exporter above. Every change
 * above applies the same way in each worker (timeouts in its cache, field groups as a generation in each
 * worker, which ends its previous generation by itself when empty or at the deadline); status sums the
 * workers' latest counters.
 * Each successful apply increments the settings generation shown in status.
 *
 * Time: packet time drives expiry; on quiet links a 1 s timer advances to the wall clock less 1 s
 * (live-clock.ts). stop() first drains the captures (every packet the kernel captured before the stop is
 * metered: a connection made just before SIGTERM is not lost), then exports every flow (forcedEnd), closes the
 * exporter (last messages and statistics sent) and closes the captures.
 *
 * A failure of the metering itself (a worker thread dies, the pipeline throws) is not one capture's failure:
 * the service logs it, stops by itself and resolves `failed`, so the command exits non-zero and a service
 * manager restarts the probe, instead of a probe that runs on and meters nothing.
 */
import type { PacketBatch } from '../capture/batch.js'
import type { CaptureSettings, ProbeSettings } from '../config/settings.js'
import {
  addIpReassemblyStats,
  emptyIpReassemblyStats,
  type IpReassemblyStats,
} from '../decode/ip-reassembly.js'
import { EndReason, END_REASON_NAMES } from '../flow/feature.js'
import { DEFAULT_CACHE_OPTIONS } from '../flow/flow-cache.js'
import { describeElement } from '../ipfix/enterprise/flowtel.js'
import { IpfixExporter } from '../ipfix/exporter.js'
import type { Transport } from '../ipfix/transport.js'
import { volumeRatio, type ProbeStatus } from '../metrics/status.js'
import type { ApplyResult, DebugCaptureState, TelemetryControl, ValidateResult } from './control.js'
import { LiveClock } from './live-clock.js'
import { MeteringPipeline, type PipelineOptions } from './pipeline.js'
import { LiveWorkers } from './workers/live-workers.js'
import { addCounts } from '../util/counts.js'

/** Per-interface capture figures (the shape of wt/capture's interfaceStats()). */
export interface CaptureInterfaceStats {
  name: string
  ifIndex: number
  packets: number
  bytes: number
  kernelDrops: number
  ifDrops: number
}

/** What the service needs of the live capture of one interface (capture/live-source.ts gives it). */
export interface ServiceCapture {
  /** Batches until closed; the batch is reused, so the service finishes with it before the next. */
  batches(): AsyncIterable<PacketBatch>
  interfaceStats(): CaptureInterfaceStats[]
  /**
   * Optional: end the capture without losing what the kernel already holds (the batches keep coming until
   * that is delivered, then the iteration ends and the capture is closed). Used at stop and when an interface
   * is removed, so a packet captured before the stop is metered.
   */
  drain?(): Promise<void>
  close(): Promise<void>
}

/** The debug capture of the export traffic (probe/debug-capture.ts), as the service drives it. */
export interface ExportRecorder {
  /** Wrap a transport so what it sends can be recorded. */
  tap(t: Transport): Transport
  start(opts: { maxBytes?: number; maxSeconds?: number }): DebugCaptureState
  stop(): DebugCaptureState
  state(): DebugCaptureState
  pcap(): Uint8Array
}

/** Everything outside the metering the service uses; service-deps.ts has the real ones, tests fakes. */
export interface ServiceDeps {
  /** Schema validation with defaults filled in; errors name the key. */
  validateSettings(doc: unknown): { ok: true; settings: ProbeSettings } | { ok: false; errors: string[] }
  /** Throws an Error naming every interface that cannot be monitored (missing, no IP address). */
  checkInterfaces(names: readonly string[]): void
  openCapture(name: string, capture: CaptureSettings): Promise<ServiceCapture>
  /** One transport (not yet open) for one collector, by protocol, transport and source address. */
  createTransport(collector: string, settings: ProbeSettings): Transport
  /** The observation domain when the settings leave it unset (distinct per HA node). */
  observationDomain(settings: ProbeSettings): number
  /** Validate: ICMP echo to the host of `address`. */
  ping(address: string): Promise<ValidateResult>
  recorder?: ExportRecorder
  /** Wall clock in µs (default Date.now() · 1000). */
  wallUs?: () => number
  log?: (message: string) => void
}

export interface ServiceOptions {
  /** Seconds between wall-clock advances on quiet links (default 1). */
  tickSeconds?: number
  tcpEndLinger?: number
  maxFlows?: number
  templateRefreshSeconds?: number
  statsIntervalSeconds?: number
  /** Tests only: make one metering worker throw at a ring slot (see WorkerPoolOptions.fault). */
  meteringFault?: { worker: number; slot: number }
}

/**
 * Flow template IDs of the two settings generations that can be alive at once (see FlowRecords): 256-267
 * and 296-307, 320-331 and 360-371.
 */
const TEMPLATE_BASES = [256, 320] as const

/** Keys whose change needs a restart of the service. */
const RESTART_KEYS = ['mtu', 'workers', 'api'] as const

interface CaptureEntry {
  readonly name: string
  readonly capture: ServiceCapture
  readonly done: Promise<void>
  error?: string
}

interface CollectorEntry {
  readonly collector: string
  readonly transport: string
  readonly t: Transport
}

/** Figures of generations and interfaces that are gone, so totals only grow. */
interface RetiredTotals {
  packets: number
  flowsCreated: number
  byReason: number[]
  anomalies: Map<string, number>
  ipReassembly: IpReassemblyStats
  l7Anomalies: Record<string, number>
  monitoredBytes: number
  telemetryBytes: number
  ignoredPackets: number
  ignoredOctets: number
}

/** ProbeStatus (metrics/status.ts) plus packets metered and field-group generations alive (2 while one drains). */
export type ServiceStatus = ProbeStatus & { packets: number; generationsAlive: number }

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

/** The document with the top-level keys it leaves out taken from the running settings. */
function withRunning(doc: unknown, running: ProbeSettings): unknown {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return doc
  const base: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(running)) if (v !== undefined) base[k] = structuredClone(v)
  return { ...base, ...(doc as Record<string, unknown>) }
}

export class ProbeService implements TelemetryControl {
  private settings: ProbeSettings | undefined
  private generation = 0
  private pipeline: MeteringPipeline | undefined
  /** The metering threads when `workers` > 1 (then `pipeline` stays undefined). */
  private workers: LiveWorkers | undefined
  private exporter: IpfixExporter | undefined
  private readonly exporterOpts: { observationDomainId: number } = { observationDomainId: 0 }
  /** Derived observation domains by source address (see domainOf). */
  private readonly derivedDomains = new Map<string, number>()
  private collectors: CollectorEntry[] = []
  private readonly captures = new Map<string, CaptureEntry>()
  private templateBase = 0
  /** When the draining generation must be ended at the latest (µs, packet/wall time). */
  private drainDeadlineUs = 0
  private timer: NodeJS.Timeout | undefined
  private readonly clock: LiveClock
  private startedMs = 0
  private stopping: Promise<void> | undefined
  /** Serialises applySettings and stop. */
  private queue: Promise<unknown> = Promise.resolve()
  private readonly retired: RetiredTotals = {
    packets: 0,
    flowsCreated: 0,
    byReason: [0, 0, 0, 0, 0, 0],
    anomalies: new Map(),
    ipReassembly: emptyIpReassemblyStats(),
    l7Anomalies: {},
    monitoredBytes: 0,
    telemetryBytes: 0,
    ignoredPackets: 0,
    ignoredOctets: 0,
  }
  private readonly log: (message: string) => void
  private fatalError: Error | undefined
  private reportFatal: (err: Error) => void = () => undefined
  /**
   * Resolves (never rejects) with the error when metering itself fails: a metering worker thread died or the
   * pipeline threw. The service then stops on its own (what the workers still hold is lost, the rest is
   * flushed); the caller should exit non-zero so that a service manager restarts the probe.
   */
  readonly failed: Promise<Error> = new Promise<Error>((resolve) => {
    this.reportFatal = resolve
  })

  constructor(
    private readonly deps: ServiceDeps,
    private readonly opts: ServiceOptions = {},
  ) {
    this.clock = new LiveClock(deps.wallUs)
    this.log = deps.log ?? ((m) => process.stderr.write(`flowtel: ${m}\n`))
  }

  get running(): boolean {
    return this.metering && this.stopping === undefined
  }

  /** Whether metering was started (one pipeline or the workers). */
  private get metering(): boolean {
    return this.pipeline !== undefined || this.workers !== undefined
  }

  /** Current metering time, µs. */
  private nowUs(): number {
    return this.pipeline?.nowUs ?? this.workers?.nowUs ?? this.clock.nowUs()
  }

  /** Validate `doc`, open captures and transports, and start metering. Throws with the errors. */
  async start(doc: unknown): Promise<void> {
    if (this.metering) throw new Error('the probe service is already running')
    const v = this.deps.validateSettings(doc)
    if (!v.ok) throw new Error(`invalid settings:\n  ${v.errors.join('\n  ')}`)
    const s = v.settings
    if (s.collectors.length === 0) throw new Error('collectors: give at least one collector')
    if (s.interfaces.length === 0) throw new Error('interfaces: give at least one interface to monitor')
    this.deps.checkInterfaces(s.interfaces)
    const collectors = await this.openCollectors(s)
    this.exporterOpts.observationDomainId = this.domainOf(s)
    const domain = this.exporterOpts
    const exporter = new IpfixExporter(
      {
        // Read per message, so a change applies to the new transport sessions (the exporter keeps this object).
        get observationDomainId(): number {
          return domain.observationDomainId
        },
        // The budget of the larger (IPv6) headers whatever the collectors: a collector change to an IPv6
        // address never needs a new exporter.
        maxMessageSize: s.mtu - 48,
        templateRefreshSeconds: this.opts.templateRefreshSeconds ?? 600,
        templateRefreshMessages: 0,
        statsIntervalSeconds: this.opts.statsIntervalSeconds ?? 60,
        rfc5610: true,
        describeElement,
        now: () => this.nowUs() / 1e6,
        meteringStats: () => this.meteringStats(),
      },
      collectors.map((c) => c.t),
    )
    this.exporter = exporter
    this.collectors = collectors
    this.settings = s
    if (s.workers > 1)
      this.workers = new LiveWorkers(exporter, {
        workers: s.workers,
        pipeline: this.pipelineOptions(s),
        startUs: this.clock.nowUs() - 1_000_000,
        onWarning: (m) => this.log(`warning: ${m}`),
        ...(this.opts.meteringFault !== undefined ? { fault: this.opts.meteringFault } : {}),
      })
    else {
      this.pipeline = this.newPipeline(s, undefined)
      this.pipeline.nowUs = this.clock.nowUs() - 1_000_000
    }
    this.startedMs = Date.now()
    try {
      for (const name of s.interfaces) await this.openInterface(name, s.capture)
    } catch (err) {
      await this.stop()
      throw err
    }
    const every = (this.opts.tickSeconds ?? 1) * 1000
    this.timer = setInterval(() => this.tick(), every)
    this.log(
      `probe: monitoring ${s.interfaces.join(', ')}; exporting ${s.exportProtocol}/${s.transport} to ` +
        `${s.collectors.join(', ')} (observation domain ${this.exporterOpts.observationDomainId})` +
        (s.workers > 1 ? `; metering on ${s.workers} worker threads` : ''),
    )
  }

  /** Resolves once the service stopped (stop() called or a fatal error). */
  async stop(): Promise<void> {
    this.stopping ??= this.enqueue(() => this.shutdown())
    return this.stopping
  }

  getSettings(): ProbeSettings {
    if (this.settings === undefined) throw new Error('the probe service is not running')
    return structuredClone(this.settings)
  }

  applySettings(next: unknown): Promise<ApplyResult> {
    return this.enqueue(() => this.apply(next))
  }

  validate(address: string): Promise<ValidateResult> {
    return this.deps.ping(address)
  }

  status(): ServiceStatus {
    const p = this.pipeline
    const gens = p === undefined ? [] : p.predecessor !== undefined ? [p, p.predecessor] : [p]
    const r = this.retired
    const byReason = [...r.byReason]
    let created = r.flowsCreated
    let active = 0
    let packets = r.packets
    const anomalies = new Map(r.anomalies)
    const ipReassembly = { ...r.ipReassembly }
    const l7Anomalies = { ...r.l7Anomalies }
    for (const g of gens) {
      const ra = g.ipReassembly()
      if (ra !== undefined) addIpReassemblyStats(ipReassembly, ra)
      g.addL7AnomaliesTo(l7Anomalies)
      created += g.cache.counters.flowsCreated
      active += g.cache.size
      packets += g.counters.packets
      g.cache.counters.exportedByReason.forEach((n, i) => (byReason[i] = (byReason[i] ?? 0) + n))
      for (const [k, v] of Object.entries(g.anomalies.toObject()))
        anomalies.set(k, (anomalies.get(k) ?? 0) + v)
    }
    let generationsAlive = gens.length
    if (this.workers !== undefined) {
      const w = this.workers.totals()
      created += w.flowsCreated
      active += w.activeFlows
      packets += w.packets
      w.exportedByReason.forEach((n, i) => (byReason[i] = (byReason[i] ?? 0) + n))
      for (const [k, v] of Object.entries(w.anomalies)) anomalies.set(k, (anomalies.get(k) ?? 0) + v)
      if (w.ipReassembly !== undefined) addIpReassemblyStats(ipReassembly, w.ipReassembly)
      addCounts(l7Anomalies, w.l7Anomalies)
      generationsAlive = w.generationsAlive
    }
    const exportedByEndReason: Record<string, number> = {}
    byReason.forEach((n, i) => {
      if (n > 0) exportedByEndReason[END_REASON_NAMES[i] ?? String(i)] = n
    })
    const interfaces: CaptureInterfaceStats[] = []
    for (const c of this.captures.values())
      for (const i of c.capture.interfaceStats()) {
        const { name, ifIndex, packets, bytes, kernelDrops, ifDrops } = i
        interfaces.push({ name, ifIndex, packets, bytes, kernelDrops, ifDrops })
      }
    const collectors = this.collectors.map((c, i) => ({
      collector: c.collector,
      transport: c.transport,
      messages: c.t.stats.messages,
      bytes: c.t.stats.octets,
      errors: c.t.stats.errors,
      dropped: c.t.stats.dropped,
      templateSends: this.exporter?.templateSendsOf(i) ?? 0,
    }))
    const monitoredBytes = r.monitoredBytes + interfaces.reduce((n, i) => n + i.bytes, 0)
    const telemetryBytes = r.telemetryBytes + collectors.reduce((n, c) => n + c.bytes, 0)
    return {
      uptimeSeconds: this.startedMs === 0 ? 0 : (Date.now() - this.startedMs) / 1000,
      settingsGeneration: this.generation,
      interfaces,
      flows: { active, created, exportedByEndReason },
      anomalies: Object.fromEntries(anomalies),
      ipReassembly,
      l7Anomalies,
      collectors,
      recordsExported: this.exporter?.stats.records ?? 0,
      volume: {
        monitoredBytes,
        telemetryBytes,
        ratio: volumeRatio(monitoredBytes, telemetryBytes),
      },
      packets,
      generationsAlive,
    }
  }

  startDebugCapture(opts: { maxBytes?: number; maxSeconds?: number }): DebugCaptureState {
    return this.recorder().start(opts)
  }

  stopDebugCapture(): DebugCaptureState {
    return this.recorder().stop()
  }

  debugCaptureState(): DebugCaptureState {
    return this.recorder().state()
  }

  debugCapturePcap(): Uint8Array {
    return this.recorder().pcap()
  }

  // --- internals

  private recorder(): ExportRecorder {
    const r = this.deps.recorder
    if (r === undefined) throw new Error('the debug capture is not available in this service')
    return r
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => undefined)
    return run
  }

  /**
   * The observation domain for `s`: configured, or derived once per source address and then kept, so a
   * settings change that does not touch the domain (a route added later, say) never moves the export to a
   * new domain mid-stream.
   */
  private domainOf(s: ProbeSettings): number {
    if (s.observationDomainId !== undefined) return s.observationDomainId
    const cached = this.derivedDomains.get(s.sourceAddress)
    if (cached !== undefined) return cached
    const id = this.deps.observationDomain(s)
    this.derivedDomains.set(s.sourceAddress, id)
    return id
  }

  /** Metering options of settings `s` for the current generation (per worker: its share of maxFlows). */
  private pipelineOptions(s: ProbeSettings): Omit<PipelineOptions, 'onWarning'> {
    const maxFlows = this.opts.maxFlows ?? DEFAULT_CACHE_OPTIONS.maxFlows
    return {
      activeTimeout: s.activeTimeout,
      inactiveTimeout: s.inactiveTimeout,
      tcpEndLinger: this.opts.tcpEndLinger ?? DEFAULT_CACHE_OPTIONS.tcpEndLinger,
      maxFlows: s.workers > 1 ? Math.max(1, Math.ceil(maxFlows / s.workers)) : maxFlows,
      fields: s.fields,
      flowTemplateIdBase: TEMPLATE_BASES[this.templateBase]!,
    }
  }

  private newPipeline(s: ProbeSettings, predecessor: MeteringPipeline | undefined): MeteringPipeline {
    const exporter = this.exporter
    if (exporter === undefined) throw new Error('no exporter')
    const p = new MeteringPipeline(
      { ...this.pipelineOptions(s), onWarning: (m) => this.log(`warning: ${m}`) },
      () => exporter,
    )
    p.predecessor = predecessor
    if (predecessor !== undefined) p.nowUs = predecessor.nowUs
    return p
  }

  /** Open one transport per collector; on any failure close those opened and throw naming the collector. */
  private async openCollectors(s: ProbeSettings): Promise<CollectorEntry[]> {
    const entries: CollectorEntry[] = []
    const errors: string[] = []
    for (const [i, collector] of s.collectors.entries()) {
      try {
        const t = this.deps.createTransport(collector, s)
        entries.push({ collector, transport: s.transport, t })
        await t.open()
      } catch (err) {
        errors.push(`collectors[${i}]: ${collector}: ${(err as Error).message}`)
      }
    }
    if (errors.length > 0) {
      await Promise.all(entries.map((e) => e.t.close().catch(() => undefined)))
      throw new Error(errors.join('\n'))
    }
    return entries
  }

  private async openInterface(name: string, capture: CaptureSettings): Promise<void> {
    const c = await this.deps.openCapture(name, capture)
    const entry: CaptureEntry = { name, capture: c, done: Promise.resolve() }
    const done = this.runCapture(entry)
    this.captures.set(name, { ...entry, done })
  }

  private async runCapture(entry: { name: string; capture: ServiceCapture; error?: string }): Promise<void> {
    try {
      for await (const batch of entry.capture.batches()) {
        if (!(await this.meter(batch))) break
        this.clock.sawBatch()
        // Let the export sockets and the API run between batches.
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
    } catch (err) {
      entry.error = (err as Error).message
      this.log(`capture on ${entry.name} failed: ${entry.error}`)
    }
  }

  /** Meter one capture batch; false when metering has stopped or failed (then the capture loop ends). */
  private async meter(batch: PacketBatch): Promise<boolean> {
    if (this.fatalError !== undefined) return false
    try {
      const p = this.pipeline
      const w = this.workers
      if (p !== undefined) p.processBatch(batch)
      else if (w !== undefined) await w.dispatch(batch)
      else return false
      return true
    } catch (err) {
      this.fatal(err as Error)
      return false
    }
  }

  /** Metering failed (not one capture): log it once, stop the service and tell `failed`. */
  private fatal(err: Error): void {
    if (this.fatalError !== undefined) return
    this.fatalError = err
    this.log(`metering failed: ${err.message}; stopping the probe`)
    this.reportFatal(err)
    void this.stop()
  }

  private async closeInterface(name: string): Promise<void> {
    const e = this.captures.get(name)
    if (e === undefined) return
    this.captures.delete(name)
    await (e.capture.drain?.() ?? e.capture.close())
    await e.capture.close()
    await e.done
    for (const st of e.capture.interfaceStats()) this.retired.monitoredBytes += st.bytes
  }

  /** Once a second: advance time on quiet links, end a drained previous generation. */
  private tick(): void {
    if (this.stopping !== undefined) return
    const w = this.workers
    if (w !== undefined) {
      // Each worker ends its draining generation by itself (metering-worker.ts).
      const t = this.clock.tick()
      if (t !== undefined) w.advanceTo(t).catch((err: unknown) => this.fatal(err as Error))
      return
    }
    const p = this.pipeline
    if (p === undefined) return
    const t = this.clock.tick()
    try {
      if (t !== undefined) p.advanceTo(t)
    } catch (err) {
      this.fatal(err as Error)
      return
    }
    const prev = p.predecessor
    if (prev !== undefined && (prev.cache.size === 0 || p.nowUs >= this.drainDeadlineUs)) this.retire(p)
  }

  /** End the previous generation of `p`: export what is left in it and keep its totals. */
  private retire(p: MeteringPipeline): void {
    const prev = p.predecessor
    if (prev === undefined) return
    prev.flush(EndReason.ForcedEnd)
    p.predecessor = undefined
    const r = this.retired
    r.packets += prev.counters.packets
    r.flowsCreated += prev.cache.counters.flowsCreated
    prev.cache.counters.exportedByReason.forEach((n, i) => (r.byReason[i] = (r.byReason[i] ?? 0) + n))
    for (const [k, v] of Object.entries(prev.anomalies.toObject()))
      r.anomalies.set(k, (r.anomalies.get(k) ?? 0) + v)
    const ra = prev.ipReassembly()
    if (ra !== undefined) addIpReassemblyStats(r.ipReassembly, ra)
    prev.addL7AnomaliesTo(r.l7Anomalies)
    r.ignoredPackets += prev.counters.malformed + prev.counters.unsupported
    r.ignoredOctets += prev.counters.ignoredOctets
    this.log(`settings: the previous field groups' flows are all exported`)
  }

  private meteringStats(): {
    ignoredPackets: number
    ignoredOctets: number
    firstIgnoredMs: number
    lastIgnoredMs: number
  } {
    const p = this.pipeline
    const gens = p === undefined ? [] : p.predecessor !== undefined ? [p, p.predecessor] : [p]
    let ignoredPackets = this.retired.ignoredPackets
    let ignoredOctets = this.retired.ignoredOctets
    let first = 0
    let last = 0
    const counters = gens.map((g) => g.counters)
    if (this.workers !== undefined) counters.push(this.workers.totals())
    for (const c of counters) {
      ignoredPackets += c.malformed + c.unsupported
      ignoredOctets += c.ignoredOctets
      if (c.firstIgnoredUs > 0 && (first === 0 || c.firstIgnoredUs < first)) first = c.firstIgnoredUs
      last = Math.max(last, c.lastIgnoredUs)
    }
    return { ignoredPackets, ignoredOctets, firstIgnoredMs: first / 1000, lastIgnoredMs: last / 1000 }
  }

  private async apply(doc: unknown): Promise<ApplyResult> {
    const cur = this.settings
    const exporter = this.exporter
    if (cur === undefined || !this.metering || exporter === undefined || this.stopping !== undefined)
      return { ok: false, errors: ['the probe service is not running'] }
    const v = this.deps.validateSettings(withRunning(doc, cur))
    if (!v.ok) return { ok: false, errors: v.errors }
    const s = v.settings
    const errors: string[] = []
    if (s.collectors.length === 0) errors.push('collectors: give at least one collector')
    if (s.interfaces.length === 0) errors.push('interfaces: give at least one interface to monitor')
    for (const k of RESTART_KEYS)
      if (!same(s[k], cur[k])) errors.push(`${k}: cannot change while the probe runs (restart the service)`)
    const added = s.interfaces.filter((n) => !cur.interfaces.includes(n))
    if (added.length > 0) {
      try {
        this.deps.checkInterfaces(added)
      } catch (err) {
        errors.push(`interfaces: ${(err as Error).message}`)
      }
    }
    if (errors.length > 0) return { ok: false, errors }

    // Fallible steps first: new transports, new captures.
    const exportChanged =
      !same(s.collectors, cur.collectors) ||
      s.exportProtocol !== cur.exportProtocol ||
      s.transport !== cur.transport ||
      !same(s.tls, cur.tls) ||
      s.sourceAddress !== cur.sourceAddress ||
      this.domainOf(s) !== this.exporterOpts.observationDomainId
    let newCollectors: CollectorEntry[] | undefined
    if (exportChanged) {
      try {
        newCollectors = await this.openCollectors(s)
      } catch (err) {
        return { ok: false, errors: (err as Error).message.split('\n') }
      }
    }
    const captureChanged = !same(s.capture, cur.capture)
    const reopen = captureChanged ? s.interfaces : added
    const opened: { name: string; capture: ServiceCapture }[] = []
    try {
      for (const name of reopen) {
        if (captureChanged && this.captures.has(name)) continue // reopened below, after the old one closes
        opened.push({ name, capture: await this.deps.openCapture(name, s.capture) })
      }
    } catch (err) {
      await Promise.all(opened.map((o) => o.capture.close().catch(() => undefined)))
      await Promise.all((newCollectors ?? []).map((c) => c.t.close().catch(() => undefined)))
      return { ok: false, errors: [`interfaces: ${(err as Error).message}`] }
    }

    // Commit.
    if (s.activeTimeout !== cur.activeTimeout || s.inactiveTimeout !== cur.inactiveTimeout) {
      const t = { activeTimeout: s.activeTimeout, inactiveTimeout: s.inactiveTimeout }
      this.pipeline?.setTimeouts(t)
      await this.workers?.setTimeouts(t)
    }
    if (!same([...s.fields].sort(), [...cur.fields].sort())) await this.newGeneration(s)
    if (newCollectors !== undefined) {
      const old = this.collectors
      for (const c of old) this.retired.telemetryBytes += c.t.stats.octets
      // What is packed leaves on the old transports under the old domain; the new sessions start with the new.
      exporter.replaceTransports(newCollectors.map((c) => c.t))
      this.exporterOpts.observationDomainId = this.domainOf(s)
      this.collectors = newCollectors
      await Promise.all(old.map((c) => c.t.close().catch(() => undefined)))
    }
    for (const name of cur.interfaces)
      if (!s.interfaces.includes(name) || (captureChanged && this.captures.has(name)))
        await this.closeInterface(name)
    for (const o of opened) {
      const entry = { name: o.name, capture: o.capture }
      this.captures.set(o.name, { ...entry, done: this.runCapture(entry) })
    }
    if (captureChanged)
      try {
        for (const name of s.interfaces)
          if (!this.captures.has(name)) await this.openInterface(name, s.capture)
      } catch (err) {
        // The old captures are already closed: report it; the other settings are applied.
        this.log(`capture reopen failed: ${(err as Error).message}`)
      }
    this.settings = s
    this.generation++
    this.log(`settings: generation ${this.generation} applied`)
    return { ok: true, settings: structuredClone(s) }
  }

  /** A field-group change: new flows go to a new pipeline; the current one drains (see the file comment). */
  private async newGeneration(s: ProbeSettings): Promise<void> {
    if (this.workers !== undefined) {
      this.templateBase = 1 - this.templateBase
      await this.workers.setFields({
        fields: s.fields,
        flowTemplateIdBase: TEMPLATE_BASES[this.templateBase]!,
        drainUs: s.activeTimeout * 1e6,
      })
      return
    }
    const cur = this.pipeline
    if (cur === undefined) return
    if (cur.predecessor !== undefined) this.retire(cur)
    this.templateBase = 1 - this.templateBase
    const next = this.newPipeline(s, cur)
    this.pipeline = next
    this.drainDeadlineUs = next.nowUs + s.activeTimeout * 1e6
  }

  private async shutdown(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    // The captures stay listed (with their final counters) for the final status.
    for (const e of this.captures.values()) {
      await (e.capture.drain?.() ?? e.capture.close())
      await e.capture.close()
      await e.done
    }
    const p = this.pipeline
    if (p !== undefined) {
      try {
        p.flush(EndReason.ForcedEnd)
      } catch (err) {
        this.log(`metering failed while flushing: ${(err as Error).message}`)
      }
      this.retire(p)
    }
    if (this.workers !== undefined)
      try {
        await this.workers.finish()
      } catch (err) {
        this.log(`metering workers failed: ${(err as Error).message}`)
        await this.workers.terminate()
      }
    await this.exporter?.close()
    this.log(
      this.fatalError === undefined
        ? 'probe: stopped; every flow exported'
        : 'probe: stopped after a metering failure; flows the failed metering held are lost',
    )
    this.log(`probe: final status ${JSON.stringify(this.status())}`)
  }
}
