// Conformance of IPFIX over UDP to a real loopback collector (RFC 7011 §10.3): every datagram's message fits
// the MTU minus the IPv4 (28) or IPv6 (48) and UDP headers (§10.3.3), messages are well packed, every record
// arrives exactly once, export over IPv6 works, and IPv4 and IPv6 flows use their own templates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { UdpTransport } from '../../src/ipfix/transport-udp.js'
import { DEFAULT_PROBE_OPTIONS, runProbe } from '../../src/probe/probe.js'
import {
  decodeStream,
  flowRecords,
  isTemplateOnly,
  runToUdp,
  S,
  setsOf,
  startUdpCollector,
  T0,
  tempDir,
  udpPacket,
  workload,
  writeCapture,
} from './harness.js'

const FLOWS = 3000

let dir = ''
let cleanup: () => Promise<void> = () => Promise.resolve()
// FLOWS flows (every 3rd IPv6), one a millisecond, each idle-expired 1 s after it ends while a dense clock
// (every 250 µs) keeps packet time moving: records leave a few at a time, as on a live link. The collector
// runs in this process and reads only between capture batches, so bursts must stay well below a default
// socket buffer (212992 octets on common Linux hosts) for the test to be free of loss.
let burst = ''
beforeAll(async () => {
  ;({ dir, cleanup } = await tempDir())
  const marker = udpPacket({ ip: '203.0.113.99', port: 7 }, { ip: '203.0.113.98', port: 7 }, T0 + 5 * S)
  burst = await writeCapture(dir, 'burst.pcap', [...workload(FLOWS, FLOWS / 1000, 3, 250, 4.5), marker])
})
afterAll(() => cleanup())

const cases = [
  ['127.0.0.1', 28, [576, 1280, 1500, 9000]],
  ['::1', 48, [1280, 1500, 4000, 9000]],
] as const

describe.each(cases)('export to %s', (host, overhead, mtus) => {
  it.each(mtus)('mtu %i: messages fit, are well packed, and carry every record once', async (mtu) => {
    const { messages, summary } = await runToUdp([burst], host, { mtu, inactiveTimeout: 1 })
    const budget = mtu - overhead
    const { msgs, decoder } = decodeStream(messages)
    expect(decoder.counters).toEqual({})
    expect(summary.export.droppedRecords).toBe(0)
    let maxRecord = 0
    for (const m of messages) {
      expect(m.byteLength).toBeLessThanOrEqual(budget)
      expect(new DataView(m.buffer, m.byteOffset).getUint16(2)).toBe(m.byteLength)
      for (const s of setsOf(m)) for (const t of s.templates) maxRecord = Math.max(maxRecord, t.recordLength)
    }
    expect(maxRecord).toBeGreaterThan(50)
    // Well packed: a data message leaves early only when the next record (and a Set header) would not fit,
    // except the first (statistics at start-up), the last flow records and the final statistics.
    const data = messages.filter((m) => !isTemplateOnly(m))
    const underfull = data.filter((m) => m.byteLength + maxRecord + 4 <= budget)
    expect(underfull.length).toBeLessThanOrEqual(3)
    const dataOctets = data.reduce((n, m) => n + m.byteLength, 0)
    expect(data.length).toBeLessThanOrEqual(Math.ceil(dataOctets / (budget - maxRecord - 4)) + 3)
    // Every flow exactly once: each workload flow has its own source port.
    const flows = flowRecords(msgs)
    const ports = flows.map((r) => r.sourceTransportPort as number).filter((p) => p >= 10000)
    expect(ports).toHaveLength(FLOWS)
    expect(new Set(ports).size).toBe(FLOWS)
    expect(flows).toHaveLength(FLOWS + 2) // plus the clock and the marker
    expect(summary.export.records).toBe(msgs.reduce((n, m) => n + m.records.length, 0))
  })
})

describe('IPv4 and IPv6 flows in one stream', () => {
  it('uses one template per IP version, over IPv6 transport', async () => {
    const { messages } = await runToUdp([burst], '::1', { inactiveTimeout: 1 })
    const { msgs, decoder } = decodeStream(messages)
    expect(decoder.counters).toEqual({})
    const templates = new Map<number, number>()
    for (const m of messages)
      for (const s of setsOf(m))
        if (s.setId === 2) for (const t of s.templates) templates.set(t.id, t.recordLength)
    // With 8-octet counters (256, 257) and, for flows whose counters fit in 32 bits, 4-octet ones (296, 297).
    expect([...templates.keys()].sort()).toEqual([256, 257, 296, 297])
    expect(templates.get(257)! - templates.get(256)!).toBe(2 * 12) // two addresses, 16 instead of 4 octets
    expect(templates.get(297)! - templates.get(296)!).toBe(2 * 12)
    const recs = msgs.flatMap((m) => m.records.filter((r) => !r.isOptions))
    // Small flows: all in the templates with 4-octet counters.
    const v4 = recs.filter((r) => r.templateId === 296)
    const v6 = recs.filter((r) => r.templateId === 297)
    expect(v4.length + v6.length).toBe(recs.length)
    expect(v6).toHaveLength(FLOWS / 3)
    for (const r of v4) {
      expect(r.json).toHaveProperty('sourceIPv4Address')
      expect(r.json).not.toHaveProperty('sourceIPv6Address')
      expect(r.json.ipVersion).toBe(4)
    }
    for (const r of v6) {
      expect(r.json).toHaveProperty('sourceIPv6Address')
      expect(r.json).not.toHaveProperty('sourceIPv4Address')
      expect(r.json.ipVersion).toBe(6)
      expect(String(r.json.sourceIPv6Address)).toMatch(/^2001:db8:1::/)
    }
    // Both kinds share Data Sets' messages (one stream, one sequence).
    expect(msgs.some((m) => m.header.sets.includes(296) && m.header.sets.includes(297))).toBe(true)
  })
})

describe('a collector given by host name', () => {
  it('uses the IPv6 budget (mtu - 48) when the name resolves to an IPv6 address', async () => {
    const collector = await startUdpCollector('::1')
    try {
      const resolve = (): Promise<{ address: string; family: number }> =>
        Promise.resolve({ address: '::1', family: 6 })
      const t = new UdpTransport('collector.example', collector.port, { resolve, resolveIntervalMs: 0 })
      const mtu = 1439 // IPv4 budget 1411 fits the workload's 1392-octet messages, the IPv6 budget 1391 does not
      const summary = await runProbe({
        ...DEFAULT_PROBE_OPTIONS,
        inactiveTimeout: 1,
        mtu,
        reads: [burst],
        destinations: [],
        extraTransports: [t],
      })
      await collector.waitForCount(summary.export.messages + summary.export.templateSends)
      expect(Math.max(...collector.datagrams.map((d) => d.byteLength))).toBeLessThanOrEqual(mtu - 48)
      expect(flowRecords(decodeStream(collector.datagrams).msgs)).toHaveLength(FLOWS + 2)
      // Packed exactly as for the IPv6 literal.
      const literal = await runToUdp([burst], '::1', { inactiveTimeout: 1, mtu })
      const hex = (ms: readonly Uint8Array[]): string[] => ms.map((m) => Buffer.from(m).toString('hex'))
      expect(hex(collector.datagrams)).toEqual(hex(literal.messages))
    } finally {
      await collector.close()
    }
  })
})
