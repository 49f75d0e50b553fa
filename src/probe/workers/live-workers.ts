/**
 * The live service's metering on N worker threads (probe/service.ts with `workers: N`, N > 1): live capture
 * batches are hashed to the workers by the pool (worker-pool.ts, symmetric hash of the flow key) and the
 * workers' records re-framed into the service's one IpfixExporter (record-relay.ts, in remap mode), so the
 * collectors see one Exporting Process: one Observation Domain, one Sequence Number space per session.
 *
 * Every operation on the pool (a capture batch of any interface, a quiet-link time advance, a timeout or
 * field-group change, the finish) is queued one after the other: the pool's rings have one writer, and a
 * capture batch is reused by its capture once dispatch resolves. Time is packet time, as in one thread; the
 * exporter ticks (template refresh, statistics) when that time crosses a whole second.
 */
import type { PacketBatch } from '../../capture/batch.js'
import { addIpReassemblyStats, emptyIpReassemblyStats } from '../../decode/ip-reassembly.js'
import { fieldGroupNames } from '../../flow/fields/index.js'
import type { IpfixExporter } from '../../ipfix/exporter.js'
import type { PipelineOptions } from '../pipeline.js'
import { RecordMerger } from './record-relay.js'
import { WorkerPool } from './worker-pool.js'
import type { FieldChange, WorkerCounters } from './worker-protocol.js'
import { addCounts } from '../../util/counts.js'

export interface LiveWorkersOptions {
  workers: number
  pipeline: Omit<PipelineOptions, 'onWarning'>
  /** Time (µs) before the first packet: what the exporter's clock reads until then. */
  startUs: number
  onWarning?: (message: string) => void
  /** Tests only: make one worker throw at a ring slot (see WorkerPoolOptions.fault). */
  fault?: { worker: number; slot: number }
}

/** The workers' counters summed; generationsAlive is the largest (2 while any worker drains one). */
export type LiveWorkerTotals = WorkerCounters

export class LiveWorkers {
  private readonly pool: WorkerPool
  private readonly merger: RecordMerger
  private queue: Promise<unknown> = Promise.resolve()
  private nextTickUs = 0
  private finished: WorkerCounters[] | undefined

  constructor(
    private readonly exporter: IpfixExporter,
    opts: LiveWorkersOptions,
  ) {
    const merger = new RecordMerger(exporter, { remap: true, workers: opts.workers })
    this.merger = merger
    this.pool = new WorkerPool({
      workers: opts.workers,
      pipeline: opts.pipeline,
      maxRecordLength: exporter.maxRecordLength,
      onRecords: (worker, bytes, dns, progressUs) => merger.acceptShared(worker, bytes, dns, progressUs),
      ...(opts.onWarning !== undefined ? { onWarning: opts.onWarning } : {}),
      ...(opts.fault !== undefined ? { fault: opts.fault } : {}),
    })
    this.pool.nowUs = opts.startUs
    // The application catalogue is the Exporting Process's: sent here, not once per worker.
    if (fieldGroupNames(opts.pipeline.fields).includes('app')) merger.sendCatalogue()
  }

  /** Latest packet (or quiet-link) time given to the workers, µs. */
  get nowUs(): number {
    return this.pool.nowUs
  }

  get size(): number {
    return this.pool.size
  }

  /** Meter one capture batch; resolves once every packet is in a worker's ring (the batch may be reused). */
  dispatch(batch: PacketBatch): Promise<void> {
    return this.enqueue(async () => {
      await this.pool.dispatch(batch)
      this.tick()
    })
  }

  /** A quiet link: let time pass in every worker (expiry, draining generations end). */
  advanceTo(nowUs: number): Promise<void> {
    return this.enqueue(async () => {
      await this.pool.advanceTo(nowUs)
      this.tick()
    })
  }

  setTimeouts(t: { activeTimeout: number; inactiveTimeout: number }): Promise<void> {
    return this.enqueue(() => this.pool.setTimeouts(t))
  }

  /**
   * A live field-group change in every worker. With `app` among the new groups the catalogue is sent again
   * once the workers switched, before the new generation's records, as one thread sends it when it sets up
   * the new generation's group.
   */
  setFields(change: FieldChange): Promise<void> {
    return this.enqueue(async () => {
      await this.pool.setFields(change)
      if (fieldGroupNames(change.fields).includes('app')) this.merger.sendCatalogue()
    })
  }

  /** Every worker exports what it holds (forcedEnd), relays its last records and ends. */
  finish(): Promise<void> {
    return this.enqueue(async () => {
      if (this.finished !== undefined) return
      const finals = await this.pool.finish()
      this.finished = finals.map((f) => f.counters)
      // Records dropped in a worker never reached this exporter: account for them here (RFC 7011 §4.3).
      const dropped = finals.reduce((n, f) => n + f.counters.droppedRecords, 0)
      if (dropped > 0) {
        this.exporter.stats.droppedRecords += dropped
        this.exporter.reportNotSent(dropped, 0, 0)
      }
    })
  }

  /** Ends every thread at once (after a failure). */
  terminate(): Promise<void> {
    return this.pool.terminate()
  }

  /** The workers' latest counters, summed. */
  totals(): LiveWorkerTotals {
    const t: LiveWorkerTotals = {
      packets: 0,
      nonIp: 0,
      malformed: 0,
      unsupported: 0,
      ignoredOctets: 0,
      firstIgnoredUs: 0,
      lastIgnoredUs: 0,
      droppedRecords: 0,
      flowsCreated: 0,
      activeFlows: 0,
      exportedByReason: [],
      anomalies: {},
      l7Anomalies: {},
      generationsAlive: 1,
    }
    for (const c of this.finished ?? this.pool.counters()) {
      if (c === undefined) continue
      t.packets += c.packets
      t.nonIp += c.nonIp
      t.malformed += c.malformed
      t.unsupported += c.unsupported
      t.ignoredOctets += c.ignoredOctets
      if (c.firstIgnoredUs > 0 && (t.firstIgnoredUs === 0 || c.firstIgnoredUs < t.firstIgnoredUs))
        t.firstIgnoredUs = c.firstIgnoredUs
      t.lastIgnoredUs = Math.max(t.lastIgnoredUs, c.lastIgnoredUs)
      t.droppedRecords += c.droppedRecords
      t.flowsCreated += c.flowsCreated
      t.activeFlows += c.activeFlows
      c.exportedByReason.forEach((n, i) => (t.exportedByReason[i] = (t.exportedByReason[i] ?? 0) + n))
      addCounts(t.anomalies, c.anomalies)
      if (c.ipReassembly !== undefined)
        t.ipReassembly = addIpReassemblyStats(t.ipReassembly ?? emptyIpReassemblyStats(), c.ipReassembly)
      addCounts(t.l7Anomalies, c.l7Anomalies)
      t.generationsAlive = Math.max(t.generationsAlive, c.generationsAlive)
    }
    return t
  }

  private tick(): void {
    const now = this.pool.nowUs
    if (now < this.nextTickUs) return
    this.exporter.tick()
    this.merger.followTemplates()
    this.nextTickUs = (Math.floor(now / 1e6) + 1) * 1e6
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    const run = this.queue.then(fn)
    this.queue = run.catch(() => undefined)
    return run
  }
}
