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

/** The main side: one cache of every worker's answers, lookups answered in time order. */
export class DnsShareResolver {
  private readonly cache: DnsAnswerCache
  /** Per worker: the time it has metered up to (every answer and lookup before it is reported). */
  private readonly progress: number[]
  private answers: PendingAnswer[] = []
  private lookups: PendingLookup[] = []
  private seq = 0

  constructor(workers: number, capacity?: number) {
    this.cache = new DnsAnswerCache(capacity)
    this.progress = new Array<number>(workers).fill(Number.NEGATIVE_INFINITY)
  }

  /** Lookups not answered yet. */
  get waiting(): number {
    return this.lookups.length
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
        const l: PendingLookup = { dueUs, address, recordIndex, entryId: undefined }
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
    const upTo = Math.min(...this.progress)
    if (upTo === Number.NEGATIVE_INFINITY) return
    const ready = this.lookups.filter((l) => l.dueUs <= upTo).sort((a, b) => a.dueUs - b.dueUs)
    if (ready.length > 0) this.lookups = this.lookups.filter((l) => l.dueUs > upTo)
    const answers = this.answers.filter((a) => a.tUs < upTo)
    if (answers.length === 0 && ready.length === 0) return
    this.answers = this.answers.filter((a) => a.tUs >= upTo)
    // Same time: the order of capture is not known across workers; worker, then report order, stands in.
    answers.sort((a, b) => a.tUs - b.tUs || a.worker - b.worker || a.seq - b.seq)
    let i = 0
    for (const l of ready) {
      while (i < answers.length && answers[i]!.tUs < l.dueUs) this.put(answers[i++]!)
      l.entryId = this.get(l.address)
    }
    while (i < answers.length) this.put(answers[i++]!)
  }

  private put(a: PendingAnswer): void {
    this.cache.set(a.address, a.entryId)
  }

  private get(address: number | string): number {
    return typeof address === 'number' ? this.cache.getIpv4(address) : this.cache.get(address)
  }
}
