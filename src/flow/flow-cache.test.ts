import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PacketInfo } from '../decode/packet.js'
import type { RecordWriter } from '../ipfix/record-writer.js'
import { Dir, EndReason, recordKind, type FlowFeature, type FlowView } from './feature.js'
import { CoreFields } from './fields/core.js'
import { FlowCache, type FlowCacheOptions } from './flow-cache.js'

/** A RecordWriter that keeps the values written, in order. */
class ValueWriter implements RecordWriter {
  values: Array<number | string> = []
  u8(v: number): void {
    this.values.push(v)
  }
  u16(v: number): void {
    this.values.push(v)
  }
  u32(v: number): void {
    this.values.push(v)
  }
  u64(v: number): void {
    this.values.push(v)
  }
  f64(v: number): void {
    this.values.push(v)
  }
  ipv4(v: number): void {
    this.values.push(`${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`)
  }
  ipv6(words: Uint32Array): void {
    this.values.push(Array.from(words.subarray(0, 4), (x) => x.toString(16)).join(':'))
  }
  mac(hi: number, lo: number): void {
    this.values.push(hi * 2 ** 32 + lo)
  }
  dateTimeMs(ms: number): void {
    this.values.push(ms)
  }
  bytes(): void {}
  varlen(): void {}
  string(s: string): void {
    this.values.push(s)
  }
}

interface Rec {
  src: string
  dst: string
  sport: number
  dport: number
  start: number
  end: number
  octets: number
  packets: number
  rOctets: number
  rPackets: number
  flags: number
  rFlags: number
  reason: number
}

const CORE_NAMES = [
  'start',
  'end',
  'src',
  'dst',
  'sport',
  'dport',
  'proto',
  'ipVersion',
  'octets',
  'packets',
  'rOctets',
  'rPackets',
  'flags',
  'rFlags',
  'tos',
  'rTos',
  'minTtl',
  'maxTtl',
  'rMinTtl',
  'rMaxTtl',
  'icmp',
  'rIcmp',
  'reason',
  'biflow',
] as const

function harness(opts: Partial<FlowCacheOptions> = {}) {
  const core = new CoreFields()
  const records: Rec[] = []
  const onExpire = (id: number, flow: FlowView): void => {
    const w = new ValueWriter()
    core.write(id, flow, w, recordKind(id, flow) | core.recordKind(id))
    const r: Record<string, number | string> = {}
    // The ICMP type/code pair is only in the records of ICMP and ICMPv6 flows (RecordKind.Icmp).
    const proto = w.values[CORE_NAMES.indexOf('proto')]
    const names =
      proto === 1 || proto === 58 ? CORE_NAMES : CORE_NAMES.filter((n) => n !== 'icmp' && n !== 'rIcmp')
    expect(w.values).toHaveLength(names.length)
    names.forEach((n, i) => (r[n] = w.values[i]!))
    records.push(r as unknown as Rec)
  }
  const cache = new FlowCache(
    { inactiveTimeout: 30, activeTimeout: 300, tcpEndLinger: 2, maxFlows: 1000, ...opts },
    [core],
    onExpire,
  )
  return { cache, records, core }
}

function ip4(s: string): number {
  return s.split('.').reduce((a, b) => a * 256 + Number(b), 0)
}

const pkt = new PacketInfo()
function tcp(src: string, sport: number, dst: string, dport: number, flags: number, len = 60): PacketInfo {
  pkt.reset()
  pkt.ipVersion = 4
  pkt.src[0] = ip4(src)
  pkt.dst[0] = ip4(dst)
  pkt.protocol = 6
  pkt.srcPort = sport
  pkt.dstPort = dport
  pkt.tcpFlags = flags
  pkt.ipLength = len
  pkt.ttl = 64
  return pkt
}
function udp(src: string, sport: number, dst: string, dport: number, len = 100): PacketInfo {
  const p = tcp(src, sport, dst, dport, 0, len)
  p.protocol = 17
  return p
}
const SYN = 0x02
const ACK = 0x10
const FIN = 0x01
const RST = 0x04
const S = 1e6 // µs per second

describe('FlowCache', () => {
  it('merges both directions into one biflow with the SYN sender as initiator', () => {
    const { cache, records } = harness()
    cache.update(tcp('10.0.0.2', 40000, '10.0.0.1', 80, SYN), 1 * S, 1)
    cache.update(tcp('10.0.0.1', 80, '10.0.0.2', 40000, SYN | ACK, 60), 1.1 * S, 1)
    cache.update(tcp('10.0.0.2', 40000, '10.0.0.1', 80, ACK, 52), 1.2 * S, 1)
    expect(cache.size).toBe(1)
    cache.flushAll()
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({
      src: '10.0.0.2',
      dst: '10.0.0.1',
      sport: 40000,
      dport: 80,
      octets: 112,
      packets: 2,
      rOctets: 60,
      rPackets: 1,
      flags: SYN | ACK,
      rFlags: SYN | ACK,
      start: 1000,
      end: 1200,
      reason: EndReason.ForcedEnd,
    })
  })

  it('takes the receiver of a SYN/ACK seen first as the initiator', () => {
    const { cache, records } = harness()
    cache.update(tcp('10.0.0.1', 80, '10.0.0.2', 40000, SYN | ACK), 1 * S, 1)
    cache.update(tcp('10.0.0.2', 40000, '10.0.0.1', 80, ACK), 2 * S, 1)
    cache.flushAll()
    expect(records[0]).toMatchObject({ src: '10.0.0.2', sport: 40000, packets: 1, rPackets: 1 })
  })

  it('turns a flow around when the SYN arrives after a packet of the other side', () => {
    const { cache, records } = harness()
    cache.update(tcp('10.0.0.1', 80, '10.0.0.2', 40000, ACK, 100), 1 * S, 1)
    cache.update(tcp('10.0.0.2', 40000, '10.0.0.1', 80, SYN, 60), 2 * S, 1)
    cache.flushAll()
    expect(records[0]).toMatchObject({ src: '10.0.0.2', sport: 40000, octets: 60, rOctets: 100 })
    expect(cache.counters.directionSwaps).toBe(1)
  })

  it('uses the first packet sender as initiator for UDP', () => {
    const { cache, records } = harness()
    cache.update(udp('192.168.1.9', 53, '192.168.1.1', 5353), 1 * S, 1)
    cache.update(udp('192.168.1.1', 5353, '192.168.1.9', 53), 1 * S, 1)
    cache.flushAll()
    expect(records[0]).toMatchObject({ src: '192.168.1.9', sport: 53, dport: 5353, packets: 1, rPackets: 1 })
  })

  it('exports idle flows after the inactive timeout', () => {
    const { cache, records } = harness({ inactiveTimeout: 30 })
    cache.update(udp('10.0.0.1', 1, '10.0.0.2', 2), 0, 1)
    cache.update(udp('10.0.0.3', 1, '10.0.0.4', 2), 20 * S, 1)
    cache.expireDue(29.999 * S)
    expect(records).toHaveLength(0)
    cache.expireDue(30 * S)
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({ src: '10.0.0.1', reason: EndReason.IdleTimeout })
    cache.expireDue(50 * S)
    expect(records).toHaveLength(2)
  })

  it('splits long flows at the active timeout and keeps the direction across records', () => {
    const { cache, records } = harness({ activeTimeout: 10, inactiveTimeout: 5 })
    for (let t = 0; t <= 25; t++) {
      cache.expireDue(t * S)
      cache.update(udp('10.0.0.1', 1000, '10.0.0.2', 2000), t * S, 1)
      cache.update(udp('10.0.0.2', 2000, '10.0.0.1', 1000), t * S + 1, 1)
    }
    cache.flushAll()
    expect(records.map((r) => r.reason)).toEqual([
      EndReason.ActiveTimeout,
      EndReason.ActiveTimeout,
      EndReason.ForcedEnd,
    ])
    expect(records.map((r) => r.packets)).toEqual([10, 10, 6])
    expect(records.every((r) => r.src === '10.0.0.1' && r.rPackets === r.packets)).toBe(true)
    expect(records[1]!.start).toBe(10_000)
  })

  it('drops the empty remainder of an actively exported flow when it goes idle', () => {
    const { cache, records } = harness({ activeTimeout: 10, inactiveTimeout: 30 })
    cache.update(udp('10.0.0.1', 1, '10.0.0.2', 2), 0, 1)
    cache.update(udp('10.0.0.1', 1, '10.0.0.2', 2), 5 * S, 1)
    cache.expireDue(10 * S)
    expect(records).toHaveLength(1)
    cache.expireDue(100 * S)
    cache.flushAll()
    expect(records).toHaveLength(1)
    expect(cache.size).toBe(0)
  })

  it('exports a TCP flow promptly after FIN from both sides, absorbing the last ACK', () => {
    const { cache, records } = harness({ tcpEndLinger: 2 })
    const c = (f: number, t: number): void =>
      cache.update(tcp('10.0.0.2', 40000, '10.0.0.1', 80, f), t * S, 1)
    const s = (f: number, t: number): void =>
      cache.update(tcp('10.0.0.1', 80, '10.0.0.2', 40000, f), t * S, 1)
    c(SYN, 0)
    s(SYN | ACK, 0.1)
    c(ACK, 0.2)
    c(FIN | ACK, 1)
    s(FIN | ACK, 1.1)
    c(ACK, 1.2)
    cache.expireDue(3.0 * S)
    expect(records).toHaveLength(0)
    cache.expireDue(3.1 * S)
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({ reason: EndReason.EndOfFlow, packets: 4, rPackets: 2 })
  })

  it('ends a flow on RST and starts a new one on a fresh SYN with the same ports', () => {
    const { cache, records } = harness()
    cache.update(tcp('10.0.0.2', 40000, '10.0.0.1', 80, SYN), 0, 1)
    cache.update(tcp('10.0.0.1', 80, '10.0.0.2', 40000, RST | ACK), 0.1 * S, 1)
    cache.update(tcp('10.0.0.2', 40000, '10.0.0.1', 80, SYN), 0.5 * S, 1)
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({ reason: EndReason.EndOfFlow, packets: 1, rPackets: 1 })
    cache.flushAll()
    expect(records).toHaveLength(2)
    expect(records[1]).toMatchObject({ packets: 1, rPackets: 0, start: 500 })
  })

  it('evicts the least recently seen flow with lackOfResources when full', () => {
    const { cache, records } = harness({ maxFlows: 3, initialCapacity: 2 })
    for (let i = 1; i <= 3; i++) cache.update(udp(`10.0.0.${i}`, 1, '10.0.1.1', 2), i * S, 1)
    cache.update(udp('10.0.0.1', 1, '10.0.1.1', 2), 4 * S, 1) // 10.0.0.1 is now the most recent
    cache.update(udp('10.0.0.9', 1, '10.0.1.1', 2), 5 * S, 1)
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({ src: '10.0.0.2', reason: EndReason.LackOfResources })
    expect(cache.size).toBe(3)
    expect(cache.counters.exportedByReason[EndReason.LackOfResources]).toBe(1)
  })

  it('matches a Map model under random creates, hits and expiries (index deletion stays sound)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 3 })), {
          maxLength: 400,
        }),
        (ops) => {
          const { cache, records, core } = harness({ inactiveTimeout: 2, maxFlows: 25, initialCapacity: 4 })
          const total = new Map<number, number>()
          let t = 0
          for (const [host, dt] of ops) {
            t += dt * S
            cache.expireDue(t)
            cache.update(udp(`10.1.0.${host}`, 1000 + host, '10.2.0.1', 53), t, 1)
            total.set(host, (total.get(host) ?? 0) + 1)
            expect(cache.size).toBeLessThanOrEqual(25)
          }
          cache.flushAll()
          const got = new Map<number, number>()
          for (const r of records) {
            const host = Number(r.src.split('.')[3])
            got.set(host, (got.get(host) ?? 0) + r.packets)
          }
          expect(got).toEqual(total)
          expect(core.packets).toBe(ops.length)
          expect(cache.size).toBe(0)
        },
      ),
      { seed: 42, numRuns: 200 },
    )
  })

  it('keeps every held flow findable under lookups, TCP restarts and evictions between find and insert', () => {
    // create() reuses the empty index slot where update()'s lookup stopped; a deletion in between (a fresh
    // SYN ending a closed flow, an eviction when full) or a lookup through has() must not leave it stale.
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            host: fc.integer({ min: 0, max: 30 }),
            flags: fc.constantFrom(0, SYN, SYN | ACK, ACK, RST | ACK, FIN | ACK),
            reply: fc.boolean(),
            probe: fc.integer({ min: 0, max: 30 }),
            dt: fc.integer({ min: 0, max: 3 }),
          }),
          { maxLength: 300 },
        ),
        (ops) => {
          const { cache, records, core } = harness({ inactiveTimeout: 5, maxFlows: 12, initialCapacity: 2 })
          const probe = new PacketInfo()
          let t = 0
          for (const op of ops) {
            t += op.dt * S
            cache.expireDue(t)
            // A lookup of some other flow first (the live service asks the previous generation this way).
            probe.reset()
            probe.ipVersion = 4
            probe.protocol = 6
            probe.src[0] = ip4(`10.3.0.${op.probe}`)
            probe.dst[0] = ip4('10.4.0.1')
            probe.srcPort = 2000 + op.probe
            probe.dstPort = 80
            cache.has(probe)
            const p = op.reply
              ? tcp('10.4.0.1', 80, `10.3.0.${op.host}`, 2000 + op.host, op.flags)
              : tcp(`10.3.0.${op.host}`, 2000 + op.host, '10.4.0.1', 80, op.flags)
            cache.update(p, t, 1)
            expect(cache.has(p)).toBe(true)
            expect(cache.size).toBeLessThanOrEqual(12)
          }
          cache.flushAll()
          expect(cache.size).toBe(0)
          expect(records.reduce((n, r) => n + r.packets + r.rPackets, 0)).toBe(ops.length)
          expect(core.packets).toBe(ops.length)
        },
      ),
      { seed: 7, numRuns: 200 },
    )
  })

  it('finds a flow restarted by a fresh SYN after a lookup of an absent flow', () => {
    // The lookup leaves the empty slot where it stopped; the SYN's update ends the closed flow (an index
    // deletion) and must not put the new flow into that stale slot.
    const { cache, records } = harness({ maxFlows: 1000 })
    let t = 0
    for (let x = 0; x < 64; x++) {
      t += S
      cache.update(tcp('10.5.0.1', 40000 + x, '10.6.0.1', 443, SYN), t, 1)
      cache.update(tcp('10.6.0.1', 443, '10.5.0.1', 40000 + x, RST | ACK), t + 1, 1)
      expect(cache.has(udp(`10.7.${x}.1`, 1, '10.7.0.2', 2))).toBe(false)
      const again = tcp('10.5.0.1', 40000 + x, '10.6.0.1', 443, SYN)
      cache.update(again, t + 2, 1)
      expect(cache.has(again)).toBe(true)
      cache.update(tcp('10.6.0.1', 443, '10.5.0.1', 40000 + x, SYN | ACK), t + 3, 1)
    }
    cache.flushAll()
    expect(records).toHaveLength(128)
    expect(records.filter((r) => r.packets === 1 && r.rPackets === 1)).toHaveLength(128)
  })

  it('grows from a small initial capacity to many flows', () => {
    const { cache, records } = harness({ maxFlows: 100_000, initialCapacity: 16 })
    for (let i = 0; i < 50_000; i++) {
      cache.update(udp(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 1, '10.255.0.1', 2), i, 1)
    }
    expect(cache.size).toBe(50_000)
    for (let i = 0; i < 50_000; i += 7) {
      cache.update(
        udp(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 1, '10.255.0.1', 2),
        60_000 + i,
        1,
      )
    }
    expect(cache.size).toBe(50_000)
    cache.flushAll()
    expect(records).toHaveLength(50_000)
    expect(records.reduce((n, r) => n + r.packets, 0)).toBe(50_000 + Math.ceil(50_000 / 7))
  })

  it('tells every feature after the first about flows and packets, skipping those without such work', () => {
    // The first feature of each list has a call site of its own; the others are called in a loop.
    const calls: string[] = []
    const recorder = (name: string, flags: { noPacketWork?: boolean; noFlowState?: boolean } = {}) =>
      ({
        name,
        ...flags,
        fields: () => [],
        resize: () => {},
        onCreate: (id: number, _p: PacketInfo, dir: Dir) => calls.push(`${name} create ${id} ${dir}`),
        onPacket: (id: number, _p: PacketInfo, dir: Dir) => calls.push(`${name} packet ${id} ${dir}`),
        onReset: (id: number) => calls.push(`${name} reset ${id}`),
        onSwap: (id: number) => calls.push(`${name} swap ${id}`),
        write: () => {},
      }) satisfies FlowFeature
    const cache = new FlowCache(
      { inactiveTimeout: 30, activeTimeout: 300, tcpEndLinger: 2, maxFlows: 10 },
      [
        recorder('a'),
        recorder('b'),
        recorder('c', { noPacketWork: true }),
        recorder('d', { noFlowState: true }),
      ],
      () => {},
    )
    cache.update(tcp('10.0.0.1', 1000, '10.0.0.2', 80, ACK), 0, 1)
    cache.update(tcp('10.0.0.2', 80, '10.0.0.1', 1000, ACK), 1, 1)
    // A late SYN from the responder turns the flow around.
    cache.update(tcp('10.0.0.2', 80, '10.0.0.1', 1000, SYN), 2, 1)
    expect(calls).toEqual([
      'a create 0 0',
      'b create 0 0',
      'c create 0 0',
      'a packet 0 0',
      'b packet 0 0',
      'd packet 0 0',
      'a packet 0 1',
      'b packet 0 1',
      'd packet 0 1',
      'a swap 0',
      'b swap 0',
      'c swap 0',
      'a packet 0 0',
      'b packet 0 0',
      'd packet 0 0',
    ])
  })

  it('reports initiator and responder addresses through the FlowView', () => {
    const seen: string[] = []
    const cache = new FlowCache(
      { inactiveTimeout: 30, activeTimeout: 300, tcpEndLinger: 2, maxFlows: 10 },
      [],
      (id, flow) => {
        const a = new Uint32Array(4)
        flow.address(id, Dir.Forward, a)
        seen.push(`${a[0]}:${flow.port(id, Dir.Forward)}>${flow.port(id, Dir.Reverse)}`)
      },
    )
    cache.update(udp('0.0.0.9', 9, '0.0.0.1', 1), 0, 1)
    cache.flushAll()
    expect(seen).toEqual(['9:9>1'])
  })
})
