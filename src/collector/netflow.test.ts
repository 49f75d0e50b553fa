// NetFlow v9 (RFC 3954) and v5 decoding from hand-annotated bytes, incl. the standards §5.3 #48–53 cases.
import { describe, expect, it } from 'vitest'
import { recordToJson } from '../ipfix/decoder.js'
import { hex } from '../ipfix/testing.js'
import { FlowCollector, type CollectedRecord } from './decode-message.js'
import { decodeV5, uptimeToUnixMs } from './netflow-v5.js'
import { splitRaw } from './offline-reader.js'
import type { SessionKey } from './session.js'

const UDP: SessionKey = {
  exporterAddress: '192.0.2.1',
  exporterPort: 2055,
  collectorAddress: '192.0.2.2',
  collectorPort: 2055,
  protocol: 'udp',
}
const NOW = 1_700_000_000_000

const json = (r: CollectedRecord | undefined): Record<string, unknown> => {
  expect(r).toBeDefined()
  return recordToJson(r!)
}

// Header: version 9, count 2, sysUpTime 10 000 ms, UNIX secs 1 700 000 000, sequence 7, source id 42.
const V9_HEADER = `
  0009 0002            # version 9, count 2 (template + data record; not trusted)
  00002710             # sysUpTime 10000 ms
  6553f100             # UNIX secs 1700000000
  00000007             # package sequence 7
  0000002a             # source id 42
`
const V9_TEMPLATE = `
  0000 0020            # FlowSet 0 (template), length 32
  0100 0006            # template 256, 6 fields
  0008 0004            # IPV4_SRC_ADDR (8), 4
  000c 0004            # IPV4_DST_ADDR (12), 4
  0001 0004            # IN_BYTES (1), 4 (reduced size)
  0016 0004            # FIRST_SWITCHED (22), 4
  0015 0004            # LAST_SWITCHED (21), 4
  9c40 ffff            # 40000 = ASA username (vendor type, PEN 2^32-1 id 7232), variable length
`
const V9_DATA = `
  0100 0020            # FlowSet 256, length 32
  0a000001 0a000002    # 10.0.0.1 -> 10.0.0.2
  000005dc             # 1500 bytes
  00000fa0             # first 4000 ms uptime
  00002328             # last 9000 ms uptime
  05 616c696365        # "alice"
  0000                 # padding to 4 octets (4 + 26 + 2 = 32)
`

describe('NetFlow v9', () => {
  it('decodes a template and data: source id as domain, absolute times, vendor types, varlen', () => {
    const col = new FlowCollector()
    const out = col.decode(hex(V9_HEADER + V9_TEMPLATE + V9_DATA), UDP, NOW)
    expect(out.error).toBeUndefined()
    expect(out.events).toHaveLength(1)
    expect(out.records).toHaveLength(1)
    const r = out.records[0]!
    expect(r.version).toBe(9)
    expect(r.odid).toBe(42)
    expect(r.templateId).toBe(256)
    expect(json(r)).toEqual({
      sourceIPv4Address: '10.0.0.1',
      destinationIPv4Address: '10.0.0.2',
      octetDeltaCount: 1500,
      flowStartSysUpTime: 4000,
      flowEndSysUpTime: 9000,
      // ASA NSEL 40000: the libfds name clashes with IANA userName (371), so it is qualified by its PEN.
      'userName@4294967295': 'alice',
      // 1 700 000 000 000 − (10 000 − 4 000) and − (10 000 − 9 000)
      flowStartMilliseconds: new Date(1_700_000_000_000 - 6000).toISOString(),
      flowEndMilliseconds: new Date(1_700_000_000_000 - 1000).toISOString(),
    })
    expect(r.fields.find((f) => f.id === 7232)?.pen).toBe(4294967295)
    expect(col.allCounters()['v9_varlen_field']).toBe(1)
  })

  it('handles the sysUpTime wrap (standards §5.3 #52)', () => {
    // sysUpTime 1000 ms, switched 0xFFFFFF00: the flow started 1256 ms earlier, before the 2^32 wrap.
    expect(uptimeToUnixMs(1_700_000_000_000, 1000, 0xffffff00)).toBe(1_700_000_000_000n - 1256n)
    // A time slightly after the header's uptime is not taken as 49.7 days earlier.
    expect(uptimeToUnixMs(1_700_000_000_000, 1000, 1500)).toBe(1_700_000_000_500n)
  })

  it('keeps templates per source id and per exporter (§5.3 #22, #23)', () => {
    const col = new FlowCollector()
    col.decode(hex(V9_HEADER + V9_TEMPLATE), UDP, NOW)
    // Same data from source id 43: no template there, so it waits.
    const other = hex(V9_HEADER + V9_DATA)
    other[19] = 43
    expect(col.decode(other, UDP, NOW).records).toHaveLength(0)
    expect(col.decode(hex(V9_HEADER + V9_DATA), { ...UDP, exporterPort: 2056 }, NOW).records).toHaveLength(0)
    expect(col.decode(hex(V9_HEADER + V9_DATA), UDP, NOW).records).toHaveLength(1)
    expect(col.allCounters()['no_template']).toBe(2)
  })

  it('decodes options templates: scope lengths in octets, scope types, zero scope accepted', () => {
    const col = new FlowCollector()
    const msg = hex(`
      0009 0001 00002710 6553f100 00000001 00000000
      0001 0018          # FlowSet 1 (options template), length 24
      0101 0004 0008     # template 257, scope length 4, option length 8
      0002 0004          # scope: Interface (2), 4
      0022 0004          # SAMPLING_INTERVAL (34), 4
      0023 0001          # SAMPLING_ALGORITHM (35), 1
      0000               # padding
      0101 0010          # FlowSet 257, length 16
      00000003 00000064 02   # interface 3, interval 100, algorithm 2
      000000             # padding
    `)
    const out = col.decode(msg, UDP, NOW)
    expect(out.events[0]?.event).toBe('options-template')
    expect(out.records).toHaveLength(1)
    expect(out.records[0]!.isOptions).toBe(true)
    expect(json(out.records[0])).toEqual({ scopeInterface: 3, samplingInterval: 100, samplingAlgorithm: 2 })
  })

  it('rejects option lengths that are not multiples of 4 (FastNetMon CVE-2026-48684, §5.3 #49)', () => {
    const col = new FlowCollector()
    const msg = hex(`
      0009 0001 00002710 6553f100 00000001 00000000
      0001 000c 0101 0003 0004 0002 0004 0000   # scope length 3
    `)
    const out = col.decode(msg, UDP, NOW)
    expect(out.events).toHaveLength(0)
    expect(col.allCounters()['v9_options_bad_length']).toBe(1)
  })

  it('walks FlowSets by length whatever Count says, and stops at a bad length (§5.3 #48, #50)', () => {
    const col = new FlowCollector()
    const bytes = hex(V9_HEADER + V9_TEMPLATE + V9_DATA)
    bytes[3] = 200 // count 200
    expect(col.decode(bytes, UDP, NOW).records).toHaveLength(1)
    // A data FlowSet claiming more than is left: fault counted, nothing over-read, earlier sets kept.
    const bad = hex(V9_HEADER + V9_TEMPLATE + '0100 0400 0a000001')
    const out = col.decode(bad, UDP, NOW)
    expect(out.error).toBe('v9_flowset_overrun')
    expect(out.events).toHaveLength(1)
    // FlowSet length 0 must not loop.
    expect(col.decode(hex(V9_HEADER + '0100 0000 00000000'), UDP, NOW).error).toBe('v9_bad_flowset_length')
    // A record cut short by the FlowSet end: complete records before it are kept.
    const cut = hex(
      V9_HEADER +
        V9_DATA.replace('0100 0020', '0100 0035').replace('0000                 # padding', '#') +
        '0a000003 0a000004 00000001 00000002 00000003 05 6162', // 23 octets: the string is cut
    )
    expect(col.decode(cut, UDP, NOW).records).toHaveLength(1)
    expect(col.allCounters()['varlen_overrun']).toBe(1)
  })

  it('counts sequence gaps in packets per source id', () => {
    const col = new FlowCollector()
    const m = hex(V9_HEADER + V9_TEMPLATE)
    col.decode(m, UDP, NOW)
    m[15] = 10 // sequence 10 after 7: 2 packets lost
    col.decode(m, UDP, NOW)
    const seq = col.sessions.values().next().value!.sequence('v9', 42).stats
    expect(seq.lost).toBe(2)
    expect(seq.gapEvents).toBe(1)
  })
})

const V5 = `
  0005 0001            # version 5, count 1
  00002710             # SysUptime 10000 ms
  6553f100 000f4240    # unix 1700000000 s + 1 000 000 ns
  00000064             # flow_sequence 100
  01 02                # engine type 1, engine id 2
  4064                 # sampling: mode 1, interval 100
  c0a80001 c0a80002 00000000   # 192.168.0.1 -> 192.168.0.2, next hop 0.0.0.0
  0003 0004            # input 3, output 4
  0000000a 00000578    # 10 packets, 1400 octets
  00001388 00002328    # first 5000, last 9000
  d431 01bb            # ports 54321 -> 443
  00 1b 06 00          # pad, TCP flags 0x1b, protocol 6, tos 0
  fde8 0000            # src AS 65000, dst AS 0
  18 10 0000           # masks /24 /16, pad
`

describe('NetFlow v5', () => {
  it('decodes the header and a record into IPFIX elements', () => {
    const col = new FlowCollector()
    const out = col.decode(hex(V5), UDP, NOW)
    expect(out.error).toBeUndefined()
    const r = out.records[0]!
    expect(r.version).toBe(5)
    expect(r.odid).toBe(0x0102)
    expect(json(r)).toEqual({
      sourceIPv4Address: '192.168.0.1',
      destinationIPv4Address: '192.168.0.2',
      ipNextHopIPv4Address: '0.0.0.0',
      ingressInterface: 3,
      egressInterface: 4,
      packetDeltaCount: 10,
      octetDeltaCount: 1400,
      flowStartSysUpTime: 5000,
      flowEndSysUpTime: 9000,
      flowStartMilliseconds: new Date(1_700_000_000_001 - 5000).toISOString(),
      flowEndMilliseconds: new Date(1_700_000_000_001 - 1000).toISOString(),
      sourceTransportPort: 54321,
      destinationTransportPort: 443,
      tcpControlBits: 0x1b,
      protocolIdentifier: 6,
      ipClassOfService: 0,
      bgpSourceAsNumber: 65000,
      bgpDestinationAsNumber: 0,
      sourceIPv4PrefixLength: 24,
      destinationIPv4PrefixLength: 16,
      engineType: 1,
      engineId: 2,
      samplingAlgorithm: 1,
      samplingInterval: 100,
    })
  })

  it('rejects count 0, count 31 and a length that is not 24 + 48·count (§5.3 #53)', () => {
    const b = hex(V5)
    const zero = b.slice()
    zero[3] = 0
    expect(decodeV5(zero)).toEqual({ error: 'v5_bad_count' })
    const big = b.slice()
    big[3] = 31
    expect(decodeV5(big)).toEqual({ error: 'v5_bad_count' })
    expect(decodeV5(b.subarray(0, b.byteLength - 1))).toEqual({ error: 'v5_length_mismatch' })
    const col = new FlowCollector()
    col.decode(zero, UDP, NOW)
    expect(col.allCounters()['malformed_messages']).toBe(1)
  })

  it('counts lost flows by flow_sequence', () => {
    const col = new FlowCollector()
    const b = hex(V5)
    col.decode(b, UDP, NOW) // sequence 100, 1 flow
    b[19] = 110 // sequence 110: flows 101..109 lost
    col.decode(b, UDP, NOW)
    expect(col.sessions.values().next().value!.sequence('v5', 0x0102).stats.lost).toBe(9)
  })

  it('splits v5 datagrams stored back to back in a raw file', () => {
    const one = hex(V5)
    const two = new Uint8Array(one.byteLength * 2)
    two.set(one, 0)
    two.set(one, one.byteLength)
    expect(splitRaw(two, () => {})).toHaveLength(2)
  })
})

describe('NetFlow v9 options templates without scope', () => {
  it('are still options templates (Juniper SRX sends scope length 0; RFC 5153 §10.1)', () => {
    const col = new FlowCollector()
    const out = col.decode(
      hex(`0009 0001 00002710 6553f100 00000001 00000000
        0001 0010 0102 0000 0004 0022 0004 0000   # options template 258: no scope, SAMPLING_INTERVAL
        0102 0008 00000400                        # data: 1024`),
      UDP,
      NOW,
    )
    expect(out.events[0]?.event).toBe('options-template')
    expect(out.records[0]?.isOptions).toBe(true)
    expect(json(out.records[0])).toEqual({ samplingInterval: 1024 })
    expect(col.allCounters()['v9_options_zero_scope']).toBe(1)
  })
})
