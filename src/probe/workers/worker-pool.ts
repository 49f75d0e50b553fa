/**
 * N metering workers (node:worker_threads) sharing the flow work, and the dispatcher that feeds them.
 *
 * The dispatcher runs on the calling thread: for every packet of a capture batch it picks the worker by a
 * symmetric hash of the IP address pair (symmetric-hash.ts), so both directions of a flow and all fragments
 * of a datagram meet in one worker's decoder and flow cache, and copies the packet into that worker's
 * packet ring (packet-ring.ts). At the end of each capture batch every worker's slot is published with the
 * batch's last packet time, whether it holds packets or not, so idle workers expire their flows on time.
 * A full ring makes the dispatcher wait for that worker (back-pressure); nothing queues without bound.
 *
 * What the workers export arrives as `out` messages; the pool passes them to `onRecords` (the RecordMerger
 * of the one real exporter, record-relay.ts). A worker that throws or exits early fails the pool: every
 * pending and later call rejects with an error naming the worker, and terminate() ends all threads.
 *
 * Sources: works for any CaptureSource (files now, live capture later); time is whatever the batches carry.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { PacketBatch } from '../../capture/batch.js'
import type { PipelineOptions } from '../pipeline.js'
import type { DnsShareReport } from './dns-answer-share.js'
import { allocateRing, RingWriter, SlotCommand, type RingSize, type Slot } from './packet-ring.js'
import { workerForPacket } from './symmetric-hash.js'
import type {
  FieldChange,
  WorkerCounters,
  WorkerFinal,
  WorkerInit,
  WorkerMessage,
} from './worker-protocol.js'

export interface WorkerPoolOptions {
  workers: number
  pipeline: Omit<PipelineOptions, 'onWarning'>
  /** The main exporter's maxRecordLength (see WorkerInit). */
  maxRecordLength: number
  ring?: RingSize
  /**
   * What one worker relayed after a slot (runs on the pool's thread, between dispatches): its IPFIX messages
   * if any, its DNS answer cache report and the time it has metered up to (see WorkerOut).
   */
  onRecords: (
    worker: number,
    bytes: Uint8Array | undefined,
    dns: DnsShareReport | undefined,
    progressUs: number,
  ) => void
  /** Called once per distinct warning text, whichever worker raised it. */
  onWarning?: (message: string) => void
  /** Tests only: worker `worker` throws before metering its slot number `slot`. */
  fault?: { worker: number; slot: number }
}

let liveThreads = 0

/** Metering worker threads currently running in this process (for tests: none may outlive a run). */
export function liveWorkerThreads(): number {
  return liveThreads
}

/** How to start metering-worker: the compiled .js next to this file, or the .ts source through tsx. */
function workerEntry(): { code: URL | string; eval: boolean } {
  const js = new URL('./metering-worker.js', import.meta.url)
  if (existsSync(fileURLToPath(js))) return { code: js, eval: false }
  // Running from TypeScript sources (vitest, tsx): Node 20 cannot apply module hooks registered in a worker,
  // so the worker registers tsx's require hook and loads the source through it.
  const ts = fileURLToPath(new URL('./metering-worker.ts', import.meta.url))
  const api = createRequire(import.meta.url).resolve('tsx/cjs/api')
  return {
    code: `require(${JSON.stringify(api)}).register(); require(${JSON.stringify(ts)})`,
    eval: true,
  }
}

interface Member {
  readonly thread: Worker
  readonly writer: RingWriter
  /** The slot being filled for this worker, if any. */
  slot: Slot | undefined
  counters: WorkerCounters | undefined
  final: WorkerFinal | undefined
  exited: Promise<void>
}

export class WorkerPool {
  readonly size: number
  /** Latest packet time dispatched (µs), the time every worker has been told. */
  nowUs = 0
  private readonly members: Member[]
  private failure: Error | undefined
  private readonly failed: Promise<never>
  private rejectFailed: (e: Error) => void = () => undefined
  private readonly warned = new Set<string>()
  private finals: Promise<WorkerFinal[]> | undefined

  constructor(private readonly opts: WorkerPoolOptions) {
    if (!Number.isInteger(opts.workers) || opts.workers < 1 || opts.workers > 64)
      throw new Error(`workers ${opts.workers} outside 1..64`)
    this.size = opts.workers
    this.failed = new Promise<never>((_, reject) => {
      this.rejectFailed = reject
    })
    // Observed through races; never an unhandled rejection by itself.
    this.failed.catch(() => undefined)
    const entry = workerEntry()
    this.members = []
    for (let index = 0; index < opts.workers; index++) {
      const ring = allocateRing(opts.ring)
      const init: WorkerInit = {
        index,
        ring,
        pipeline: opts.pipeline,
        maxRecordLength: opts.maxRecordLength,
        ...(opts.fault?.worker === index ? { faultAtSlot: opts.fault.slot } : {}),
      }
      const thread = new Worker(entry.code, { eval: entry.eval, workerData: init })
      liveThreads++
      const m: Member = {
        thread,
        writer: new RingWriter(ring),
        slot: undefined,
        counters: undefined,
        final: undefined,
        exited: new Promise<void>((resolve) => {
          thread.once('exit', (code) => {
            liveThreads--
            if (m.final === undefined) this.fail(new Error(`metering worker ${index} exited (code ${code})`))
            resolve()
          })
        }),
      }
      thread.on('message', (msg: WorkerMessage) => this.onMessage(m, msg))
      thread.on('error', (err) => this.fail(new Error(`metering worker ${index} failed: ${err.message}`)))
      this.members.push(m)
    }
  }

  /** The first failure, if any. */
  get error(): Error | undefined {
    return this.failure
  }

  /** Latest counters of every worker (undefined until a worker has reported). */
  counters(): (WorkerCounters | undefined)[] {
    return this.members.map((m) => m.counters)
  }

  /** Hand one capture batch to the workers; resolves once every packet is in a ring. */
  async dispatch(batch: PacketBatch): Promise<void> {
    this.check()
    const n = batch.count
    const { buf, view, offset, caplen, origlen, tsUs, linkType, ifIndex } = batch
    const members = this.members
    const workers = members.length
    let now = this.nowUs
    for (let i = 0; i < n; i++) {
      const off = offset[i]!
      const len = caplen[i]!
      const lt = linkType[i]!
      const ts = tsUs[i]!
      if (ts > now) now = ts
      const m = members[workerForPacket(view, off, len, lt, workers)]!
      const s = m.slot ?? (await this.acquire(m))
      if (!s.append(buf, off, len, origlen[i]!, ts, lt, ifIndex[i]!)) {
        m.writer.publish(SlotCommand.Packets, this.nowUs)
        m.slot = undefined
        const fresh = await this.acquire(m)
        fresh.append(buf, off, len, origlen[i]!, ts, lt, ifIndex[i]!)
      }
    }
    this.nowUs = now
    await this.publishAll(SlotCommand.Packets, now)
  }

  /** Let time pass without packets (a quiet live link): every worker expires what is due. */
  async advanceTo(nowUs: number): Promise<void> {
    this.check()
    if (nowUs > this.nowUs) this.nowUs = nowUs
    await this.publishAll(SlotCommand.Packets, this.nowUs)
  }

  /** Change the timeouts in every worker; flows stay in the caches. */
  async setTimeouts(t: {
    activeTimeout: number
    inactiveTimeout: number
    tcpEndLinger?: number
  }): Promise<void> {
    this.check()
    // Packets already in a slot are metered under the old timeouts, as they arrived before the change.
    await this.publishAll(SlotCommand.Packets, this.nowUs)
    await this.publishAll(SlotCommand.SetTimeouts, this.nowUs, [
      t.activeTimeout,
      t.inactiveTimeout,
      t.tcpEndLinger ?? NaN,
    ])
  }

  /**
   * A live field-group change: every worker starts a new settings generation (see metering-worker.ts);
   * packets already dispatched are metered before it.
   */
  async setFields(change: FieldChange): Promise<void> {
    this.check()
    await this.publishAll(SlotCommand.Packets, this.nowUs)
    const payload = new TextEncoder().encode(JSON.stringify(change))
    for (const m of this.members) {
      const s = m.slot ?? (await this.acquire(m))
      s.setPayload(payload)
      m.writer.publish(SlotCommand.SetFields, this.nowUs)
      m.slot = undefined
    }
  }

  /**
   * End of input: every worker flushes its flows, relays its last records and reports. Resolves with the
   * reports once every worker thread has ended.
   */
  finish(): Promise<WorkerFinal[]> {
    this.finals ??= (async () => {
      this.check()
      await this.publishAll(SlotCommand.Packets, this.nowUs)
      await this.publishAll(SlotCommand.Finish, this.nowUs)
      await Promise.race([Promise.all(this.members.map((m) => m.exited)), this.failed])
      this.check()
      return this.members.map((m) => m.final!)
    })()
    return this.finals
  }

  /** Stop every thread now (after a failure, or to abandon a run); resolves once all have exited. */
  async terminate(): Promise<void> {
    await Promise.all(this.members.map((m) => m.thread.terminate().then(() => m.exited)))
  }

  // --- internals

  private check(): void {
    if (this.failure !== undefined) throw this.failure
  }

  private fail(err: Error): void {
    if (this.failure !== undefined) return
    this.failure = err
    this.rejectFailed(err)
  }

  private async acquire(m: Member): Promise<Slot> {
    for (;;) {
      const s = m.writer.current()
      if (s !== undefined) {
        m.slot = s
        return s
      }
      await Promise.race([m.writer.waitForRoom(), this.failed])
    }
  }

  private async publishAll(command: SlotCommand, nowUs: number, args?: readonly number[]): Promise<void> {
    for (const m of this.members) {
      if (m.slot === undefined) await this.acquire(m)
      m.writer.publish(command, nowUs, args)
      m.slot = undefined
    }
  }

  private onMessage(m: Member, msg: WorkerMessage): void {
    try {
      switch (msg.type) {
        case 'out':
          m.counters = msg.counters
          this.opts.onRecords(
            msg.worker,
            msg.bytes !== undefined ? new Uint8Array(msg.bytes) : undefined,
            msg.dns,
            msg.progressUs,
          )
          break
        case 'warning':
          if (!this.warned.has(msg.message)) {
            this.warned.add(msg.message)
            this.opts.onWarning?.(msg.message)
          }
          break
        case 'final':
          m.counters = msg.counters
          m.final = msg
          break
      }
    } catch (err) {
      this.fail(new Error(`records of metering worker ${msg.worker}: ${(err as Error).message}`))
    }
  }
}
