// FlowRecords: the template of each record kind (docs/elements.md), here the reduced-size counters
// (RecordKind.Counters32, RFC 7011 §6.2): 4-octet counters exactly when all four fit in 32 bits.
import { describe, expect, it } from 'vitest'
import { PacketInfo } from '../decode/packet.js'
import { IpfixDecoder, recordToJson } from '../ipfix/decoder.js'
import { IpfixExporter } from '../ipfix/exporter.js'
import { MemoryTransport } from '../ipfix/testing.js'
import { createFieldGroups } from './fields/index.js'
import { FlowCache } from './flow-cache.js'
import { COUNTERS32_ID_OFFSET, FlowRecords, flowTemplateId } from './flow-records.js'

const COUNTERS = ['octetDeltaCount', 'packetDeltaCount', 'reverseOctetDeltaCount', 'reversePacketDeltaCount']
const S = 1e6

function meter() {
  const mem = new MemoryTransport('mem', true)
  let nowS = 1000
  const exporter = new IpfixExporter(
    {
      observationDomainId: 1,
      maxMessageSize: 1472,
      templateRefreshSeconds: 600,
      templateRefreshMessages: 0,
      statsIntervalSeconds: 0,
      now: () => nowS,
    },
    [mem],
  )
  const features = createFieldGroups(undefined)
  const records = new FlowRecords(features, exporter)
  const cache = new FlowCache(
    { inactiveTimeout: 30, activeTimeout: 300, tcpEndLinger: 2, maxFlows: 100 },
    features,
    records.write,
  )
  const pkt = new PacketInfo()
  /** `n` UDP packets of `len` octets from 10.0.0.1:`sport` (or back to it, `reverse`) at second `t`. */
  const send = (sport: number, n: number, len: number, t: number, reverse = false): void => {
    for (let i = 0; i < n; i++) {
      pkt.reset()
      pkt.ipVersion = 4
      pkt.src[0] = reverse ? 0x0a000002 : 0x0a000001
      pkt.dst[0] = reverse ? 0x0a000001 : 0x0a000002
      pkt.protocol = 17
      pkt.srcPort = reverse ? 53 : sport
      pkt.dstPort = reverse ? sport : 53
      pkt.ipLength = len
      pkt.ttl = 64
      cache.update(pkt, t * S, 0)
    }
  }
  const finish = async () => {
    cache.flushAll()
    nowS = 2000
    await exporter.close()
    const decoder = new IpfixDecoder({ transport: 'udp' })
    const recs = mem.messages.flatMap((m) => decoder.decode(m).records).filter((r) => !r.isOptions)
    return recs.map((r) => ({ templateId: r.templateId, json: recordToJson(r) }))
  }
  return { records, send, finish }
}

describe('FlowRecords: reduced-size counters (RecordKind.Counters32)', () => {
  it('writes 4-octet counters when all four fit in 32 bits and 8-octet ones otherwise, with exact values', async () => {
    const { records, send, finish } = meter()
    // 65537 · 65535 = 2^32 − 1: the largest count that fits.
    send(1001, 65537, 65535, 1)
    // One octet more in the forward direction: 8 octets.
    send(1002, 65537, 65535, 1)
    send(1002, 1, 21, 2)
    // The reverse direction alone over 2^32: 8 octets too.
    send(1003, 1, 100, 1)
    send(1003, 65537, 65535, 2, true)
    send(1003, 1, 21, 3, true)
    // A small flow in both directions.
    send(1004, 2, 100, 1)
    send(1004, 1, 40, 2, true)
    const recs = await finish()
    const bySport = new Map(recs.map((r) => [r.json['sourceTransportPort'], r]))
    expect(recs).toHaveLength(4)

    const counters = (r: { json: Record<string, unknown> } | undefined): unknown[] =>
      COUNTERS.map((k) => r?.json[k])
    expect(bySport.get(1001)?.templateId).toBe(flowTemplateId(4, 8))
    expect(counters(bySport.get(1001))).toEqual([2 ** 32 - 1, 65537, 0, 0])
    expect(bySport.get(1002)?.templateId).toBe(flowTemplateId(4, 0))
    expect(counters(bySport.get(1002))).toEqual([2 ** 32 + 20, 65538, 0, 0])
    expect(bySport.get(1003)?.templateId).toBe(flowTemplateId(4, 0))
    expect(counters(bySport.get(1003))).toEqual([100, 1, 2 ** 32 + 20, 65538])
    expect(bySport.get(1004)?.templateId).toBe(flowTemplateId(4, 8))
    expect(counters(bySport.get(1004))).toEqual([200, 2, 40, 1])

    // The two templates differ only in the counters' lengths.
    const lengths = (fields: readonly { length: number }[]): number[] => fields.map((f) => f.length)
    const full = lengths(records.v4.fields)
    const small = lengths(records.v4Counters32.fields)
    const changed = full.flatMap((n, i) => (n !== small[i] ? [[n, small[i]]] : []))
    expect(changed).toEqual([
      [8, 4],
      [8, 4],
      [8, 4],
      [8, 4],
    ])
    expect(records.v4Counters32.fixedLength).toBe(records.v4.fixedLength - 16)
  })

  it('numbers the 32-bit-counter templates 40 above their 8-octet counterparts, clear of the other IDs', () => {
    expect(COUNTERS32_ID_OFFSET).toBe(40)
    const ids = [0, 1, 2, 3, 4, 5].flatMap((k) => [4, 6].map((v) => flowTemplateId(v as 4 | 6, k)))
    const small = [0, 1, 2, 3, 4, 5].flatMap((k) => [4, 6].map((v) => flowTemplateId(v as 4 | 6, k | 8)))
    expect(ids).toEqual([256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267])
    expect(small).toEqual(ids.map((id) => id + 40))
    // ARP 270, transactions 272-281 and the application options 290 stay free.
    for (const taken of [270, 272, 281, 290]) expect([...ids, ...small]).not.toContain(taken)
  })
})
