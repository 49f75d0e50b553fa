// DHCP parser (RFC 2131/2132, RFC 8415): real captures checked against other tools' decodes (Zeek's
// dhcp.log, tcpdump -vv; see test/fixtures/pcap/dhcp/SOURCES.md), relay unwrapping, content probing, and
// fast-check fuzzing (malformed input only produces counted anomalies, never a throw).
import fc from 'fast-check'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Driver } from '../../test/helpers/l7.js'
import { probeRecords, type JsonRecord } from '../../test/helpers/probe-run.js'
import { dhcpParser, type DhcpTx } from './dhcp.js'
import { L7Dir } from './parser.js'

const FIXTURES = join(import.meta.dirname, '../../test/fixtures/pcap/dhcp')
const DHCP4_TYPES = ['', 'DISCOVER', 'OFFER', 'REQUEST', 'DECLINE', 'ACK', 'NAK', 'RELEASE', 'INFORM']

async function dhcpRecords(file: string): Promise<JsonRecord[]> {
  const { records } = await probeRecords([join(FIXTURES, file)], { fields: ['dhcp'] })
  return records.filter((r) => 'dhcpType' in r)
}

/** A DHCPv4 message: BOOTP fixed part, magic cookie, the given options, END. */
function dhcp4(o: { op?: number; xid?: number; options: number[][] }): Uint8Array {
  const m = new Uint8Array(240)
  m[0] = o.op ?? 1
  m[1] = 1
  m[2] = 6
  new DataView(m.buffer).setUint32(4, o.xid ?? 0x01020304)
  m.set([0x02, 0, 0, 0, 0, 0x01], 28)
  m.set([0x63, 0x82, 0x53, 0x63], 236)
  return Uint8Array.from([...m, ...o.options.flat(), 255])
}

describe('dhcp parser', () => {
  it('DHCPv4: the messages of each xid fold into what Zeek logs (zeek dhcp.pcap, dhcp.log baseline)', async () => {
    const recs = await dhcpRecords('zeek-dhcp-dhcp.pcap')
    const byXid = new Map<number, JsonRecord[]>()
    for (const r of recs) {
      const xid = r.flowtelDhcpTransactionId as number
      byXid.set(xid, [...(byXid.get(xid) ?? []), r])
    }
    const fold = (xid: number) => {
      const rs = byXid.get(xid) ?? []
      const last = (f: string, bad: unknown) =>
        rs
          .map((r) => r[f])
          .filter((v) => v !== bad && v !== '')
          .at(-1)
      return {
        msgTypes: rs.map((r) => DHCP4_TYPES[r.dhcpType as number]).join(','),
        mac: last('dhcpHostMacAddr', '00:00:00:00:00:00'),
        hostName: last('dhcpHostName', ''),
        domain: last('dhcpDomainName', ''),
        requested: last('dhcpIpRequest', '0.0.0.0'),
        assigned: last('dhcpOfferedIp', '0.0.0.0'),
        server: last('dhcpServerIp', '0.0.0.0'),
        message: last('flowtelDhcpMessage', ''),
      }
    }
    // dhcp.log rows 1-3 (Zeek 'lease_time' 900 comes from the ACK, our record of the ACK carries it too).
    expect(fold(1984)).toEqual({
      msgTypes: 'DISCOVER,OFFER,REQUEST,NAK,REQUEST,ACK,DECLINE',
      mac: '90:b1:1c:99:49:29',
      hostName: 'btest.is.cool',
      domain: 'cmu.edu',
      requested: '128.2.6.189',
      assigned: '128.2.6.189',
      server: '128.2.6.152',
      message: 'requested address not available',
    })
    const ack = byXid.get(1984)!.find((r) => r.dhcpType === 5)!
    expect(ack.dhcpIpLeaseTime).toBe(900)
    expect(fold(1948).msgTypes).toBe('RELEASE')
    expect(fold(1948).mac).toBe('90:b1:1c:99:49:29')
    expect(fold(1988)).toMatchObject({
      msgTypes: 'INFORM',
      hostName: 'btest.is.cool',
      requested: '128.2.6.189',
    })
    expect(recs).toHaveLength(9)
  })

  it('DHCPv4: parameter request list, requested address and offer (tcpdump dhcp-rfc3004.pcap)', async () => {
    const recs = await dhcpRecords('tcpdump-dhcp-rfc3004.pcap')
    expect(recs.map((r) => r.dhcpType)).toEqual([1, 2, 3, 5])
    expect(recs[0]).toMatchObject({
      flowtelDhcpTransactionId: 0x6e32864,
      dhcpHostMacAddr: '00:0c:29:1f:74:06',
      dhcpIpRequest: '192.168.1.4',
      flowtelDhcpParamList: '1,28,2,3,15,6,12',
    })
    expect(recs[1]).toMatchObject({
      dhcpOfferedIp: '192.168.1.4',
      dhcpServerIp: '192.168.1.1',
      dhcpIpLeaseTime: 86400,
      dhcpDomainName: 'Home',
    })
  })

  it('DHCPv6: IA_NA addresses, DUIDs and the MAC inside DUID-LL (tcpdump dhcpv6-ia-na.pcap)', async () => {
    const recs = await dhcpRecords('tcpdump-dhcpv6-ia-na.pcap')
    // solicit, advertise, request, reply
    expect(recs.map((r) => r.dhcpType)).toEqual([1, 2, 3, 7])
    expect(recs.map((r) => r.flowtelDhcpTransactionId)).toEqual([0x90b45c, 0x90b45c, 0x2ffdd1, 0x2ffdd1])
    expect(recs[0]).toMatchObject({
      dhcpHostMacAddr: '00:01:02:03:04:05',
      flowtelDhcpClientId: '00030001000102030405',
      flowtelDhcpParamList: '23,24',
    })
    expect(recs[1]).toMatchObject({
      flowtelDhcpAssigned: '2a00:1:1:200:38e6:b22e:c440:acdf',
      flowtelDhcpServerId: '00010001' + (407259276).toString(16).padStart(8, '0') + '001122334455',
      dhcpIpLeaseTime: 7200,
    })
  })

  it('DHCPv6: delegated prefixes (tcpdump dhcpv6-ia-pd.pcap)', async () => {
    const recs = await dhcpRecords('tcpdump-dhcpv6-ia-pd.pcap')
    expect(recs.map((r) => r.dhcpType)).toEqual([1, 2, 3, 7])
    expect(recs[3]).toMatchObject({ flowtelDhcpAssigned: '2a00:1:1:100::/56', dhcpIpLeaseTime: 7200 })
  })

  it('unwraps a DHCPv6 Relay-forward to the client message and keeps the link-address', () => {
    const solicit = [1, 0xab, 0xcd, 0xef, 0, 1, 0, 10, 0, 3, 0, 1, 2, 0, 0, 0, 0, 9]
    const relay = [
      12,
      0,
      ...[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], // link-address
      ...new Array<number>(16).fill(0), // peer-address
      0,
      9,
      0,
      solicit.length,
      ...solicit,
    ]
    const bytes = Uint8Array.from(relay)
    expect(dhcpParser.probe(bytes, L7Dir.ToServer, 'udp')).toBe(true)
    const d = new Driver<DhcpTx>(dhcpParser, 'udp')
    d.feed(L7Dir.ToServer, bytes)
    const [tx] = d.finish()
    expect(tx).toMatchObject({ version: 6, msgType: 1, xid: 0xabcdef, relayAddr: '2001:db8::1' })
    expect(tx!.clientMac).toBe('020000000009')
  })

  it('probes by content: DHCPv4 needs the magic cookie, DHCPv6 options must tile the datagram', () => {
    const ok = dhcp4({ options: [[53, 1, 1]] })
    expect(dhcpParser.probe(ok, L7Dir.ToServer, 'udp')).toBe(true)
    const noCookie = ok.slice()
    noCookie[236] = 0
    expect(dhcpParser.probe(noCookie, L7Dir.ToServer, 'udp')).toBe(false)
    // A DNS query starts with an id, not a DHCPv6 message whose options end exactly at the datagram end.
    expect(dhcpParser.probe(Uint8Array.from([1, 0, 1, 0, 0, 1, 0, 0, 0, 0]), L7Dir.ToServer, 'udp')).toBe(
      false,
    )
    expect(dhcpParser.probe(ok, L7Dir.ToServer, 'tcp')).toBe(false)
  })

  it('renders relay agent information (option 82, RFC 3046 sub-options) and giaddr', () => {
    const m = dhcp4({
      options: [
        [53, 1, 1],
        [82, 12, 1, 4, 0x00, 0x04, 0x00, 0x07, 2, 4, 0xc0, 0xa8, 0x00, 0x01],
      ],
    })
    m.set([10, 0, 0, 1], 24) // giaddr
    const d = new Driver<DhcpTx>(dhcpParser, 'udp')
    d.feed(L7Dir.ToServer, m)
    const [tx] = d.finish()
    expect(tx).toMatchObject({ relayAddr: '10.0.0.1', relayInfo: 'circuit-id=00040007,remote-id=c0a80001' })
    expect(d.ctx.anomalies).toEqual([])
  })

  it('renders option text as Zeek prints it (\\xNN, a trailing NUL dropped, 255 octets kept) and ids as hex', () => {
    const long = Array.from({ length: 255 }, (_, i) => (i % 2 === 0 ? 0x61 : 0x0a))
    const id = Array.from({ length: 200 }, (_, i) => i)
    const m = dhcp4({
      options: [
        [53, 1, 1],
        [12, 6, 0x68, 0x00, 0x7f, 0x20, 0x7e, 0x00], // h \0 DEL space ~ and a trailing NUL
        [60, 255, ...long],
        [56, 0],
        [61, 200, ...id.slice(0, 200)],
      ],
    })
    const d = new Driver<DhcpTx>(dhcpParser, 'udp')
    d.feed(L7Dir.ToServer, m)
    const [tx] = d.finish()
    const hex = (b: number[]): string => b.map((c) => c.toString(16).padStart(2, '0')).join('')
    expect(tx).toMatchObject({
      hostName: 'h\\x00\\x7f ~',
      vendorClass: long.map((c) => (c === 0x61 ? 'a' : '\\x0a')).join(''),
      message: '',
      clientId: hex(id.slice(0, 128)),
      clientMac: '020000000001',
    })
    expect(d.ctx.anomalies).toEqual([])
  })

  it('counts an option running past the end and keeps what came before it', () => {
    const m = dhcp4({
      options: [
        [53, 1, 3],
        [12, 4, 0x68, 0x6f, 0x73, 0x74],
        [50, 40, 1, 2],
      ],
    })
    const d = new Driver<DhcpTx>(dhcpParser, 'udp')
    d.feed(L7Dir.ToServer, m.subarray(0, m.byteLength - 1)) // no END: option 50 claims 40 octets
    const [tx] = d.finish()
    expect(tx).toMatchObject({ msgType: 3, hostName: 'host' })
    expect(d.ctx.anomalies).toEqual(['dhcp_bad_option_length'])
  })

  it('counts a truncated message on a DHCPv4 flow instead of reading it as DHCPv6', () => {
    const d = new Driver<DhcpTx>(dhcpParser, 'udp')
    d.feed(L7Dir.ToServer, dhcp4({ options: [[53, 1, 1]] }))
    d.feed(L7Dir.ToClient, Uint8Array.from([2, 1, 6, 0]))
    expect(d.finish()).toHaveLength(1)
    expect(d.ctx.anomalies).toEqual(['dhcp_truncated'])
  })

  it('never throws on arbitrary bytes (fast-check), v4 and v6 flows', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (tail, v4) => {
        const d = new Driver<DhcpTx>(dhcpParser, 'udp')
        const first = v4 ? dhcp4({ options: [Array.from(tail)] }) : Uint8Array.from([1, ...tail])
        d.feed(L7Dir.ToServer, first)
        d.feed(L7Dir.ToClient, tail)
        for (const tx of d.finish()) expect(tx.version).toBe(v4 ? 4 : 6)
      }),
      { numRuns: 500 },
    )
  })
})
