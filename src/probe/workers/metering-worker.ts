/**
 * Entry point of one metering worker thread (node:worker_threads): reads slots from its packet ring
 * (packet-ring.ts), meters them with its own MeteringPipeline (decoder, fragment cache, flow cache), and
 * relays the IPFIX messages its exporter writes to the main thread (record-relay.ts), which exports them as
 * one Exporting Process.
 *
 * Messages to the main thread (WorkerMessage): `out` after every slot (relayed messages, counters), `warning`
 * once per unsupported link type, `final` after Finish (the summary parts). An exception is not caught here:
 * the thread ends with an `error` event that the pool reports.
 *
 * Live field-group changes (SetFields, from the live service) follow probe/service.ts: a new pipeline takes
 * the previous one as its predecessor (same exporter, the other flow template IDs); flows already in the
 * cache finish with their groups; the predecessor is ended (forcedEnd for what is left) once it is empty,
 * at its drain deadline, or at the next change. Counters and the final report sum every generation.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { PacketBatch } from '../../capture/batch.js'
import {
  addIpReassemblyStats,
  emptyIpReassemblyStats,
  type IpReassemblyStats,
} from '../../decode/ip-reassembly.js'
import { EndReason, END_REASON_NAMES } from '../../flow/feature.js'
import { AppFields } from '../../flow/fields/app.js'
import { IpfixExporter } from '../../ipfix/exporter.js'
import { MeteringPipeline, type PipelineOptions } from '../pipeline.js'
import { DnsShareCollector } from './dns-answer-share.js'
import { RingReader, SlotCommand, type RingMemory } from './packet-ring.js'
import { RelayTransport, WORKER_EXPORTER_OPTIONS } from './record-relay.js'
import type {
  FieldChange,
  WorkerCounters,
  WorkerFinal,
  WorkerInit,
  WorkerMessage,
} from './worker-protocol.js'

function post(m: WorkerMessage, transfer: ArrayBuffer[] = []): void {
  parentPort?.postMessage(m, transfer)
}

/** Figures of generations that are gone (their pipelines are dropped). */
interface Retired {
  packets: number
  nonIp: number
  malformed: number
  unsupported: number
  ignoredOctets: number
  ipPackets: number
  ipBytes: number
  flowsCreated: number
  peakActiveFlows: number
  exportedByReason: number[]
  anomalies: Map<string, number>
  /** Undefined while no retired generation had an L7 group. */
  ipReassembly: IpReassemblyStats | undefined
  /** The L7 groups' anomalies by `<group>.<name>`. */
  l7Anomalies: Record<string, number>
}

function run(init: WorkerInit): void {
  const ring: RingMemory = init.ring
  const reader = new RingReader(ring)
  const relay = new RelayTransport()
  const opts: PipelineOptions = {
    ...init.pipeline,
    onWarning: (message) => post({ type: 'warning', worker: init.index, message }),
  }
  let pipeline = new MeteringPipeline(
    opts,
    (hooks) =>
      new IpfixExporter({ ...WORKER_EXPORTER_OPTIONS, maxRecordLength: init.maxRecordLength, ...hooks }, [
        relay,
      ]),
  )
  const exporter = pipeline.exporter
  // Application identification's DNS answer cache is the main thread's, one for all workers.
  const dnsShare = new DnsShareCollector(
    () => pipeline.nowUs,
    () => exporter.recordsKept,
  )
  const shareDns = (p: MeteringPipeline): void => {
    for (const f of p.features) if (f instanceof AppFields) f.shareDnsAnswers(dnsShare)
  }
  shareDns(pipeline)
  let drainDeadlineUs = 0
  const retired: Retired = {
    packets: 0,
    nonIp: 0,
    malformed: 0,
    unsupported: 0,
    ignoredOctets: 0,
    ipPackets: 0,
    ipBytes: 0,
    flowsCreated: 0,
    peakActiveFlows: 0,
    exportedByReason: [],
    anomalies: new Map(),
    ipReassembly: undefined,
    l7Anomalies: {},
  }
  // A private copy of each slot: the slot goes back to the dispatcher before the metering starts.
  const batch = new PacketBatch(ring.packetCapacity)
  batch.setBuffer(new Uint8Array(ring.byteCapacity))
  let slots = 0

  /** The generations alive: the current one and the one draining, if any. */
  const alive = (): MeteringPipeline[] =>
    pipeline.predecessor !== undefined ? [pipeline, pipeline.predecessor] : [pipeline]

  /** Export what is left in the previous generation and keep its figures. */
  const retire = (p: MeteringPipeline): void => {
    p.flush(EndReason.ForcedEnd)
    const c = p.counters
    retired.packets += c.packets
    retired.nonIp += c.nonIp
    retired.malformed += c.malformed
    retired.unsupported += c.unsupported
    retired.ignoredOctets += c.ignoredOctets
    retired.ipPackets += p.core.packets
    retired.ipBytes += p.core.octets
    retired.flowsCreated += p.cache.counters.flowsCreated
    retired.peakActiveFlows = Math.max(retired.peakActiveFlows, p.cache.counters.peakActiveFlows)
    p.cache.counters.exportedByReason.forEach(
      (n, i) => (retired.exportedByReason[i] = (retired.exportedByReason[i] ?? 0) + n),
    )
    for (const [k, v] of Object.entries(p.anomalies.toObject()))
      retired.anomalies.set(k, (retired.anomalies.get(k) ?? 0) + v)
    const r = p.ipReassembly()
    if (r !== undefined)
      retired.ipReassembly = addIpReassemblyStats(retired.ipReassembly ?? emptyIpReassemblyStats(), r)
    p.addL7AnomaliesTo(retired.l7Anomalies)
  }
  const retireDrained = (): void => {
    const prev = pipeline.predecessor
    if (prev !== undefined && (prev.cache.size === 0 || pipeline.nowUs >= drainDeadlineUs)) {
      pipeline.predecessor = undefined
      retire(prev)
    }
  }
  const changeFields = (change: FieldChange): void => {
    const prev = pipeline.predecessor
    if (prev !== undefined) {
      pipeline.predecessor = undefined
      retire(prev)
    }
    const next = new MeteringPipeline(
      { ...opts, fields: change.fields, flowTemplateIdBase: change.flowTemplateIdBase },
      () => exporter,
    )
    shareDns(next)
    next.predecessor = pipeline
    next.nowUs = pipeline.nowUs
    pipeline = next
    drainDeadlineUs = next.nowUs + change.drainUs
  }

  const anomalies = (): Record<string, number> => {
    const out = new Map(retired.anomalies)
    for (const g of alive())
      for (const [k, v] of Object.entries(g.anomalies.toObject())) out.set(k, (out.get(k) ?? 0) + v)
    return Object.fromEntries(out)
  }
  const ipReassembly = (): IpReassemblyStats | undefined => {
    let out = retired.ipReassembly && { ...retired.ipReassembly }
    for (const g of alive()) {
      const r = g.ipReassembly()
      if (r !== undefined) out = addIpReassemblyStats(out ?? emptyIpReassemblyStats(), r)
    }
    return out
  }
  const l7Anomalies = (): Record<string, number> => {
    const out = { ...retired.l7Anomalies }
    for (const g of alive()) g.addL7AnomaliesTo(out)
    return out
  }
  const counters = (): WorkerCounters => {
    const gens = alive()
    const sum = (f: (p: MeteringPipeline) => number): number => gens.reduce((n, g) => n + f(g), 0)
    const byReason = [...retired.exportedByReason]
    for (const g of gens)
      g.cache.counters.exportedByReason.forEach((n, i) => (byReason[i] = (byReason[i] ?? 0) + n))
    let first = 0
    let last = 0
    for (const g of gens) {
      const c = g.counters
      if (c.firstIgnoredUs > 0 && (first === 0 || c.firstIgnoredUs < first)) first = c.firstIgnoredUs
      last = Math.max(last, c.lastIgnoredUs)
    }
    const reassembly = ipReassembly()
    return {
      packets: retired.packets + sum((g) => g.counters.packets),
      nonIp: retired.nonIp + sum((g) => g.counters.nonIp),
      malformed: retired.malformed + sum((g) => g.counters.malformed),
      unsupported: retired.unsupported + sum((g) => g.counters.unsupported),
      ignoredOctets: retired.ignoredOctets + sum((g) => g.counters.ignoredOctets),
      firstIgnoredUs: first,
      lastIgnoredUs: last,
      droppedRecords: exporter.stats.droppedRecords,
      flowsCreated: retired.flowsCreated + sum((g) => g.cache.counters.flowsCreated),
      activeFlows: sum((g) => g.cache.size),
      exportedByReason: byReason,
      anomalies: anomalies(),
      ...(reassembly !== undefined ? { ipReassembly: reassembly } : {}),
      l7Anomalies: l7Anomalies(),
      generationsAlive: gens.length,
    }
  }
  const sendOut = (progressUs = pipeline.nowUs): void => {
    exporter.flush()
    const bytes = relay.take()
    const dns = dnsShare.take()
    post(
      {
        type: 'out',
        worker: init.index,
        counters: counters(),
        ...(bytes ? { bytes } : {}),
        ...(dns ? { dns } : {}),
        progressUs,
      },
      bytes ? [bytes] : [],
    )
  }

  for (;;) {
    const slot = reader.next()
    const command = slot.command
    if (command === SlotCommand.Packets) {
      const n = slot.packets
      batch.count = n
      batch.offset.set(slot.offset.subarray(0, n))
      batch.caplen.set(slot.caplen.subarray(0, n))
      batch.origlen.set(slot.origlen.subarray(0, n))
      batch.tsUs.set(slot.tsUs.subarray(0, n))
      batch.linkType.set(slot.linkType.subarray(0, n))
      batch.ifIndex.set(slot.ifIndex.subarray(0, n))
      batch.buf.set(slot.data.subarray(0, slot.dataBytes))
      const advanceUs = slot.advanceUs
      reader.release()
      if (init.faultAtSlot !== undefined && slots === init.faultAtSlot)
        throw new Error(`injected fault in metering worker ${init.index} (test)`)
      slots++
      pipeline.processBatch(batch)
      pipeline.advanceTo(advanceUs)
      retireDrained()
      sendOut()
    } else if (command === SlotCommand.SetTimeouts) {
      const [a, i, l] = [slot.arg(0), slot.arg(1), slot.arg(2)]
      reader.release()
      pipeline.setTimeouts({
        activeTimeout: a,
        inactiveTimeout: i,
        ...(Number.isNaN(l) ? {} : { tcpEndLinger: l }),
      })
    } else if (command === SlotCommand.SetFields) {
      const change = JSON.parse(Buffer.from(slot.payload()).toString('utf8')) as FieldChange
      reader.release()
      changeFields(change)
      sendOut()
    } else if (command === SlotCommand.Finish) {
      const advanceUs = slot.advanceUs
      reader.release()
      pipeline.advanceTo(advanceUs)
      pipeline.flush(EndReason.ForcedEnd)
      sendOut(Number.POSITIVE_INFINITY)
      const c = counters()
      const l7 = pipeline.l7Summary()
      const byReason: Record<string, number> = {}
      c.exportedByReason.forEach((n, reason) => {
        if (n > 0) byReason[END_REASON_NAMES[reason] ?? String(reason)] = n
      })
      const final: WorkerFinal = {
        type: 'final',
        worker: init.index,
        counters: c,
        ipPackets: retired.ipPackets + alive().reduce((n, g) => n + g.core.packets, 0),
        ipBytes: retired.ipBytes + alive().reduce((n, g) => n + g.core.octets, 0),
        flows: c.flowsCreated,
        peakActiveFlows: Math.max(
          retired.peakActiveFlows,
          ...alive().map((g) => g.cache.counters.peakActiveFlows),
        ),
        endReasons: byReason,
        anomalies: c.anomalies,
        ...(c.ipReassembly !== undefined ? { ipReassembly: c.ipReassembly } : {}),
        ...(l7 !== undefined ? { l7 } : {}),
      }
      post(final)
      return
    } else {
      reader.release()
      throw new Error(`metering worker ${init.index}: unknown slot command ${String(command)}`)
    }
  }
}

run(workerData as WorkerInit)
