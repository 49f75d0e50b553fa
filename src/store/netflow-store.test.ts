// Rows from NetFlow v9 and v5 exports (not only our IPFIX): version, exporter, domain, absolute times from
// sysUpTime, and addresses in their columns.
import { describe, expect, it } from 'vitest'
import { FlowCollector } from '../collector/decode-message.js'
import { hex } from '../ipfix/testing.js'
import { normalize, rowToJson } from './normalize.js'

const key = {
  protocol: 'udp' as const,
  exporterAddress: '192.0.2.7',
  exporterPort: 2055,
  collectorAddress: '127.0.0.1',
  collectorPort: 2055,
}

describe('NetFlow rows', () => {
  it('v9: template and data → row with the exporter, source ID and absolute start time', () => {
    // Header (count 2, uptime 10 000 ms, unix 0x6553f100, seq 1, source id 7); template 256: IPV4_SRC_ADDR (8),
    // FIRST_SWITCHED (22); data: 10.0.0.1, first switched at uptime 4000 ms.
    const v9 = hex(`0009 0002 00002710 6553f100 00000001 00000007
      0000 0010 0100 0002 0008 0004 0016 0004
      0100 000c 0a000001 00000fa0`)
    const out = new FlowCollector().decode(v9, key)
    expect(out.records).toHaveLength(1)
    const row = normalize(out.records[0]!, 0n)
    expect(row.flow_version).toBe('netflow9')
    expect(row.exporter).toBe('192.0.2.7')
    expect(row.observation_domain).toBe(7)
    expect(row.src_addr).toBe('10.0.0.1')
    expect(row.src_ip_key).toBe(0xffff0a000001n)
    // 0x6553f100 s − (10 000 − 4000) ms
    expect(row.time_start).toBe((0x6553f100n * 1000n - 6000n) * 1000n)
    const back = rowToJson(row)
    expect(back.sourceIPv4Address).toBe('10.0.0.1')
    expect(back.flowStartSysUpTime).toBe(4000)
  })

  it('v5: one record → row', () => {
    const rec =
      '0a000001 0a000002 00000000 0001 0002 00000003 00000400 00001388 00002710 3039 01bb 00 1b 06 00 0000 0000 18 18 0000'
    const v5 = hex(`0005 0001 00002710 6553f100 00000000 00000064 0000 0000 ${rec}`)
    const out = new FlowCollector().decode(v5, key)
    expect(out.records).toHaveLength(1)
    const row = normalize(out.records[0]!, 0n)
    expect(row.flow_version).toBe('netflow5')
    expect([row.src_addr, row.dst_addr, row.src_port, row.dst_port, row.proto]).toEqual([
      '10.0.0.1',
      '10.0.0.2',
      12345,
      443,
      6,
    ])
    expect(row.packets).toBe(3n)
    expect(row.bytes).toBe(1024n)
    expect(row.in_if).toBe(1)
    expect(row.out_if).toBe(2)
  })
})
