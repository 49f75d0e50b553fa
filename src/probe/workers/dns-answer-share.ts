/**
 * One DNS answer cache for N metering workers, so that application identification (src/flow/fields/app.ts,
 * "a server address that a DNS answer seen earlier gave for a catalogue name") names the same flows as one
 * thread. Flows are shared out by address pair, so a flow's DNS answer is mostly metered by another worker.
 *
 * The one-thread probe looks a flow's responder up when its record leaves the cache, which is before the
 * first packet at or after the record's due time: the cache then holds every answer of an earlier packet
 * (packet times go forward). So the lookup of a record due at `d` sees exactly the answers at times < d.
 *
 * Worker side (DnsShareCollector, an AppFields DnsAnswerSink): the answers and the lookups the worker's
 * group makes go to the main thread with the worker's `out` message, with the time the worker has metered
 * up to (`progressUs`). A record that may be named by the cache carries DNS_LOOKUP_PENDING in its
 * applicationId; its lookups are in record order.
 *
 * Main side (DnsShareResolver): all workers' answers go into one DnsAnswerCache in time order; a lookup due
 * at `d` is answered once every worker has metered up to `d` (its answers before `d` are in), after the
 * answers before `d` and none after. The record merger holds a worker's records until their lookups are
 * answered, then writes them with the applicationId resolved.
 */
import { DnsAnswerCache } from '../../appid/classifier.js'
import type { DnsAnswerSink } from '../../flow/fields/app.js'
import { MinHeap } from '../../util/min-heap.js'

/** What a worker's DNS answer cache did since its last `out` message (in WorkerOut). */
export interface DnsShareReport {
  /** Answers: packet time (µs), address text, catalogue entry stable id. */
  answers: [number, string, number][]
  /**
   * Lookups in record order: due time (µs; see DnsAnswerSink.lookup), responder address, and the index of
   * the record among the worker exporter's data records (IpfixExporter.recordsKept), which tells the lookup
   * of a record the worker's exporter dropped.
   */
  lookups: [number, number | string, number][]
}

/** The worker side: collects what the worker's AppFields groups report until take(). */
export class DnsShareCollector implements DnsAnswerSink {
  private answers: [number, string, number][] = []
  private lookups: [number, number | string, number][] = []

  /**
   * `now` is the worker's metering time (a flush, due Infinity, looks the cache up as it is then);
   * `recordIndex` the worker exporter's recordsKept.
   */
  constructor(
    private readonly now: () => number,
    private readonly recordIndex: () => number,
  ) {}

  answer(tUs: number, address: string, entryId: number): void {
    this.answers.push([tUs, address, entryId])
  }

  lookup(dueUs: number, address: number | string): void {
    // At a flush every answer metered so far counts (those at the current time too): due just after now.
    const d = dueUs === Number.POSITIVE_INFINITY ? justAfter(this.now()) : dueUs
    this.lookups.push([d, address, this.recordIndex()])
  }

  /** What was reported since the last take(), or undefined when nothing was. */
  take(): DnsShareReport | undefined {
    if (this.answers.length === 0 && this.lookups.length === 0) return undefined
    const r = { answers: this.answers, lookups: this.lookups }
    this.answers = []
    this.lookups = []
    return r
  }
}

/** The smallest double above `t` (t ≥ 0). */
function justAfter(t: number): number {
  if (t === 0) return Number.MIN_VALUE
  const b = new Float64Array([t])
  new BigInt64Array(b.buffer)[0]! += 1n
  return b[0]!
}

/** A lookup waiting for its answer: `entryId` is the stable id found, NO_APP (-1) when none (undefined: not yet). */
export interface PendingLookup {
  readonly dueUs: number
  readonly address: number | string
  readonly recordIndex: number
  entryId: number | undefined
}

interface PendingAnswer {
  tUs: number
  worker: number
  seq: number
  address: string
  entryId: number
}

/** A lookup in the resolver's queue: `seq` keeps arrival order among lookups due at the same time. */
type QueuedLookup = PendingLookup & { readonly seq: number }

/**
 * The main side: one cache of every worker's answers, lookups answered in time order. Lookups and answers
 * wait in heaps keyed by their time, so a settle takes only what is due: its work is proportional to the
 * lookups and answers it takes (times log n), not to all that wait.
 */
export class DnsShareResolver {
  private readonly cache: DnsAnswerCache
  /** Per worker: the time it has metered up to (every answer and lookup before it is reported). */
  private readonly progress: number[]
  /** By time; same time: the order of capture is not known across workers, worker then report order. */
  private readonly answers = new MinHeap<PendingAnswer>(
    (a, b) =>
      a.tUs < b.tUs || (a.tUs === b.tUs && (a.worker < b.worker || (a.worker === b.worker && a.seq < b.seq))),
  )
  /** By due time, then arrival. */
  private readonly lookups = new MinHeap<QueuedLookup>(
    (a, b) => a.dueUs < b.dueUs || (a.dueUs === b.dueUs && a.seq < b.seq),
  )
  private seq = 0
  /** Tests only: lookups and answers settle() took from its queues, plus one look per queue and call. */
  settleSteps = 0

  constructor(workers: number, capacity?: number) {
    this.cache = new DnsAnswerCache(capacity)
    this.progress = new Array<number>(workers).fill(Number.NEGATIVE_INFINITY)
  }

  /** Lookups not answered yet. */
  get waiting(): number {
    return this.lookups.size
  }

  /**
   * Take in one worker's report and the time it has metered up to; returns its lookups (in record order),
   * to be read once answered (see settle).
   */
  accept(worker: number, report: DnsShareReport | undefined, progressUs: number): PendingLookup[] {
    const mine: PendingLookup[] = []
    if (report !== undefined) {
      for (const [tUs, address, entryId] of report.answers)
        this.answers.push({ tUs, worker, seq: this.seq++, address, entryId })
      for (const [dueUs, address, recordIndex] of report.lookups) {
        const l: QueuedLookup = { dueUs, address, recordIndex, entryId: undefined, seq: this.seq++ }
        mine.push(l)
        this.lookups.push(l)
      }
    }
    if (progressUs > (this.progress[worker] ?? Number.NEGATIVE_INFINITY)) this.progress[worker] = progressUs
    return mine
  }

  /**
   * Answer every lookup due by the time all workers have metered up to (interleaved with the answers before
   * each, in time order), and put the other answers before that time in the cache.
   */
  settle(): void {
    let upTo = Number.POSITIVE_INFINITY
    for (const p of this.progress) if (p < upTo) upTo = p
    if (upTo === Number.NEGATIVE_INFINITY) return
    const lookups = this.lookups
    for (;;) {
      this.settleSteps++
      const l = lookups.peek()
      if (l === undefined || !(l.dueUs <= upTo)) break
      lookups.pop()
      this.putBefore(l.dueUs)
      l.entryId = this.get(l.address)
    }
    this.putBefore(upTo)
  }

  /** Puts the answers before `tUs` in the cache, in order. */
  private putBefore(tUs: number): void {
    const answers = this.answers
    for (;;) {
      this.settleSteps++
      const a = answers.peek()
      if (a === undefined || a.tUs >= tUs) return
      answers.pop()
      this.cache.set(a.address, a.entryId)
    }
  }

  private get(address: number | string): number {
    return typeof address === 'number' ? this.cache.getIpv4(address) : this.cache.get(address)
  }
}
