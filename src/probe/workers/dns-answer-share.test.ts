// The workers' one DNS answer cache (dns-answer-share.ts): a lookup due at d sees every worker's answers
// before d and none after, and waits until every worker has metered up to d.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DnsShareCollector, DnsShareResolver, type PendingLookup } from './dns-answer-share.js'

const A = 0xc0000201 | 0 // 192.0.2.1 as DnsAnswerCache keys it

describe('DnsShareResolver', () => {
  it('answers a lookup once every worker has metered up to its due time, with the answers before it', () => {
    const r = new DnsShareResolver(2)
    // Worker 1 writes a record due at 100 for 192.0.2.1; worker 0 has metered up to 50 only.
    r.accept(0, undefined, 50)
    const [l] = r.accept(1, { answers: [], lookups: [[100, A, 0]] }, 120)
    r.settle()
    expect(l!.entryId).toBeUndefined()
    // Worker 0 then meters an answer at 90 (before the due time) and one at 100 (not before it).
    r.accept(
      0,
      {
        answers: [
          [90, '192.0.2.1', 175],
          [100, '192.0.2.1', 999],
        ],
        lookups: [],
      },
      130,
    )
    r.settle()
    expect(l!.entryId).toBe(175)
    expect(r.waiting).toBe(0)
  })

  it('answers NO_APP when the only answer for the address comes at or after the due time', () => {
    const r = new DnsShareResolver(2)
    const [l] = r.accept(0, { answers: [[100, '192.0.2.1', 175]], lookups: [[100, A, 3]] }, 200)
    r.accept(1, undefined, 200)
    r.settle()
    expect(l!.entryId).toBe(-1)
  })

  it('a flush looks up what was metered up to now, the current time included', () => {
    let now = 500
    const c = new DnsShareCollector(
      () => now,
      () => 7,
    )
    c.lookup(Number.POSITIVE_INFINITY, A)
    now = 600
    c.lookup(250, A)
    const rep = c.take()!
    expect(rep.lookups[0]![0]).toBeGreaterThan(500)
    expect(rep.lookups[0]![0]).toBeLessThan(500.001)
    expect(rep.lookups[0]![2]).toBe(7)
    expect(rep.lookups[1]![0]).toBe(250)
    expect(c.take()).toBeUndefined()
    const r = new DnsShareResolver(1)
    const [l] = r.accept(0, { answers: [[500, '192.0.2.1', 175]], lookups: [rep.lookups[0]!] }, Infinity)
    r.settle()
    expect(l!.entryId).toBe(175)
  })
})

/** The resolver as it was before its heaps: every settle filters and sorts all that waits (the reference). */
class ScanningResolver {
  private readonly cache = new Map<string, number>()
  private readonly progress: number[]
  private answers: { tUs: number; worker: number; seq: number; address: string; entryId: number }[] = []
  private lookups: { dueUs: number; address: string; entryId: number | undefined }[] = []
  private seq = 0
  constructor(workers: number) {
    this.progress = new Array<number>(workers).fill(Number.NEGATIVE_INFINITY)
  }
  accept(
    worker: number,
    answers: [number, string, number][],
    lookups: [number, string][],
    progressUs: number,
  ) {
    for (const [tUs, address, entryId] of answers)
      this.answers.push({ tUs, worker, seq: this.seq++, address, entryId })
    const mine = lookups.map(([dueUs, address]) => ({
      dueUs,
      address,
      entryId: undefined as number | undefined,
    }))
    this.lookups.push(...mine)
    if (progressUs > this.progress[worker]!) this.progress[worker] = progressUs
    return mine
  }
  settle(): void {
    const upTo = Math.min(...this.progress)
    if (upTo === Number.NEGATIVE_INFINITY) return
    const ready = this.lookups.filter((l) => l.dueUs <= upTo).sort((a, b) => a.dueUs - b.dueUs)
    this.lookups = this.lookups.filter((l) => l.dueUs > upTo)
    const answers = this.answers.filter((a) => a.tUs < upTo)
    this.answers = this.answers.filter((a) => a.tUs >= upTo)
    answers.sort((a, b) => a.tUs - b.tUs || a.worker - b.worker || a.seq - b.seq)
    let i = 0
    for (const l of ready) {
      while (i < answers.length && answers[i]!.tUs < l.dueUs) this.put(answers[i++]!)
      l.entryId = this.cache.get(l.address) ?? -1
    }
    while (i < answers.length) this.put(answers[i++]!)
  }
  private put(a: { address: string; entryId: number }): void {
    this.cache.set(a.address, a.entryId)
  }
}

describe('DnsShareResolver queues', () => {
  it('answers every lookup as the full rescan did, for any interleaving of reports (same times included)', () => {
    const address = fc.constantFrom('192.0.2.1', '192.0.2.2', '2001:db8::1')
    const time = fc.integer({ min: 0, max: 40 })
    const report = fc.record({
      worker: fc.integer({ min: 0, max: 2 }),
      answers: fc.array(fc.tuple(time, address, fc.integer({ min: 1, max: 9 })), { maxLength: 4 }),
      lookups: fc.array(fc.tuple(time, address), { maxLength: 4 }),
      progress: time,
    })
    fc.assert(
      fc.property(fc.array(report, { maxLength: 40 }), (reports) => {
        const r = new DnsShareResolver(3)
        const ref = new ScanningResolver(3)
        const got: PendingLookup[] = []
        const want: { entryId: number | undefined }[] = []
        const finish = [0, 1, 2].map((worker) => ({ worker, answers: [], lookups: [], progress: Infinity }))
        for (const rep of [...reports, ...finish]) {
          const answers = rep.answers as [number, string, number][]
          const lookups = rep.lookups as [number, string][]
          got.push(
            ...r.accept(
              rep.worker,
              { answers, lookups: lookups.map(([d, a], i) => [d, a, i] as [number, string, number]) },
              rep.progress,
            ),
          )
          want.push(...ref.accept(rep.worker, answers, lookups, rep.progress))
          r.settle()
          ref.settle()
          expect(got.map((l) => l.entryId)).toEqual(want.map((l) => l.entryId))
        }
        expect(r.waiting).toBe(0)
      }),
      { numRuns: 300 },
    )
  })

  it('settles in work proportional to what is due, not to all that waits', () => {
    const r = new DnsShareResolver(2)
    // Worker 0 reports 5000 answers and 5000 lookups far ahead of worker 1.
    const answers: [number, string, number][] = []
    const lookups: [number, number | string, number][] = []
    for (let i = 0; i < 5000; i++) {
      answers.push([1000 + i, '192.0.2.1', 7])
      lookups.push([1000 + i, A, i])
    }
    r.accept(0, { answers, lookups }, 10_000)
    // Worker 1 then advances 1000 times below the first due time: nothing is due at any of these settles.
    r.settleSteps = 0
    for (let t = 1; t <= 1000; t++) {
      r.accept(1, undefined, t / 10)
      r.settle()
    }
    // Two looks a settle (the rescan looked at 10 000 entries each time).
    expect(r.settleSteps).toBe(2 * 1000)
    // Then all is due: each lookup and answer is taken once, plus the looks that end each loop.
    r.settleSteps = 0
    r.accept(1, undefined, 10_000)
    r.settle()
    expect(r.waiting).toBe(0)
    expect(r.settleSteps).toBeLessThanOrEqual(5000 + 5000 + 5000 + 2)
  })
})
