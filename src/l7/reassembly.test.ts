// TCP stream reassembly (RFC 9293 sequence space): in-order pass-through, reordering, retransmissions and
// overlaps (first data wins, conflicts counted), gaps (flush and bounds), mid-stream and wrap-around
// starts, per-flow and total memory bounds, and stopping.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Budget, newReassemblyStats, StreamReassembler } from './reassembly.js'

const bytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))

function setup(perFlow = 1 << 20, total = 1 << 30, maxSegments = 64) {
  const out: string[] = []
  const stats = newReassemblyStats()
  const totalBudget = new Budget(total)
  const budget = new Budget(perFlow, totalBudget)
  const r = new StreamReassembler(
    budget,
    stats,
    {
      data: (b) => out.push(String.fromCharCode(...b)),
      gap: (n) => out.push(`<gap ${n}>`),
    },
    maxSegments,
  )
  return { r, out, stats, budget, totalBudget, text: () => out.join('') }
}

describe('stream reassembly', () => {
  it('passes in-order data through and reorders out-of-order segments', () => {
    const { r, text, budget } = setup()
    r.start(1000)
    r.push(1000, bytes('abc'))
    r.push(1006, bytes('ghi'))
    r.push(1003, bytes('def'))
    expect(text()).toBe('abcdefghi')
    expect(budget.used).toBe(0)
  })

  it('starts mid-stream at the first segment and handles sequence wrap-around', () => {
    const { r, text } = setup()
    r.push(0xfffffffe, bytes('ab'))
    r.push(2, bytes('ef'))
    r.push(0, bytes('cd'))
    expect(text()).toBe('abcdef')
  })

  it('drops retransmissions; first data wins in overlaps and conflicts are counted', () => {
    const { r, text, stats } = setup()
    r.start(0)
    r.push(0, bytes('abcd'))
    r.push(0, bytes('abcd')) // full retransmission
    r.push(2, bytes('cdef')) // partial: only "ef" is new
    r.push(10, bytes('klmn'))
    r.push(8, bytes('iXYZ')) // overlaps "kl" with different bytes: first (kl) wins
    r.push(6, bytes('gh'))
    expect(text()).toBe('abcdefghiXklmn')
    expect(stats.retransmissions).toBe(2)
    expect(stats.overlapConflicts).toBe(1)
  })

  it('reports holes as gaps on flush', () => {
    const { r, out, stats } = setup()
    r.start(0)
    r.push(0, bytes('ab'))
    r.push(5, bytes('fg'))
    r.flush()
    expect(out).toEqual(['ab', '<gap 3>', 'fg'])
    expect(stats.gapBytes).toBe(3)
  })

  it('enforces the per-flow bound by declaring the oldest hole a gap', () => {
    const { r, out, budget } = setup(8)
    r.start(0)
    r.push(10, bytes('12345'))
    r.push(20, bytes('abcdef')) // 5 + 6 > 8: give up on [0, 10)
    expect(out).toEqual(['<gap 10>', '12345'])
    expect(budget.used).toBe(6)
    r.push(15, bytes('XXXXX'))
    expect(out.join('')).toBe('<gap 10>12345XXXXXabcdef')
    expect(budget.used).toBe(0)
  })

  it('enforces the total bound across flows and the segment count', () => {
    const a = setup(1000, 10)
    a.r.start(0)
    a.r.push(100, new Uint8Array(8))
    expect(a.totalBudget.used).toBe(8)
    a.r.push(200, new Uint8Array(8)) // over the total: the hole before 100 is skipped
    expect(a.stats.gaps).toBeGreaterThan(0)
    expect(a.totalBudget.used).toBeLessThanOrEqual(10)
    const b = setup(1 << 20, 1 << 20, 2)
    b.r.start(0)
    for (let i = 1; i <= 5; i++) b.r.push(i * 10, new Uint8Array(2))
    expect(b.stats.gaps).toBeGreaterThan(0)
  })

  it('costs nothing after clear()', () => {
    const { r, out, budget } = setup()
    r.start(0)
    r.push(5, bytes('x'))
    r.clear()
    r.push(0, bytes('abcde'))
    expect(out).toEqual([])
    expect(budget.used).toBe(0)
  })

  it('advance() steps over the next bytes only when nothing is held, as push and delivery would', () => {
    const { r, text, stats } = setup()
    expect(r.advance(100, 3)).toBe(false) // not started: the caller pushes
    r.start(100)
    r.push(100, bytes('ab'))
    expect(r.advance(101, 3)).toBe(false) // not the next byte
    expect(r.advance(102, 3)).toBe(true)
    expect(r.position).toBe(5)
    r.push(105, bytes('cd'))
    r.push(110, bytes('ij')) // held: a hole at 107
    expect(r.advance(107, 3)).toBe(false)
    r.push(107, bytes('efg'))
    expect(text()).toBe('abcdefgij')
    r.push(102, bytes('xyz')) // the advanced bytes count as seen: a retransmission
    expect(stats.retransmissions).toBe(1)
    expect(r.advance(0xffffffff, 2)).toBe(false)
    expect(r.advance(112, 0x7fffffff)).toBe(true) // any length, the sequence space wraps
    r.clear()
    expect(r.advance((112 + 0x7fffffff) >>> 0, 1)).toBe(false) // stopped: push ignores it
  })

  it('property: any segmentation, order and duplication of a stream reassembles to the stream', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.array(fc.nat(299), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.nat(0xffffffff),
        (data, cuts, order, isn) => {
          const points = [...new Set([0, ...cuts.map((c) => c % data.byteLength), data.byteLength])].sort(
            (a, b) => a - b,
          )
          const segs: Array<[number, number]> = []
          for (let i = 0; i + 1 < points.length; i++) segs.push([points[i]!, points[i + 1]!])
          // Shuffle (keeping the first segment first, as a connection's start) and duplicate some.
          const rest = segs.slice(1)
          for (let i = 0; i < order.length && rest.length > 1; i++) {
            const a = order[i]! % rest.length
            const b = (order[i]! >>> 8) % rest.length
            ;[rest[a], rest[b]] = [rest[b]!, rest[a]!]
          }
          const all = [segs[0]!, ...rest, ...rest.slice(0, order.length % 4)]
          const got: number[] = []
          const r = new StreamReassembler(new Budget(1 << 20), newReassemblyStats(), {
            data: (b) => got.push(...b),
            gap: () => {
              throw new Error('unexpected gap')
            },
          })
          r.start(isn)
          for (const [s, e] of all) r.push((isn + s) >>> 0, data.subarray(s, e))
          r.flush()
          expect(Uint8Array.from(got)).toEqual(data)
        },
      ),
      { seed: 3, numRuns: 500 },
    )
  })
})
