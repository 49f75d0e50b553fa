// Conformance of the exported IPFIX stream (RFC 7011, reference/standards.md §1): deterministic bytes,
// Sequence Numbers (§3.1), templates before data and periodic refresh over UDP by time and by message
// count without withdrawals (§8, §8.4), and the §4.1/§4.3 statistics options records.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eth, ipv4 } from '../helpers/packet-builder.js'
import {
  decodeStream,
  flowRecords,
  isTemplateOnly,
  num,
  runToMemory,
  runToUdp,
  S,
  setsOf,
  T0,
  tempDir,
  workload,
  writeCapture,
  type StreamMessage,
} from './harness.js'

let dir = ''
let cleanup: () => Promise<void> = () => Promise.resolve()
let mixed = '' // 3000 flows over 120 s, every 4th over IPv6
beforeAll(async () => {
  ;({ dir, cleanup } = await tempDir())
  mixed = await writeCapture(dir, 'mixed.pcap', workload(3000, 120, 4))
})
afterAll(() => cleanup())

const BASE = { inactiveTimeout: 5, activeTimeout: 30, statsIntervalSeconds: 15 }

/** Asserts the Sequence Number rule over a whole stream and returns the data-record count. */
function checkSequence(msgs: readonly StreamMessage[], first = 0): number {
  let sent = first
  for (const [i, m] of msgs.entries()) {
    expect(m.header.sequence, `message ${i}`).toBe(sent % 2 ** 32)
    sent += m.records.length
  }
  return sent - first
}

describe('determinism', () => {
  it('gives byte-identical IPFIX messages for the same capture', async () => {
    const a = await runToMemory([mixed], BASE)
    const b = await runToMemory([mixed], BASE)
    expect(a.messages.length).toBeGreaterThan(10)
    expect(b.messages.map((m) => Buffer.from(m).toString('hex'))).toEqual(
      a.messages.map((m) => Buffer.from(m).toString('hex')),
    )
    // Export Time follows packet time, not the wall clock.
    const times = a.messages.map((m) => decodeStream([m]).msgs[0]!.header.exportTime)
    expect(Math.min(...times)).toBeGreaterThanOrEqual(T0 / S)
    expect(Math.max(...times)).toBeLessThanOrEqual(T0 / S + 122)
  })

  it('gives the same datagrams over real UDP as in memory', async () => {
    const mem = await runToMemory([mixed], BASE)
    const net = await runToUdp([mixed], '127.0.0.1', BASE)
    expect(net.messages.map((m) => Buffer.from(m).toString('hex'))).toEqual(
      mem.messages.map((m) => Buffer.from(m).toString('hex')),
    )
  })
})

describe('sequence numbers (RFC 7011 §3.1)', () => {
  it('counts the data records (options data records included) sent before each message', async () => {
    const { messages, summary } = await runToMemory([mixed], { ...BASE, templateRefreshSeconds: 10 })
    const { msgs, decoder } = decodeStream(messages)
    expect(decoder.counters).toEqual({})
    const total = checkSequence(msgs)
    expect(total).toBe(summary.export.records)
    // Template-only messages carry the count so far and add nothing.
    const tpl = msgs.filter((m) => isTemplateOnly(m.bytes))
    expect(tpl.length).toBeGreaterThan(1)
    expect(tpl.every((m) => m.records.length === 0)).toBe(true)
    expect(msgs[0]!.header.sequence).toBe(0)
    expect(isTemplateOnly(msgs[0]!.bytes)).toBe(true)
    // Options data records count: some data messages carry them.
    expect(msgs.some((m) => m.records.some((r) => r.isOptions))).toBe(true)
    expect(flowRecords(msgs)).toHaveLength(
      summary.export.records - msgs.flatMap((m) => m.records).filter((r) => r.isOptions).length,
    )
  })

  it('holds with the observation domain set and over real UDP', async () => {
    const { messages } = await runToUdp([mixed], '127.0.0.1', { ...BASE, observationDomainId: 77 })
    const { msgs } = decodeStream(messages)
    checkSequence(msgs)
    expect(msgs.every((m) => m.header.odid === 77)).toBe(true)
  })
})

describe('templates (RFC 7011 §8, §8.4)', () => {
  it('sends templates before the data that uses them and never withdraws over UDP', async () => {
    const { messages } = await runToMemory([mixed], BASE)
    const known = new Set<number>()
    for (const m of messages) {
      for (const s of setsOf(m)) {
        if (s.setId === 2 || s.setId === 3) {
          for (const t of s.templates) {
            expect(t.fieldCount, `withdrawal of ${t.id}`).toBeGreaterThan(0)
            expect(t.id).toBeGreaterThanOrEqual(256)
            known.add(t.id)
          }
        } else {
          expect(s.setId).toBeGreaterThanOrEqual(256)
          expect(known.has(s.setId), `data set ${s.setId} before its template`).toBe(true)
        }
      }
    }
    // IPv4 and IPv6 flow templates with 8- and 4-octet counters, three statistics options templates.
    expect([...known].sort((a, b) => a - b)).toEqual([256, 257, 296, 297, 65533, 65534, 65535])
  })

  it('re-sends every template each templateRefreshSeconds of packet time', async () => {
    const { messages } = await runToMemory([mixed], { ...BASE, templateRefreshSeconds: 10 })
    const { msgs } = decodeStream(messages)
    const sends = msgs.filter((m) => isTemplateOnly(m.bytes))
    // Every refresh carries the whole set of templates.
    for (const m of sends) expect(m.decoded.templates).toBe(7)
    const times = sends.map((m) => m.header.exportTime)
    // 120 s of traffic: the initial send and about one refresh every 10 s.
    expect(times.length).toBeGreaterThanOrEqual(12)
    expect(times.length).toBeLessThanOrEqual(14)
    for (let i = 1; i < times.length; i++) {
      const gap = times[i]! - times[i - 1]!
      expect(gap).toBeGreaterThanOrEqual(10)
      expect(gap).toBeLessThanOrEqual(12)
    }
    // No data message leaves more than the interval (+ tick granularity) after the last template send.
    let last = times[0]!
    for (const m of msgs) {
      if (isTemplateOnly(m.bytes)) last = m.header.exportTime
      else expect(m.header.exportTime - last).toBeLessThanOrEqual(11)
    }
  })

  it.each([1, 3, 7])('re-sends every template after every %i data messages', async (n) => {
    const { messages } = await runToMemory([mixed], {
      ...BASE,
      templateRefreshSeconds: 86400,
      templateRefreshMessages: n,
    })
    const kinds = messages.map((m) => (isTemplateOnly(m) ? 'T' : 'D')).join('')
    expect(kinds.startsWith('T')).toBe(true)
    const runs = kinds.split('T').filter((r) => r !== '')
    expect(runs.length).toBeGreaterThan(3)
    // Exactly n data messages between template sends (the last run may be shorter).
    runs.slice(0, -1).forEach((r) => expect(r.length).toBe(n))
    expect(runs.at(-1)!.length).toBeLessThanOrEqual(n)
    // The stream stays decodable and its sequence numbers are unaffected by the extra template messages.
    const { msgs, decoder } = decodeStream(messages)
    expect(decoder.counters).toEqual({})
    checkSequence(msgs)
  })

  it('sends templates once (no time or count refresh) when neither is due', async () => {
    const { messages } = await runToMemory([mixed], { ...BASE, templateRefreshSeconds: 86400 })
    expect(messages.filter(isTemplateOnly)).toHaveLength(1)
  })
})

describe('statistics options records (RFC 7011 §4.1, §4.3)', () => {
  it('reports exported messages, flow records and octets consistently with the stream', async () => {
    const { messages, summary } = await runToMemory([mixed], { ...BASE, observationDomainId: 9 })
    const { msgs } = decodeStream(messages)
    let dataMessages = 0
    let dataOctets = 0
    let flows = 0
    let meteringSeen = 0
    let reliabilitySeen = 0
    for (const m of msgs) {
      for (const r of m.records) {
        if (!r.isOptions) {
          flows++
          continue
        }
        if (r.templateId === 65533) {
          // Metering Process Statistics: scope observationDomainId; totals so far.
          meteringSeen++
          expect(r.json).toMatchObject({ observationDomainId: 9 })
          expect(num(r.json, 'exportedFlowRecordTotalCount')).toBe(flows)
          expect(num(r.json, 'exportedMessageTotalCount')).toBe(dataMessages)
          expect(num(r.json, 'exportedOctetTotalCount')).toBe(dataOctets)
        } else if (r.templateId === 65534) {
          // Exporting Process Reliability Statistics: scope exportingProcessId, nothing lost here.
          reliabilitySeen++
          expect(r.json).toMatchObject({
            exportingProcessId: process.pid,
            notSentFlowTotalCount: 0,
            notSentPacketTotalCount: 0,
            notSentOctetTotalCount: 0,
          })
        } else expect(r.templateId).toBe(65535)
      }
      if (!isTemplateOnly(m.bytes)) {
        dataMessages++
        dataOctets += m.bytes.byteLength
      }
    }
    // At the start, every 15 s of packet time, and at the end.
    expect(meteringSeen).toBeGreaterThanOrEqual(120 / 15 + 1)
    expect(reliabilitySeen).toBe(meteringSeen)
    // The last one carries the final totals.
    const last = msgs
      .flatMap((m) => m.records)
      .filter((r) => r.templateId === 65533)
      .at(-1)!
    expect(num(last.json, 'exportedFlowRecordTotalCount')).toBe(flows)
    expect(flows).toBe(summary.flows + (summary.endReasons.activeTimeout ?? 0))
  })

  it('reports ignored (malformed) packets in the Metering Process Reliability Statistics', async () => {
    const good = workload(20, 3)
    const bad = [1, 2, 3].map((i) => ({
      data: eth({}, ipv4({ totalLength: 400 }, new Uint8Array(10))).subarray(0, 30 + i),
      tsUs: T0 + i * S,
    }))
    const path = await writeCapture(dir, 'malformed.pcap', [...good, ...bad])
    const { messages, summary } = await runToMemory([path], BASE)
    const { msgs } = decodeStream(messages)
    const ignored = msgs.flatMap((m) => m.records).filter((r) => r.templateId === 65535)
    expect(ignored.length).toBeGreaterThanOrEqual(2)
    const final = ignored.at(-1)!.json
    expect(summary.malformedPackets).toBe(3)
    expect(final).toMatchObject({ ignoredPacketTotalCount: 3, ignoredOctetTotalCount: 31 + 32 + 33 })
    expect(final.observationTimeMilliseconds).toEqual([
      new Date((T0 + S) / 1000).toISOString(),
      new Date((T0 + 3 * S) / 1000).toISOString(),
    ])
  })

  it('sends no options templates or records with statistics off', async () => {
    const { messages } = await runToMemory([mixed], { ...BASE, statsIntervalSeconds: 0 })
    const { msgs } = decodeStream(messages)
    expect(msgs.some((m) => m.records.some((r) => r.isOptions))).toBe(false)
    expect(messages.flatMap(setsOf).some((s) => s.setId === 3)).toBe(false)
  })
})
