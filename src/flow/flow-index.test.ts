// The flow cache's index (flow-cache.ts: one 32-bit entry per slot with id, distance from home and hash tag;
// linear probing, backward-shift deletion) against a Map model, on keys chosen to collide: all share their
// home slot and packets come fast enough for dozens to be held at once, so clusters wrap around, distances
// pass the saturation point (DIST_MAX), and deletions shift entries across non-movable ones. Flows leave
// through the idle timeout, an explicit flush and eviction.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PacketInfo } from '../decode/packet.js'
import { FlowCache, MAX_FLOWS_LIMIT } from './flow-cache.js'
import { fillKey, hashKey, KEY_WORDS } from './flow-key.js'

const INACTIVE_S = 10

/** A UDP packet from 10.0.0.1:`sport` to `dst`:53. */
function packet(dst: number, sport: number): PacketInfo {
  const p = new PacketInfo()
  p.ipVersion = 4
  p.protocol = 17
  p.src[0] = 0x0a000001
  p.dst[0] = dst >>> 0
  p.srcPort = sport
  p.dstPort = 53
  return p
}

/** `n` distinct packets whose keys hash to the same value modulo `modulo` (a power of two). */
function collidingPackets(n: number, modulo: number, homeOffset = 0): PacketInfo[] {
  const out: PacketInfo[] = []
  const key = new Uint32Array(KEY_WORDS)
  for (let i = 1; out.length < n; i++) {
    const p = packet(0xc0000000 + i, 1024 + (i % 5000))
    fillKey(p, key)
    if ((hashKey(key) & (modulo - 1)) === homeOffset) out.push(p)
  }
  return out
}

const keyOf = (p: PacketInfo): string => `${p.dst[0]}:${p.srcPort}`

type Op =
  | { kind: 'packet'; flow: number; advanceMs: number }
  | { kind: 'expire'; advanceMs: number }
  | { kind: 'flush' }

const opArb = (flows: number): fc.Arbitrary<Op> =>
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        kind: fc.constant('packet' as const),
        flow: fc.integer({ min: 0, max: flows - 1 }),
        advanceMs: fc.integer({ min: 0, max: 400 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('expire' as const),
        advanceMs: fc.integer({ min: 0, max: 15000 }),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
  )

/** Runs `ops` on a cache and on a model (key → last packet time); checks size and membership after each. */
function runAgainstModel(packets: PacketInfo[], ops: Op[], maxFlows: number): void {
  const expired: string[] = []
  const cache = new FlowCache(
    { inactiveTimeout: INACTIVE_S, activeTimeout: 1e6, tcpEndLinger: 2, maxFlows, initialCapacity: 4 },
    [],
    (id, flow) => {
      const a = new Uint32Array(4)
      flow.address(id, 1, a)
      expired.push(`${a[0]}:${flow.port(id, 0)}`)
    },
  )
  const model = new Map<string, number>() // key → last packet time (µs), in idle order
  let now = 1_000_000
  let left = 0 // flows the model saw leave: each must have been exported once
  const expireModel = (): void => {
    for (const [k, last] of model) {
      if (last + INACTIVE_S * 1e6 <= now) {
        model.delete(k)
        left++
      }
    }
  }
  for (const op of ops) {
    if (op.kind === 'flush') {
      cache.flushAll()
      left += model.size
      model.clear()
    } else {
      now += op.advanceMs * 1000
      cache.expireDue(now)
      expireModel()
      if (op.kind === 'packet') {
        const p = packets[op.flow]!
        const k = keyOf(p)
        if (!model.has(k) && model.size >= maxFlows) {
          // Eviction: the least recently seen flow leaves (lackOfResources).
          const oldest = model.keys().next().value!
          model.delete(oldest)
          left++
        }
        model.delete(k)
        model.set(k, now)
        cache.update(p, now, 0)
      }
    }
    expect(cache.size).toBe(model.size)
    for (const p of packets) expect(cache.has(p)).toBe(model.has(keyOf(p)))
  }
  cache.flushAll()
  left += model.size
  expect(cache.size).toBe(0)
  for (const p of packets) expect(cache.has(p)).toBe(false)
  expect(expired.length).toBe(left)
}

describe('flow index', () => {
  it('finds, adds and removes flows that all share one home slot (clusters, saturated distances)', () => {
    // 40 keys with the same hash modulo 256: whatever the index size up to 256, they probe from one slot.
    const packets = collidingPackets(40, 256)
    fc.assert(
      fc.property(fc.array(opArb(packets.length), { minLength: 1, maxLength: 300 }), (ops) => {
        runAgainstModel(packets, ops, 1000)
      }),
      { numRuns: 60 },
    )
  })

  it('keeps lookups right when two home slots interleave and clusters wrap around the end', () => {
    // Half the keys go home to the last slot of a 64-slot index, half to slot 1: clusters wrap past 0.
    const packets = [...collidingPackets(12, 64, 63), ...collidingPackets(12, 64, 1)]
    fc.assert(
      fc.property(fc.array(opArb(packets.length), { minLength: 1, maxLength: 300 }), (ops) => {
        runAgainstModel(packets, ops, 1000)
      }),
      { numRuns: 60 },
    )
  })

  it('works without tag bits (every entry compared by key) and with eviction when full', () => {
    const packets = collidingPackets(30, 256)
    fc.assert(
      fc.property(fc.array(opArb(packets.length), { minLength: 1, maxLength: 200 }), (ops) => {
        runAgainstModel(packets, ops, MAX_FLOWS_LIMIT)
        runAgainstModel(packets, ops, 7)
      }),
      { numRuns: 40 },
    )
  })

  it('removes the flows of one long cluster in any order (distances beyond DIST_MAX shift right)', () => {
    // 40 flows on one home slot sit at distances 0..39; each removal shifts the ones behind it back.
    const packets = collidingPackets(40, 256)
    const order = packets.map((_, i) => i)
    fc.assert(
      fc.property(fc.shuffledSubarray(order, { minLength: 40, maxLength: 40 }), (perm) => {
        const cache = new FlowCache(
          { inactiveTimeout: INACTIVE_S, activeTimeout: 1e6, tcpEndLinger: 2, maxFlows: 1000 },
          [],
          () => {},
        )
        const t0 = 1e6
        for (const p of packets) cache.update(p, t0, 0)
        // Touch them again in `perm` order: that is the order the idle timeout takes them in.
        perm.forEach((i, k) => cache.update(packets[i]!, t0 + (k + 1) * 1000, 0))
        for (let k = 0; k < perm.length; k++) {
          cache.expireDue(t0 + (k + 1) * 1000 + INACTIVE_S * 1e6)
          for (let j = 0; j < perm.length; j++) expect(cache.has(packets[perm[j]!]!)).toBe(j > k)
          expect(cache.size).toBe(perm.length - k - 1)
        }
      }),
      { numRuns: 100 },
    )
  })

  it('holds many random flows through growth and churn', () => {
    const packets = Array.from({ length: 3000 }, (_, i) => packet(0x08000000 + i * 7919, 1024 + (i % 60000)))
    const ops: Op[] = []
    for (let i = 0; i < 12000; i++)
      ops.push({ kind: 'packet', flow: (i * 2654435761) % 3000, advanceMs: i % 7 })
    const cache = new FlowCache(
      { inactiveTimeout: 5, activeTimeout: 1e6, tcpEndLinger: 2, maxFlows: 100_000, initialCapacity: 16 },
      [],
      () => {},
    )
    let now = 0
    const last = new Map<string, number>()
    for (const op of ops) {
      if (op.kind !== 'packet') continue
      now += op.advanceMs * 1000
      cache.expireDue(now)
      const p = packets[op.flow]!
      cache.update(p, now, 0)
      last.set(keyOf(p), now)
    }
    let live = 0
    for (const p of packets) {
      const t = last.get(keyOf(p))
      const held = t !== undefined && t + 5e6 > now
      if (held) live++
      expect(cache.has(p)).toBe(held)
    }
    expect(cache.size).toBe(live)
  })

  it('refuses a cache larger than the index entries can name', () => {
    const opts = { inactiveTimeout: 30, activeTimeout: 300, tcpEndLinger: 2 }
    expect(() => new FlowCache({ ...opts, maxFlows: MAX_FLOWS_LIMIT + 1 }, [], () => {})).toThrow(/at most/)
  })
})
