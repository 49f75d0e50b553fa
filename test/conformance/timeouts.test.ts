// Conformance: flow expiry end to end (synthetic pcap → runProbe → IPFIX → decoder). flowEndReason per
// RFC 5102 §5.11.3 / RFC 5470 §5.1.1: idle (1) exactly at the inactive timeout in packet time, active (2)
// splits that partition the packets, end of flow (3) after FIN both ways or RST plus the linger, end of
// input (4), and lack of resources (5) for the least recently seen flow of a full cache.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BuilderPacket } from '../helpers/pcap-builder.js'
import { TCP } from '../helpers/packet-builder.js'
import {
  decodeStream,
  flowRecords,
  ipLength,
  ms,
  num,
  runToMemory,
  S,
  T0,
  tcpPacket,
  tempDir,
  udpPacket,
  writeCapture,
  type JsonRecord,
} from './harness.js'

const { SYN, ACK, FIN, RST, PSH } = TCP

let dir = ''
let cleanup: () => Promise<void> = () => Promise.resolve()
beforeAll(async () => {
  ;({ dir, cleanup } = await tempDir())
})
afterAll(() => cleanup())

let fileNo = 0
async function run(packets: BuilderPacket[], overrides: Parameters<typeof runToMemory>[1] = {}) {
  const path = await writeCapture(dir, `c${fileNo++}.pcap`, packets)
  const { summary, messages } = await runToMemory([path], { statsIntervalSeconds: 0, ...overrides })
  const { msgs, decoder } = decodeStream(messages)
  expect(decoder.counters).toEqual({})
  return { summary, records: flowRecords(msgs) }
}

const at = (seconds: number): number => T0 + Math.round(seconds * S)
const client = { ip: '192.0.2.10', port: 40000 }
const server = { ip: '198.51.100.20', port: 80 }
const marker = (seconds: number): BuilderPacket =>
  udpPacket({ ip: '203.0.113.99', port: 7 }, { ip: '203.0.113.98', port: 7 }, at(seconds))

/** A steady bidirectional UDP "clock" flow (every 250 ms, phase .3 s) that keeps packet time moving. */
function clock(from: number, to: number): BuilderPacket[] {
  const a = { ip: '10.250.0.1', port: 1111 }
  const b = { ip: '10.250.0.2', port: 2222 }
  const out: BuilderPacket[] = []
  for (let t = from; t <= to + 1e-9; t += 0.25) out.push(udpPacket(a, b, at(t)))
  return out
}

const by = (records: JsonRecord[], src: string): JsonRecord[] =>
  records.filter((r) => r.sourceIPv4Address === src || r.sourceIPv6Address === src)

describe('inactive timeout (flowEndReason 1)', () => {
  const flow = [
    udpPacket({ ip: '10.1.0.1', port: 5353 }, { ip: '10.1.0.2', port: 53 }, at(1.4)),
    udpPacket({ ip: '10.1.0.2', port: 53 }, { ip: '10.1.0.1', port: 5353 }, at(1.45)),
  ]

  it('exports an idle flow exactly when packet time reaches last packet + inactive timeout', async () => {
    // The clock's packets fall between whole seconds, so only an exact check sees the boundary.
    for (const [end, reason] of [
      [11.449999, 4],
      [11.45, 1],
    ] as const) {
      const { records } = await run([...flow, ...clock(0.3, end), marker(end)], { inactiveTimeout: 10 })
      const [r, ...rest] = by(records, '10.1.0.1')
      expect(rest).toHaveLength(0)
      expect(r).toMatchObject({ flowEndReason: reason, packetDeltaCount: 1, reversePacketDeltaCount: 1 })
      expect(ms(r!.flowStartMilliseconds)).toBe(at(1.4) / 1000)
      expect(ms(r!.flowEndMilliseconds)).toBe(at(1.45) / 1000)
    }
  })

  it('exports idle flows in the order their timeouts fall due, ahead of flows still running', async () => {
    const pk: BuilderPacket[] = [...clock(0.3, 40)]
    for (let i = 0; i < 5; i++) {
      const a = { ip: `10.2.0.${i + 1}`, port: 1000 + i }
      pk.push(udpPacket(a, { ip: '10.2.1.1', port: 53 }, at(5 - i * 0.5 + 0.01)))
    }
    const { records } = await run(pk, { inactiveTimeout: 10 })
    const idle = records.filter((r) => r.flowEndReason === 1)
    expect(idle.map((r) => r.sourceIPv4Address)).toEqual([
      '10.2.0.5',
      '10.2.0.4',
      '10.2.0.3',
      '10.2.0.2',
      '10.2.0.1',
    ])
    // The clock flow (still running) ends with the input, after every idle flow.
    expect(records.at(-1)).toMatchObject({ sourceIPv4Address: '10.250.0.1', flowEndReason: 4 })
  })
})

describe('active timeout (flowEndReason 2)', () => {
  /** A TCP connection with data both ways every 250 ms from 0.3 s, server first in each step. */
  function longTcp(until: number): BuilderPacket[] {
    const out = [
      tcpPacket(client, server, SYN, at(0.3)),
      tcpPacket(server, client, SYN | ACK, at(0.31)),
      tcpPacket(client, server, ACK, at(0.32)),
    ]
    for (let t = 0.55; t <= until + 1e-9; t += 0.25) {
      out.push(tcpPacket(server, client, PSH | ACK, at(t), 100))
      out.push(tcpPacket(client, server, ACK, at(t + 0.07), 0))
    }
    return out
  }

  it('splits a long flow into records that partition its packets, same initiator in each', async () => {
    const pk = longTcp(65)
    const { records } = await run(pk, { activeTimeout: 20, inactiveTimeout: 10 })
    const recs = by(records, client.ip)
    expect(recs.map((r) => r.flowEndReason)).toEqual([2, 2, 2, 4])
    // Same initiator (RFC 5103 §5: consistent across active-timeout splits) in every record.
    for (const r of recs)
      expect(r).toMatchObject({
        sourceIPv4Address: client.ip,
        destinationIPv4Address: server.ip,
        sourceTransportPort: client.port,
        destinationTransportPort: server.port,
        biflowDirection: 1,
      })
    // Expected partition: a record ends when packet time reaches its start + 20 s (checked before the
    // packet that crosses is counted), the next record starts with that packet.
    const times = pk.map((p) => p.tsUs).sort((a, b) => a - b)
    const starts: number[] = [times[0]!]
    for (const t of times) if (t >= starts.at(-1)! + 20 * S) starts.push(t)
    expect(recs.map((r) => ms(r.flowStartMilliseconds))).toEqual(starts.map((t) => t / 1000))
    recs.forEach((r, i) => {
      const next = starts[i + 1] ?? Infinity
      const inside = times.filter((t) => t >= starts[i]! && t < next)
      expect(ms(r.flowEndMilliseconds)).toBe(inside.at(-1)! / 1000)
      expect(num(r, 'packetDeltaCount') + num(r, 'reversePacketDeltaCount')).toBe(inside.length)
      if (r.flowEndReason === 2)
        expect(ms(r.flowEndMilliseconds) - ms(r.flowStartMilliseconds)).toBeLessThan(20_000)
    })
    // Counters per record add up to the totals, per direction.
    const fwd = pk.filter((p) => p.data[29] === 10) // IPv4 source 192.0.2.10: last octet at 14 + 15
    const rev = pk.filter((p) => p.data[29] !== 10)
    const sum = (f: string): number => recs.reduce((n, r) => n + num(r, f), 0)
    expect(sum('packetDeltaCount')).toBe(fwd.length)
    expect(sum('reversePacketDeltaCount')).toBe(rev.length)
    expect(sum('octetDeltaCount')).toBe(fwd.reduce((n, p) => n + ipLength(p), 0))
    expect(sum('reverseOctetDeltaCount')).toBe(rev.reduce((n, p) => n + ipLength(p), 0))
    // Only the first record carries the SYN.
    expect(recs.map((r) => num(r, 'tcpControlBits') & SYN)).toEqual([SYN, 0, 0, 0])
  })

  it('exports the record exactly when packet time reaches its start + active timeout', async () => {
    for (const [end, reasons] of [
      [20.299999, [4]],
      [20.3, [2]],
    ] as const) {
      const { records } = await run([...longTcp(20.2), marker(end)], {
        activeTimeout: 20,
        inactiveTimeout: 10,
      })
      expect(by(records, client.ip).map((r) => r.flowEndReason)).toEqual(reasons)
    }
  })
})

describe('end of flow (flowEndReason 3)', () => {
  function finExchange(t0: number, c: typeof client): BuilderPacket[] {
    return [
      tcpPacket(c, server, SYN, at(t0)),
      tcpPacket(server, c, SYN | ACK, at(t0 + 0.01)),
      tcpPacket(c, server, ACK, at(t0 + 0.02)),
      tcpPacket(c, server, PSH | ACK, at(t0 + 0.03), 300),
      tcpPacket(server, c, PSH | ACK, at(t0 + 0.04), 1200),
      tcpPacket(c, server, FIN | ACK, at(t0 + 1)),
      tcpPacket(server, c, FIN | ACK, at(t0 + 1.01)), // FIN both ways: closing from here
      tcpPacket(c, server, ACK, at(t0 + 1.02)), // the last ACK, absorbed by the linger
    ]
  }

  it('exports after FIN both ways plus the linger, with the final ACK in the record', async () => {
    // Closing at 3.01, linger 2 s: due at 5.01. A flow that closed keeps endOfFlow even when the input
    // ends before its linger does (the linger's exact timing is covered in src/flow/flow-cache.test.ts).
    for (const [end, reason] of [
      [5.009999, 3],
      [5.01, 3],
    ] as const) {
      const { records } = await run([...finExchange(2, client), ...clock(0.3, end), marker(end)], {
        tcpEndLinger: 2,
      })
      const [r, ...rest] = by(records, client.ip)
      expect(rest).toHaveLength(0)
      expect(r).toMatchObject({ flowEndReason: reason, packetDeltaCount: 5, reversePacketDeltaCount: 3 })
      expect(ms(r!.flowStartMilliseconds)).toBe(at(2) / 1000)
      expect(ms(r!.flowEndMilliseconds)).toBe(at(3.02) / 1000)
      expect(num(r!, 'tcpControlBits')).toBe(SYN | ACK | PSH | FIN)
      expect(num(r!, 'reverseTcpControlBits')).toBe(SYN | ACK | PSH | FIN)
    }
  })

  it('exports after an RST plus the linger; a fresh SYN on the same ports is a new flow', async () => {
    const pk = [
      tcpPacket(client, server, SYN, at(1)),
      tcpPacket(server, client, RST | ACK, at(1.001)),
      tcpPacket(client, server, SYN, at(1.5)), // new connection reusing the ports
      ...clock(0.3, 6),
    ]
    const { records } = await run(pk, { tcpEndLinger: 2 })
    const recs = by(records, client.ip)
    expect(recs).toHaveLength(2)
    expect(recs[0]).toMatchObject({ flowEndReason: 3, packetDeltaCount: 1, reversePacketDeltaCount: 1 })
    expect(ms(recs[0]!.flowEndMilliseconds)).toBe(at(1.001) / 1000)
    expect(recs[1]).toMatchObject({ flowEndReason: 4, packetDeltaCount: 1, reversePacketDeltaCount: 0 })
    expect(ms(recs[1]!.flowStartMilliseconds)).toBe(at(1.5) / 1000)
  })

  it('keeps a half-closed connection (FIN one way) until it goes idle', async () => {
    const pk = [
      tcpPacket(client, server, SYN, at(1)),
      tcpPacket(server, client, SYN | ACK, at(1.01)),
      tcpPacket(client, server, FIN | ACK, at(1.02)),
      ...clock(0.3, 20),
    ]
    const { records } = await run(pk, { tcpEndLinger: 2, inactiveTimeout: 10 })
    expect(by(records, client.ip)).toMatchObject([{ flowEndReason: 1, packetDeltaCount: 2 }])
  })

  it('delivers records in the order their expiry fell due, across end reasons', async () => {
    const c2 = { ip: '192.0.2.11', port: 40001 }
    const c3 = { ip: '192.0.2.12', port: 40002 }
    const pk = [
      ...clock(0.3, 30),
      // RST at 4.5 (due 6.5), idle UDP last at 2.0 (due 7.0 with inactive 5), FIN exchange closing at 5.81
      // (due 7.81), end of input for a flow started at 29.
      tcpPacket(c2, server, SYN, at(4.4)),
      tcpPacket(server, c2, RST | ACK, at(4.5)),
      udpPacket({ ip: '10.3.0.1', port: 5000 }, { ip: '10.3.0.2', port: 6000 }, at(2)),
      ...finExchange(4.8, c3),
      udpPacket({ ip: '10.4.0.1', port: 5000 }, { ip: '10.4.0.2', port: 6000 }, at(29)),
    ]
    const { records } = await run(pk, { tcpEndLinger: 2, inactiveTimeout: 5, activeTimeout: 300 })
    const order = records
      .filter((r) => r.sourceIPv4Address !== '10.250.0.1')
      .map((r) => [r.sourceIPv4Address, r.flowEndReason])
    expect(order).toEqual([
      ['192.0.2.11', 3],
      ['10.3.0.1', 1],
      ['192.0.2.12', 3],
      ['10.4.0.1', 4],
    ])
  })

  it('keeps that order when several timeouts fall due between two packets', async () => {
    const c2 = { ip: '192.0.2.11', port: 40001 }
    const pk = [
      udpPacket({ ip: '10.3.0.1', port: 5000 }, { ip: '10.3.0.2', port: 6000 }, at(1.4)), // idle due 6.4
      tcpPacket(c2, server, SYN, at(4.4)),
      tcpPacket(server, c2, RST | ACK, at(4.5)), // end of flow due 6.5
      udpPacket({ ip: '10.3.0.3', port: 5000 }, { ip: '10.3.0.2', port: 6000 }, at(1.45)), // idle due 6.45
      marker(10),
    ]
    const { records } = await run(pk, { tcpEndLinger: 2, inactiveTimeout: 5 })
    expect(records.map((r) => [r.sourceIPv4Address, r.flowEndReason])).toEqual([
      ['10.3.0.1', 1],
      ['10.3.0.3', 1],
      ['192.0.2.11', 3],
      ['203.0.113.99', 4],
    ])
  })
})

describe('end of input (flowEndReason 4) and lack of resources (5)', () => {
  it('flushes every flow still in the cache at the end of the input, oldest first', async () => {
    const pk = [0, 1, 2].map((i) =>
      udpPacket({ ip: `10.5.0.${i + 1}`, port: 100 }, { ip: '10.5.1.1', port: 200 }, at(1 + i)),
    )
    const { records, summary } = await run(pk)
    expect(records.map((r) => [r.sourceIPv4Address, r.flowEndReason])).toEqual([
      ['10.5.0.1', 4],
      ['10.5.0.2', 4],
      ['10.5.0.3', 4],
    ])
    expect(summary.endReasons).toEqual({ forcedEnd: 3 })
  })

  it('evicts the least recently seen flow when the cache is full', async () => {
    const f = (n: number, t: number): BuilderPacket =>
      udpPacket({ ip: `10.6.0.${n}`, port: 100 }, { ip: '10.6.1.1', port: 200 }, at(t))
    // maxFlows 3: F1 F2 F3, F1 again (F2 is now least recently seen), F4 evicts F2, F5 evicts F3.
    const pk = [f(1, 1), f(2, 2), f(3, 3), f(1, 3.5), f(4, 4), f(5, 5)]
    const { records, summary } = await run(pk, { maxFlows: 3 })
    expect(records.map((r) => [r.sourceIPv4Address, r.flowEndReason, r.packetDeltaCount])).toEqual([
      ['10.6.0.2', 5, 1],
      ['10.6.0.3', 5, 1],
      ['10.6.0.1', 4, 2],
      ['10.6.0.4', 4, 1],
      ['10.6.0.5', 4, 1],
    ])
    expect(ms(records[0]!.flowEndMilliseconds)).toBe(at(2) / 1000)
    expect(summary.endReasons).toEqual({ lackOfResources: 2, forcedEnd: 3 })
    expect(summary.peakActiveFlows).toBe(3)
  })
})
