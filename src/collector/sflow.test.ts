// sFlow v5 (sflow_version_5.txt) from hand-annotated bytes: a flow sample whose raw header is decoded by the
// probe's packet decoder and scaled by the sampling rate, a counter sample, sequence accounting, bad lengths.
import { describe, expect, it } from 'vitest'
import { recordToJson } from '../ipfix/decoder.js'
import { hex } from '../ipfix/testing.js'
import { FlowCollector } from './decode-message.js'
import type { SessionKey } from './session.js'

const KEY: SessionKey = {
  exporterAddress: '192.0.2.9',
  exporterPort: 50000,
  collectorAddress: '192.0.2.2',
  collectorPort: 6343,
  protocol: 'udp',
}

const HEADER = (seq: string, samples: string): string => `
  00000005             # sFlow version 5
  00000001 c0000209    # agent address IPv4 192.0.2.9
  00000000             # sub-agent 0
  ${seq}               # datagram sequence
  000003e8             # uptime 1000 ms
  ${samples}           # number of samples
`
// Ethernet + IPv4 + UDP 10.0.0.1:1000 -> 10.0.0.2:53, IP total length 0x0030 = 48.
const FRAME = `
  001122334455 66778899aabb 0800
  45 00 0030 1234 0000 40 11 0000 0a000001 0a000002
  03e8 0035 001c 0000
`
const FLOW_SAMPLE = `
  00000001 00000064    # flow sample (0:1), length 100
  00000007             # sample sequence 7
  00000003             # source id: type 0, index 3
  00000100             # sampling rate 256
  00010000             # sample pool 65536
  00000002             # drops 2
  00000003 00000004    # input 3, output 4
  00000001             # 1 record
  00000001 0000003c    # raw packet header (0:1), length 60
  00000001             # header protocol 1 = Ethernet
  0000003e             # frame length 62
  00000004             # stripped 4
  0000002a             # header length 42
  ${FRAME} 0000        # header + 2 octets of XDR padding
`
const COUNTER_SAMPLE = `
  00000002 0000006c    # counter sample (0:2), length 108
  00000009 00000003    # sample sequence 9, source id 3
  00000001             # 1 record
  00000001 00000058    # generic interface counters (0:1), length 88
  00000003 00000006 000000003b9aca00 00000001 00000003   # ifIndex 3, type 6, 1 Gb/s, full duplex, up
  0000000000000f46 0000001c ffffffff ffffffff 00000000 00000000 ffffffff  # in: octets 3910, ucast 28, ...
  0000000000000f6a 0000001d ffffffff ffffffff 00000000 00000000 00000000  # out: octets 3946, ucast 29, ...
`

describe('sFlow v5', () => {
  it('decodes a flow sample (packet header scaled by the rate) and a counter sample', () => {
    const col = new FlowCollector()
    const out = col.decode(hex(HEADER('00000001', '00000002') + FLOW_SAMPLE + COUNTER_SAMPLE), KEY, 0)
    expect(out.error).toBeUndefined()
    expect(out.records).toHaveLength(2)
    const flow = recordToJson(out.records[0]!)
    expect(flow).toMatchObject({
      exporterIPv4Address: '192.0.2.9',
      sflowDatagramSequence: 1,
      sflowSampleSequence: 7,
      samplingInterval: 256,
      samplingPopulation: 65536,
      ignoredPacketTotalCount: 2,
      ingressInterface: 3,
      egressInterface: 4,
      sourceMacAddress: '66:77:88:99:aa:bb',
      destinationMacAddress: '00:11:22:33:44:55',
      sourceIPv4Address: '10.0.0.1',
      destinationIPv4Address: '10.0.0.2',
      protocolIdentifier: 17,
      sourceTransportPort: 1000,
      destinationTransportPort: 53,
      packetDeltaCount: 256,
      octetDeltaCount: 48 * 256,
      ipTotalLength: 48,
    })
    expect(out.records[1]!.isOptions).toBe(true)
    expect(recordToJson(out.records[1]!)).toMatchObject({
      ifIndex: 3,
      ifSpeed: 1_000_000_000,
      ifStatus: 3,
      ifInOctets: 3910,
      ifInUcastPkts: 28,
      ifOutOctets: 3946,
      ifOutUcastPkts: 29,
      ifPromiscuousMode: 0,
    })
  })

  it('accounts datagram sequence numbers per agent and sub-agent', () => {
    const col = new FlowCollector()
    col.decode(hex(HEADER('00000001', '00000000')), KEY, 0)
    col.decode(hex(HEADER('00000004', '00000000')), KEY, 0)
    expect(col.sessions.values().next().value!.sequence('sflow/192.0.2.9', 0).stats.lost).toBe(2)
  })

  it('stops at a sample longer than the datagram, keeping the samples before it', () => {
    const col = new FlowCollector()
    const bad = HEADER('00000001', '00000002') + FLOW_SAMPLE + '00000002 00000fff 00000009'
    const out = col.decode(hex(bad), KEY, 0)
    expect(out.records).toHaveLength(1)
    expect(out.error).toBe('sflow_sample_overrun')
    // A sample count far beyond what is there: bounded, counted.
    expect(col.decode(hex(HEADER('00000002', 'ffffffff')), KEY, 0).error).toBe('sflow_truncated_sample')
  })
})
