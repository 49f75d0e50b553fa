// NetFlow v9 packet writer (RFC 3954): templates before data and refreshed by time and by packet count,
// Count includes template records (§5.1), FlowSets padded to 4 octets (§5.3), packets within the size limit,
// one template per layout; every packet decoded by our collector (collector/netflow-v9.ts).
import { describe, expect, it } from 'vitest'
import { FlowCollector } from '../collector/decode-message.js'
import type { SessionKey } from '../collector/session.js'
import { recordToJson, type FieldValue } from './decoder.js'
import type { UniFlow } from './netflow-flows.js'
import { V9Writer, type NetflowClock } from './netflow-v9-writer.js'

const KEY: SessionKey = {
  exporterAddress: '192.0.2.1',
  exporterPort: 40000,
  collectorAddress: '192.0.2.2',
  collectorPort: 2055,
  protocol: 'udp',
}
const BOOT = 1_700_000_000_000

function clockAt(unixSecs: number): NetflowClock {
  return { unixSecs, sysUptime: unixSecs * 1000 - BOOT, uptimeOf: (ms) => ms - BOOT }
}

function flow(i: number, withPorts = true): UniFlow {
  const values = new Map<number, FieldValue>([
    [8, `10.0.${i >> 8}.${i & 255}`],
    [12, '192.0.2.9'],
    [4, withPorts ? 6 : 1],
    [1, BigInt(100 + i)],
    [2, 1n],
  ])
  if (withPorts) {
    values.set(7, 1000 + i)
    values.set(11, 80)
  }
  return { values, startMs: BOOT + 1000 + i, endMs: BOOT + 2000 + i, reverse: false }
}

interface Packet {
  count: number
  sequence: number
  flowSets: { id: number; length: number }[]
  length: number
}

function parse(p: Buffer): Packet {
  const flowSets: { id: number; length: number }[] = []
  for (let o = 20; o + 4 <= p.length;) {
    const length = p.readUInt16BE(o + 2)
    flowSets.push({ id: p.readUInt16BE(o), length })
    if (length < 4) break
    o += length
  }
  return { count: p.readUInt16BE(2), sequence: p.readUInt32BE(12), flowSets, length: p.length }
}

describe('NetFlow v9 writer', () => {
  it('sends templates first, fills packets within the size, pads FlowSets, and our collector decodes all', () => {
    const w = new V9Writer({ maxPacketSize: 300, refreshSeconds: 600, refreshPackets: 0 })
    const out: Buffer[] = []
    const flows = Array.from({ length: 40 }, (_, i) => flow(i, i % 3 !== 0))
    w.write(flows, clockAt(BOOT / 1000 + 5), 42, (p) => out.push(Buffer.from(p)))
    const packets = out.map(parse)
    expect(packets[0]?.flowSets.map((s) => s.id)).toEqual([0]) // both templates, in one template packet
    expect(packets[0]?.count).toBe(2)
    expect(packets.map((p) => p.sequence)).toEqual(packets.map((_, i) => i))
    for (const p of packets) {
      expect(p.length).toBeLessThanOrEqual(300)
      for (const s of p.flowSets) expect(s.length % 4).toBe(0)
      expect(p.flowSets.reduce((n, s) => n + s.length, 20)).toBe(p.length)
    }
    const col = new FlowCollector()
    const recs = out.flatMap((p) => col.decode(p, KEY, BOOT + 10_000).records)
    expect(recs).toHaveLength(40)
    expect(recs.every((r) => r.version === 9 && r.odid === 42)).toBe(true)
    const r7 = recs.map((r) => recordToJson(r)).find((r) => r['sourceIPv4Address'] === '10.0.0.7')
    expect(r7).toMatchObject({
      octetDeltaCount: 107,
      sourceTransportPort: 1007,
      flowStartMilliseconds: new Date(BOOT + 1007).toISOString(),
      flowEndMilliseconds: new Date(BOOT + 2007).toISOString(),
    })
    // Data counts: every data record is in some packet's Count; templates count too (§5.1).
    expect(packets.reduce((n, p) => n + p.count, 0)).toBe(40 + 2)
    expect(col.allCounters()['no_template'] ?? 0).toBe(0)
    expect(w.templateSends).toBe(2)
  })

  it('resends all templates after refreshSeconds of export time, and after refreshPackets packets', () => {
    const byTime = new V9Writer({ maxPacketSize: 1400, refreshSeconds: 60, refreshPackets: 0 })
    const t0 = BOOT / 1000
    const templatePackets = (w: V9Writer, times: number[]): number[] => {
      const seen: number[] = []
      times.forEach((t, i) =>
        w.write([flow(i)], clockAt(t), 1, (p) => {
          if (p.readUInt16BE(20) === 0) seen.push(t)
        }),
      )
      return seen
    }
    expect(templatePackets(byTime, [t0, t0 + 30, t0 + 59, t0 + 60, t0 + 100, t0 + 121])).toEqual([
      t0,
      t0 + 60,
      t0 + 121,
    ])
    const byPackets = new V9Writer({ maxPacketSize: 1400, refreshSeconds: 86400, refreshPackets: 4 })
    // Each write is one data packet; after 4 packets without templates, the next write resends them first.
    const times = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((x) => t0 + x)
    expect(templatePackets(byPackets, times)).toEqual([t0 + 1, t0 + 5, t0 + 9])
  })

  it('states its own totals in an options record (scope System) that our collector decodes', () => {
    const w = new V9Writer({ maxPacketSize: 1400, refreshSeconds: 600, refreshPackets: 0 })
    const out: Buffer[] = []
    const clock = clockAt(BOOT / 1000 + 1)
    w.write([flow(1), flow(2), flow(3)], clock, 9, (p) => out.push(p))
    const before = { octets: w.octets, packets: w.packets }
    w.writeStats(clock, 9, (p) => out.push(p))
    const col = new FlowCollector()
    const recs = out.flatMap((p) => col.decode(p, KEY, BOOT + 10_000).records)
    const opt = recs.filter((r) => r.isOptions)
    expect(opt).toHaveLength(1)
    expect(opt[0]?.scopeCount).toBe(1)
    expect(recordToJson(opt[0]!)).toMatchObject({
      exportedOctetTotalCount: before.octets,
      exportedMessageTotalCount: before.packets,
      exportedFlowRecordTotalCount: 3,
    })
    expect(before).toEqual({ octets: out[0]!.length + out[1]!.length, packets: 2 })
  })

  it('caps the number of templates and counts flows it cannot describe', () => {
    const w = new V9Writer({ maxPacketSize: 1400, refreshSeconds: 600, refreshPackets: 0, maxTemplates: 1 })
    const out: Buffer[] = []
    w.write([flow(1, true), flow(2, false), flow(3, true)], clockAt(BOOT / 1000), 1, (p) => out.push(p))
    expect(w.flows).toBe(2)
    expect(w.counters).toEqual({ template_limit: 1 })
  })
})
