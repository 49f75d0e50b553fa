// The workers' one DNS answer cache (dns-answer-share.ts): a lookup due at d sees every worker's answers
// before d and none after, and waits until every worker has metered up to d.
import { describe, expect, it } from 'vitest'
import { DnsShareCollector, DnsShareResolver } from './dns-answer-share.js'

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
