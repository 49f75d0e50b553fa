// Unit tests for PacketDecoder: each link type, L2 layer, IP version, transport, tunnel and anomaly, on crafted
// packets (test/helpers/packet-builder.ts). Specs as in packet-decoder.ts.
import { describe, expect, it } from 'vitest'
import { Anomalies } from './anomalies.js'
import { DecodeResult, PacketInfo, Tunnel } from './packet.js'
import { PacketDecoder } from './packet-decoder.js'
import { decodeBytes } from './decode-harness.test-util.js'
import {
  ETH,
  LINKTYPE,
  PROTO,
  TCP,
  ahExt,
  arp,
  concat,
  erspan2,
  erspan3,
  eth,
  eth8023,
  fragmentExt,
  geneve,
  gre,
  gtpPduSessionExt,
  gtpu,
  hex,
  hopByHop,
  icmp,
  ip4Num,
  ip6Words,
  ipv4,
  ipv6,
  mpls,
  nullHdr,
  optionsExt,
  pppoe,
  pptpGre,
  routingExt,
  sctp,
  sll,
  sll2,
  tcp,
  teredo,
  udp,
  vxlan,
} from '../../test/helpers/packet-builder.js'

const tcpSyn = (): Uint8Array =>
  ipv4(
    { src: '10.0.0.1', dst: '10.0.0.2', proto: PROTO.TCP },
    tcp({ sport: 1234, dport: 80, flags: TCP.SYN }),
  )
const udp4 = (sport = 5000, dport = 53, payload = new Uint8Array(12)): Uint8Array =>
  ipv4({ src: '192.0.2.1', dst: '192.0.2.2', proto: PROTO.UDP }, udp({ sport, dport, payload }))
const tcp6 = (): Uint8Array =>
  ipv6({ src: '2001:db8::1', dst: '2001:db8::2', proto: PROTO.TCP }, tcp({ sport: 40000, dport: 443 }))

describe('link types', () => {
  it('decodes Ethernet with MACs', () => {
    const d = decodeBytes(eth({ src: '00:11:22:33:44:55', dst: '66:77:88:99:aa:bb' }, tcpSyn()))
    expect(d.r).toBe(DecodeResult.Ip)
    expect(d.info.hasEthernet).toBe(true)
    expect(d.info.srcMacHi).toBe(0x0011)
    expect(d.info.srcMacLo).toBe(0x22334455)
    expect(d.info.dstMacHi).toBe(0x6677)
    expect(d.info.dstMacLo).toBe(0x8899aabb)
    expect(d.info.etherType).toBe(0x0800)
    expect(d.info.l3Offset - d.base).toBe(14)
  })

  it.each([101, 12, 14])('decodes raw IP (link type %i) by version nibble', (lt) => {
    expect(decodeBytes(tcpSyn(), { linkType: lt }).info.ipVersion).toBe(4)
    const d = decodeBytes(tcp6(), { linkType: lt })
    expect(d.r).toBe(DecodeResult.Ip)
    expect(d.info.ipVersion).toBe(6)
    expect(d.info.hasEthernet).toBe(false)
  })

  it('rejects a raw packet with an unknown version', () => {
    const d = decodeBytes(hex('55 00 00 14'), { linkType: LINKTYPE.RAW })
    expect(d.r).toBe(DecodeResult.Malformed)
    expect(d.anomalies).toEqual({ bad_ip_version: 1 })
  })

  it('decodes IPv4 (228) and IPv6 (229) link types', () => {
    expect(decodeBytes(tcpSyn(), { linkType: LINKTYPE.IPV4 }).info.dstPort).toBe(80)
    expect(decodeBytes(tcp6(), { linkType: LINKTYPE.IPV6 }).info.dstPort).toBe(443)
    // The link type fixes the version: IPv6 bytes under 228 are a bad version.
    expect(decodeBytes(tcp6(), { linkType: LINKTYPE.IPV4 }).anomalies).toEqual({ bad_ip_version: 1 })
  })

  it('decodes Linux SLL and SLL2', () => {
    const a = decodeBytes(sll({}, tcpSyn()), { linkType: LINKTYPE.LINUX_SLL })
    expect(a.info.dstPort).toBe(80)
    expect(a.info.l3Offset - a.base).toBe(16)
    const b = decodeBytes(sll2({}, tcp6()), { linkType: LINKTYPE.LINUX_SLL2 })
    expect(b.info.dstPort).toBe(443)
    expect(b.info.l3Offset - b.base).toBe(20)
    const c = decodeBytes(sll({ protocol: ETH.VLAN }, hex('00 07 08 00')), {
      linkType: LINKTYPE.LINUX_SLL,
    })
    expect(c.anomalies).toEqual({ truncated_ipv4_header: 1 })
    expect(decodeBytes(new Uint8Array(15), { linkType: LINKTYPE.LINUX_SLL }).anomalies).toEqual({
      truncated_sll_header: 1,
    })
    expect(decodeBytes(new Uint8Array(19), { linkType: LINKTYPE.LINUX_SLL2 }).anomalies).toEqual({
      truncated_sll_header: 1,
    })
  })

  it.each([
    [0, 2, false, 4],
    [0, 2, true, 4],
    [0, 24, false, 6],
    [0, 28, false, 6],
    [0, 30, false, 6],
    [0, 10, false, 6],
    [0, 30, true, 6],
    [108, 2, true, 4],
    [108, 24, true, 6],
  ])('decodes NULL/LOOP (link type %i) family %i (big-endian %s)', (lt, family, be, version) => {
    const inner = version === 4 ? tcpSyn() : tcp6()
    const d = decodeBytes(nullHdr({ family, bigEndian: be }, inner), { linkType: lt })
    expect(d.r).toBe(DecodeResult.Ip)
    expect(d.info.ipVersion).toBe(version)
  })

  it('reports unknown NULL families and short NULL headers', () => {
    const d = decodeBytes(nullHdr({ family: 7 }, tcpSyn()), { linkType: LINKTYPE.NULL })
    expect(d.r).toBe(DecodeResult.NonIp)
    expect(d.anomalies).toEqual({ unknown_null_family: 1, non_ip_packet: 1 })
    expect(decodeBytes(hex('02 00'), { linkType: 0 }).anomalies).toEqual({ truncated_null_header: 1 })
  })

  it('decodes PPP (9), PPP in HDLC framing (50) and Cisco HDLC (104)', () => {
    const ppp = decodeBytes(concat(hex('ff 03 00 21'), tcpSyn()), { linkType: 9 })
    expect([ppp.r, ppp.info.dstPort]).toEqual([DecodeResult.Ip, 80])
    const pfc = decodeBytes(concat(hex('57'), tcp6()), { linkType: 9 })
    expect([pfc.r, pfc.info.ipVersion]).toEqual([DecodeResult.Ip, 6])
    const m = decodeBytes(concat(hex('ff 03 02 81'), mpls([17], tcpSyn())), { linkType: 50 })
    expect([m.info.mplsTopLabel, m.info.dstPort]).toEqual([17, 80])
    const chdlc = decodeBytes(concat(hex('0f 00 08 00'), tcpSyn()), { linkType: 104 })
    expect(chdlc.info.dstPort).toBe(80)
    const lcp = decodeBytes(concat(hex('ff 03 c0 21'), new Uint8Array(8)), { linkType: 9 })
    expect([lcp.r, lcp.info.etherType]).toEqual([DecodeResult.NonIp, ETH.PPP])
    expect(decodeBytes(hex('ff 03 00'), { linkType: 9 }).anomalies).toEqual({ truncated_ppp_header: 1 })
  })

  it('returns UnsupportedLinkType without counting an anomaly', () => {
    const d = decodeBytes(tcpSyn(), { linkType: 127 })
    expect(d.r).toBe(DecodeResult.UnsupportedLinkType)
    expect(d.anomalies).toEqual({})
  })
})

describe('layer 2', () => {
  it('reads a single 802.1Q tag with PCP', () => {
    const d = decodeBytes(eth({ vlan: [100], pcp: 5 }, tcpSyn()))
    expect(d.info.vlanId).toBe(100)
    expect(d.info.vlanPcp).toBe(5)
    expect(d.info.innerVlanId).toBe(0)
    expect(d.info.l3Offset - d.base).toBe(18)
  })

  it.each([ETH.QINQ, 0x9100, ETH.VLAN])('reads QinQ with outer TPID %s', (tpid) => {
    const d = decodeBytes(eth({ vlan: [200, 300], vlanTpid: [tpid, ETH.VLAN] }, tcpSyn()))
    expect(d.info.vlanId).toBe(200)
    expect(d.info.innerVlanId).toBe(300)
    expect(d.info.dstPort).toBe(80)
  })

  it('skips a third tag but bounds the stack', () => {
    const d = decodeBytes(eth({ vlan: [1, 2, 3] }, tcpSyn()))
    expect([d.info.vlanId, d.info.innerVlanId, d.info.dstPort]).toEqual([1, 2, 80])
    const deep = decodeBytes(eth({ vlan: [1, 2, 3, 4, 5, 6, 7, 8, 9] }, tcpSyn()))
    expect(deep.r).toBe(DecodeResult.Malformed)
    expect(deep.anomalies).toEqual({ vlan_stack_too_deep: 1 })
  })

  it('counts a truncated VLAN tag', () => {
    const f = eth({ vlan: [5] }, tcpSyn()).subarray(0, 16)
    const d = decodeBytes(f)
    expect(d.r).toBe(DecodeResult.Malformed)
    expect(d.anomalies).toEqual({ truncated_vlan_header: 1 })
  })

  it('returns NonIp for ARP with etherType and l3Offset', () => {
    const d = decodeBytes(eth({ vlan: [7], type: ETH.ARP }, arp()))
    expect(d.r).toBe(DecodeResult.NonIp)
    expect(d.info.etherType).toBe(0x0806)
    expect(d.info.l3Offset - d.base).toBe(18)
    expect(d.info.vlanId).toBe(7)
    expect(d.anomalies).toEqual({ non_ip_packet: 1 })
  })

  it('treats 802.3 length frames as non-IP, but follows LLC/SNAP to IP', () => {
    const stp = decodeBytes(eth8023({}, new Uint8Array(35)))
    expect(stp.r).toBe(DecodeResult.NonIp)
    expect(stp.info.etherType).toBe(0)
    const snap = decodeBytes(eth8023({ snapType: ETH.IPV4 }, tcpSyn()))
    expect(snap.r).toBe(DecodeResult.Ip)
    expect(snap.info.dstPort).toBe(80)
    const short = decodeBytes(eth8023({}, new Uint8Array(0)).subarray(0, 15))
    expect(short.anomalies).toEqual({ truncated_llc_header: 1 })
  })

  it('counts a truncated Ethernet header', () => {
    const d = decodeBytes(new Uint8Array(13))
    expect(d.r).toBe(DecodeResult.Malformed)
    expect(d.anomalies).toEqual({ truncated_ethernet_header: 1 })
  })

  it('decodes an MPLS stack followed by IPv4 and IPv6', () => {
    const d = decodeBytes(eth({ type: ETH.MPLS }, mpls([1000, 2000, 3000], tcpSyn())))
    expect(d.r).toBe(DecodeResult.Ip)
    expect(d.info.mplsTopLabel).toBe(1000)
    expect(d.info.mplsLabels).toBe(3)
    expect(d.info.etherType).toBe(0x0800)
    expect(d.info.dstPort).toBe(80)
    const d6 = decodeBytes(eth({ vlan: [4], type: ETH.MPLS }, mpls([16], tcp6())))
    expect([d6.info.vlanId, d6.info.mplsTopLabel, d6.info.ipVersion, d6.info.dstPort]).toEqual([
      4, 16, 6, 443,
    ])
  })

  it('decodes an MPLS pseudowire with a control word and inner Ethernet', () => {
    const inner = eth({ src: 'aa:aa:aa:aa:aa:aa' }, tcpSyn())
    const d = decodeBytes(
      eth({ src: '00:00:00:00:00:01', type: ETH.MPLS }, mpls([99], concat(hex('00000000'), inner))),
    )
    expect(d.r).toBe(DecodeResult.Ip)
    expect(d.info.dstPort).toBe(80)
    expect(d.info.srcMacLo).toBe(1) // outermost Ethernet
  })

  it('reports MPLS with a non-IP payload, a deep stack and truncation', () => {
    const other = decodeBytes(eth({ type: ETH.MPLS }, mpls([5], hex('ff ff ff ff'))))
    expect(other.r).toBe(DecodeResult.NonIp)
    expect(other.info.etherType).toBe(ETH.MPLS)
    const deep = decodeBytes(
      eth(
        { type: ETH.MPLS },
        mpls(
          Array.from({ length: 17 }, (_, i) => i + 16),
          tcpSyn(),
        ),
      ),
    )
    expect(deep.anomalies).toEqual({ mpls_stack_too_deep: 1 })
    const cut = decodeBytes(eth({ type: ETH.MPLS }, mpls([5, 6], tcpSyn())).subarray(0, 20))
    expect(cut.anomalies).toEqual({ truncated_mpls_header: 1 })
  })

  it('decodes NSH (RFC 8300) and Cisco MetaData shims', () => {
    // NSH base header: length 6 words (24 bytes), MD type 1, next protocol 1 (IPv4); 16 bytes of context.
    const nshHdr = concat(hex('0f c6 01 01  00 00 01 ff'), new Uint8Array(16))
    const d = decodeBytes(eth({ type: 0x894f }, concat(nshHdr, tcpSyn())))
    expect([d.r, d.info.dstPort, d.info.l3Offset - d.base]).toEqual([DecodeResult.Ip, 80, 38])
    const ethIn = concat(hex('0f c2 01 03  00 00 01 ff'), eth({}, tcp6()))
    expect(decodeBytes(eth({ type: 0x894f }, ethIn)).info.dstPort).toBe(443)
    expect(decodeBytes(eth({ type: 0x894f }, hex('0f c6 01 01'))).anomalies).toEqual({
      truncated_nsh_header: 1,
    })
    const cmd = decodeBytes(eth({ type: 0x8909 }, concat(hex('01 01 00 01 00 10 08 00'), tcpSyn())))
    expect([cmd.r, cmd.info.dstPort]).toEqual([DecodeResult.Ip, 80])
  })

  it('bounds nested Ethernet headers (pseudowires in pseudowires)', () => {
    let p = eth({}, tcpSyn())
    for (let i = 0; i < 8; i++) p = eth({ type: ETH.MPLS }, mpls([i + 16], concat(hex('00000000'), p)))
    const d = decodeBytes(p)
    expect(d.r).toBe(DecodeResult.Malformed)
    expect(d.anomalies).toEqual({ encapsulation_too_deep: 1 })
  })

  it('decodes PPPoE sessions carrying IPv4 and IPv6, and non-IP PPP as NonIp', () => {
    expect(decodeBytes(eth({ type: ETH.PPPOE }, pppoe({}, tcpSyn()))).info.dstPort).toBe(80)
    expect(decodeBytes(eth({ type: ETH.PPPOE }, pppoe({}, tcp6()))).info.dstPort).toBe(443)
    const lcp = decodeBytes(eth({ type: ETH.PPPOE }, pppoe({ pppProto: 0xc021 }, new Uint8Array(10))))
    expect(lcp.r).toBe(DecodeResult.NonIp)
    expect(lcp.info.etherType).toBe(ETH.PPPOE)
    const cut = decodeBytes(eth({ type: ETH.PPPOE }, pppoe({}, tcpSyn())).subarray(0, 20))
    expect(cut.anomalies).toEqual({ truncated_pppoe_header: 1 })
  })
})

describe('IPv4', () => {
  it('fills the IP and TCP fields', () => {
    const pkt = eth(
      {},
      ipv4(
        { src: '10.1.2.3', dst: '10.4.5.6', proto: PROTO.TCP, ttl: 33, tos: 0xb8, id: 4242, df: true },
        tcp({
          sport: 5555,
          dport: 443,
          seq: 0xdeadbeef,
          ack: 0x01020304,
          flags: TCP.SYN | TCP.ACK | TCP.NS | TCP.CWR,
          window: 1234,
          options: hex('02 04 05 b4'),
          payload: new Uint8Array(10),
        }),
      ),
    )
    const d = decodeBytes(pkt)
    const i = d.info
    expect(d.r).toBe(DecodeResult.Ip)
    expect([i.ipVersion, i.src[0], i.dst[0], i.src[1], i.ttl, i.tos, i.ipId]).toEqual([
      4,
      ip4Num('10.1.2.3'),
      ip4Num('10.4.5.6'),
      0,
      33,
      0xb8,
      4242,
    ])
    expect([i.protocol, i.ipLength, i.isFragment]).toEqual([6, 20 + 24 + 10, false])
    expect([i.srcPort, i.dstPort, i.tcpSeq, i.tcpAck, i.tcpWindow]).toEqual([
      5555, 443, 0xdeadbeef, 0x01020304, 1234,
    ])
    expect(i.tcpFlags).toBe(0x192)
    expect([i.l4Offset - d.base, i.payloadOffset - d.base, i.payloadCaptured, i.payloadLength]).toEqual([
      34, 58, 10, 10,
    ])
    expect(d.anomalies).toEqual({})
  })

  it('skips IPv4 options', () => {
    const d = decodeBytes(
      eth({}, ipv4({ options: hex('94 04 00 00 01 01 01 00') }, tcp({ sport: 1, dport: 2 }))),
    )
    expect(d.info.dstPort).toBe(2)
    expect(d.info.l4Offset - d.base).toBe(14 + 28)
  })

  it('ignores Ethernet padding beyond the total length', () => {
    const d = decodeBytes(eth({}, concat(udp4(1, 2, new Uint8Array(0)), new Uint8Array(18).fill(0x55))))
    expect(d.info.ipLength).toBe(28)
    expect(d.info.payloadCaptured).toBe(0)
    expect(d.anomalies).toEqual({})
  })

  it('reports header problems', () => {
    expect(decodeBytes(eth({ type: ETH.IPV4 }, ipv4({ version: 5 }))).anomalies).toEqual({
      bad_ip_version: 1,
    })
    expect(decodeBytes(eth({}, ipv4({ ihl: 4 }))).anomalies).toEqual({ bad_ipv4_header_length: 1 })
    expect(decodeBytes(eth({}, ipv4({ ihl: 15 }))).anomalies).toEqual({ truncated_ipv4_header: 1 })
    expect(decodeBytes(eth({}, ipv4({ totalLength: 19 }))).anomalies).toEqual({ bad_ipv4_total_length: 1 })
    expect(decodeBytes(eth({}, tcpSyn().subarray(0, 19))).anomalies).toEqual({ truncated_ipv4_header: 1 })
  })

  it('decodes a total length beyond the frame with an anomaly (not snaplen)', () => {
    const d = decodeBytes(eth({}, ipv4({ totalLength: 1000 }, tcp({ sport: 1, dport: 2 }))))
    expect(d.r).toBe(DecodeResult.Ip)
    expect(d.info.ipLength).toBe(1000)
    expect(d.info.dstPort).toBe(2)
    expect(d.info.payloadCaptured).toBe(0)
    expect(d.info.payloadLength).toBe(960)
    expect(d.anomalies).toEqual({ ipv4_total_length_exceeds_frame: 1 })
  })

  it('accepts snaplen truncation and counts snaplen_truncated once', () => {
    const pkt = eth({}, ipv4({}, tcp({ sport: 1, dport: 2, payload: new Uint8Array(1400) })))
    const d = decodeBytes(pkt, { caplen: 68 })
    expect(d.r).toBe(DecodeResult.Ip)
    expect(d.info.ipLength).toBe(1440)
    expect(d.info.payloadCaptured).toBe(68 - 54)
    expect(d.info.payloadLength).toBe(1400)
    expect(d.anomalies).toEqual({ snaplen_truncated: 1 })
    // Cut inside TCP: ports known when 4 bytes are there, no malformed anomaly.
    const e = decodeBytes(pkt, { caplen: 38 })
    expect([e.r, e.info.srcPort, e.info.dstPort, e.info.tcpSeq]).toEqual([DecodeResult.Ip, 1, 2, 0])
    expect(e.anomalies).toEqual({ snaplen_truncated: 1 })
    const f = decodeBytes(pkt, { caplen: 36 })
    expect([f.r, f.info.srcPort]).toEqual([DecodeResult.Ip, 0])
    // Cut inside the IP header: no flow key.
    const g = decodeBytes(pkt, { caplen: 30 })
    expect(g.r).toBe(DecodeResult.Malformed)
    expect(g.anomalies).toEqual({ snaplen_truncated: 1 })
  })

  it('uses the frame length for a zero total length (segmentation offload)', () => {
    const d = decodeBytes(
      eth({}, ipv4({ totalLength: 0 }, tcp({ sport: 1, dport: 2, payload: new Uint8Array(100) }))),
    )
    expect(d.r).toBe(DecodeResult.Ip)
    expect(d.info.ipLength).toBe(140)
    expect(d.anomalies).toEqual({ ipv4_total_length_zero: 1 })
  })

  it('reads the fragment fields', () => {
    const d = decodeBytes(
      eth({}, ipv4({ id: 77, mf: true, fragOffset: 1480, proto: PROTO.UDP }, new Uint8Array(16))),
    )
    expect([d.info.isFragment, d.info.moreFragments, d.info.fragOffset, d.info.ipId]).toEqual([
      true,
      true,
      1480,
      77,
    ])
    expect([d.info.srcPort, d.info.dstPort]).toEqual([0, 0])
    expect(d.anomalies).toEqual({ fragment_without_first: 1 })
  })
})

describe('IPv6', () => {
  it('fills the fixed header fields', () => {
    const d = decodeBytes(
      eth(
        {},
        ipv6(
          { src: '2001:db8::a', dst: 'fe80::1', trafficClass: 0x2e, flowLabel: 0xabcde, hopLimit: 7 },
          tcp({ sport: 1, dport: 2 }),
        ),
      ),
    )
    const i = d.info
    expect([i.ipVersion, i.tos, i.flowLabel, i.ttl, i.protocol, i.ipLength]).toEqual([
      6, 0x2e, 0xabcde, 7, 6, 60,
    ])
    expect(Array.from(i.src)).toEqual(ip6Words('2001:db8::a'))
    expect(Array.from(i.dst)).toEqual(ip6Words('fe80::1'))
    expect(i.etherType).toBe(ETH.IPV6)
  })

  it('walks the extension chain', () => {
    const d = decodeBytes(
      eth(
        {},
        ipv6(
          {
            proto: PROTO.UDP,
            ext: [
              hopByHop(),
              routingExt({ segments: ['2001:db8::5', '2001:db8::6'] }),
              optionsExt(60),
              ahExt(),
            ],
          },
          udp({ sport: 53, dport: 3333 }),
        ),
      ),
    )
    expect([d.r, d.info.protocol, d.info.srcPort, d.info.dstPort]).toEqual([DecodeResult.Ip, 17, 53, 3333])
    expect(d.info.l4Offset - d.base).toBe(14 + 40 + 8 + 40 + 8 + 24)
    expect(d.anomalies).toEqual({})
  })

  it.each([135, 139, 140])('walks extension header %i', (t) => {
    const d = decodeBytes(ipv6({ proto: PROTO.TCP, ext: [optionsExt(t)] }, tcp({ sport: 9, dport: 10 })), {
      linkType: LINKTYPE.IPV6,
    })
    expect([d.info.protocol, d.info.dstPort]).toEqual([6, 10])
  })

  it('stops at ESP and No Next Header', () => {
    const esp = decodeBytes(ipv6({ proto: PROTO.ESP, ext: [hopByHop()] }, new Uint8Array(40)), {
      linkType: 229,
    })
    expect([esp.r, esp.info.protocol, esp.info.srcPort]).toEqual([DecodeResult.Ip, 50, 0])
    const none = decodeBytes(ipv6({ proto: PROTO.NONE }), { linkType: 229 })
    expect([none.r, none.info.protocol, none.info.ipLength]).toEqual([DecodeResult.Ip, 59, 40])
    expect(none.anomalies).toEqual({})
  })

  it('bounds the chain and checks each header against caplen', () => {
    const many = Array.from({ length: 17 }, () => optionsExt(60))
    const d = decodeBytes(ipv6({ proto: PROTO.TCP, ext: many }, tcp({ sport: 1, dport: 2 })), {
      linkType: 229,
    })
    expect(d.anomalies).toEqual({ ipv6_extension_chain_too_long: 1 })
    expect(d.info.dstPort).toBe(0)
    const big = ipv6({ proto: PROTO.TCP, ext: [routingExt()] }, tcp({ sport: 1, dport: 2 }))
    const e = decodeBytes(big.subarray(0, 50), { linkType: 229 })
    expect(e.r).toBe(DecodeResult.Ip)
    expect(e.anomalies).toEqual({ ipv6_payload_length_exceeds_frame: 1, truncated_ipv6_extension_header: 1 })
  })

  it('reports header problems', () => {
    expect(decodeBytes(tcp6().subarray(0, 39), { linkType: 229 }).anomalies).toEqual({
      truncated_ipv6_header: 1,
    })
    expect(decodeBytes(eth({ type: ETH.IPV6 }, tcpSyn())).anomalies).toEqual({ bad_ip_version: 1 })
    const long = decodeBytes(ipv6({ payloadLength: 500 }, tcp({ sport: 1, dport: 2 })), { linkType: 229 })
    expect([long.r, long.info.ipLength, long.info.dstPort]).toEqual([DecodeResult.Ip, 540, 2])
    expect(long.anomalies).toEqual({ ipv6_payload_length_exceeds_frame: 1 })
  })

  it('reads the jumbo payload length, or falls back to the frame length', () => {
    const payload = tcp({ sport: 1, dport: 2, payload: new Uint8Array(100) })
    const jumbo = decodeBytes(ipv6({ payloadLength: 0, ext: [hopByHop({ jumbo: 70000 })] }, payload), {
      linkType: 229,
      origlen: 40 + 70000,
    })
    expect([jumbo.r, jumbo.info.ipLength, jumbo.info.dstPort]).toEqual([DecodeResult.Ip, 70040, 2])
    expect(jumbo.anomalies).toEqual({ snaplen_truncated: 1 })
    const zero = decodeBytes(ipv6({ payloadLength: 0 }, payload), { linkType: 229 })
    expect([zero.info.ipLength, zero.info.dstPort]).toEqual([40 + 120, 2])
    expect(zero.anomalies).toEqual({ ipv6_zero_payload_length: 1 })
  })

  it('reads the fragment header; atomic fragments keep their ports', () => {
    const first = decodeBytes(
      ipv6(
        { proto: PROTO.UDP, ext: [fragmentExt({ more: true, id: 0xabcdef01 })] },
        udp({ sport: 7, dport: 8 }),
      ),
      { linkType: 229 },
    )
    const i = first.info
    expect([i.isFragment, i.moreFragments, i.fragOffset, i.ipId, i.protocol, i.dstPort]).toEqual([
      true,
      true,
      0,
      0xabcdef01,
      17,
      8,
    ])
    const atomic = decodeBytes(
      ipv6({ proto: PROTO.TCP, ext: [fragmentExt({})] }, tcp({ sport: 1, dport: 2 })),
      {
        linkType: 229,
      },
    )
    expect([atomic.info.isFragment, atomic.info.dstPort]).toEqual([false, 2])
  })
})

describe('transport', () => {
  it('reads UDP ports, length and payload', () => {
    const d = decodeBytes(eth({}, udp4(1000, 2000, new Uint8Array(5))))
    expect([d.info.srcPort, d.info.dstPort, d.info.udpLength, d.info.payloadLength]).toEqual([
      1000, 2000, 13, 5,
    ])
    expect(d.info.payloadOffset - d.base).toBe(42)
  })

  it('reports a bad UDP length', () => {
    const d = decodeBytes(eth({}, ipv4({ proto: 17 }, udp({ sport: 1, dport: 2, length: 4 }))))
    expect([d.r, d.info.dstPort]).toEqual([DecodeResult.Ip, 2])
    expect(d.anomalies).toEqual({ bad_udp_length: 1 })
    const e = decodeBytes(eth({}, ipv4({ proto: 17 }, udp({ sport: 1, dport: 2, length: 100 }))))
    expect(e.anomalies).toEqual({ bad_udp_length: 1 })
  })

  it('reports truncated and bad transport headers but keeps the IP flow', () => {
    const t = decodeBytes(eth({}, ipv4({ proto: 6 }, new Uint8Array(10))))
    expect([t.r, t.info.protocol]).toEqual([DecodeResult.Ip, 6])
    expect(t.anomalies).toEqual({ truncated_tcp_header: 1 })
    const off = decodeBytes(eth({}, ipv4({ proto: 6 }, tcp({ sport: 1, dport: 2, dataOffset: 4 }))))
    expect(off.anomalies).toEqual({ bad_tcp_header_length: 1 })
    const opt = decodeBytes(eth({}, ipv4({ proto: 6 }, tcp({ sport: 1, dport: 2, dataOffset: 15 }))))
    expect(opt.anomalies).toEqual({ truncated_tcp_header: 1 })
    expect(decodeBytes(eth({}, ipv4({ proto: 17 }, new Uint8Array(6)))).anomalies).toEqual({
      truncated_udp_header: 1,
    })
    expect(decodeBytes(eth({}, ipv4({ proto: 132 }, new Uint8Array(6)))).anomalies).toEqual({
      truncated_sctp_header: 1,
    })
    expect(decodeBytes(eth({}, ipv4({ proto: 1 }, new Uint8Array(3)))).anomalies).toEqual({
      truncated_icmp_header: 1,
    })
  })

  it('reads SCTP ports and ICMP/ICMPv6 type and code', () => {
    const s = decodeBytes(eth({}, ipv4({ proto: PROTO.SCTP }, sctp({ sport: 2905, dport: 2906 }))))
    expect([s.info.srcPort, s.info.dstPort]).toEqual([2905, 2906])
    const i4 = decodeBytes(eth({}, ipv4({ proto: PROTO.ICMP }, icmp({ type: 8, code: 0 }))))
    expect([i4.info.icmpType, i4.info.icmpCode, i4.info.srcPort, i4.info.dstPort]).toEqual([8, 0, 0, 0])
    const i6 = decodeBytes(ipv6({ proto: PROTO.ICMPV6 }, icmp({ type: 135, code: 0 })), { linkType: 229 })
    expect([i6.info.icmpType, i6.info.protocol]).toEqual([135, 58])
  })

  it('leaves ports 0 for other protocols', () => {
    const d = decodeBytes(eth({}, ipv4({ proto: 89 }, new Uint8Array(40).fill(1))))
    expect([d.r, d.info.protocol, d.info.srcPort, d.info.payloadLength]).toEqual([DecodeResult.Ip, 89, 0, 40])
  })
})

describe('tunnels', () => {
  const innerTcp = (): Uint8Array =>
    ipv4(
      { src: '172.16.0.1', dst: '172.16.0.2', proto: 6 },
      tcp({ sport: 3333, dport: 22, payload: new Uint8Array(7) }),
    )
  const outerUdp = (dport: number, payload: Uint8Array, sport = 40000): Uint8Array =>
    eth(
      { src: '00:00:00:00:00:0a' },
      ipv4({ src: '1.1.1.1', dst: '2.2.2.2', proto: 17 }, udp({ sport, dport, payload })),
    )
  const expectInner = (d: ReturnType<typeof decodeBytes>, tunnel: Tunnel, id: number): void => {
    expect(d.r).toBe(DecodeResult.Ip)
    expect([d.info.tunnel, d.info.tunnelId, d.info.tunnelCount]).toEqual([tunnel, id, 1])
    expect([d.info.src[0], d.info.dst[0]]).toEqual([ip4Num('172.16.0.1'), ip4Num('172.16.0.2')])
    expect([d.info.protocol, d.info.srcPort, d.info.dstPort, d.info.ipLength]).toEqual([6, 3333, 22, 47])
    expect(d.info.payloadCaptured).toBe(7)
    expect(d.info.srcMacLo).toBe(0x0a)
    expect(d.anomalies).toEqual({})
  }

  it.each([4789, 8472])('removes VXLAN on port %i', (port) => {
    const d = decodeBytes(
      outerUdp(port, vxlan({ vni: 0x123456 }, eth({ src: 'bb:bb:bb:bb:bb:bb' }, innerTcp()))),
    )
    expectInner(d, Tunnel.Vxlan, 0x123456)
  })

  it('keeps the outermost VLAN id through VXLAN, or takes the inner one when the outer is untagged', () => {
    const inner = vxlan({ vni: 1 }, eth({ vlan: [30] }, innerTcp()))
    const tagged = eth({ vlan: [10] }, ipv4({ proto: 17 }, udp({ sport: 1, dport: 4789, payload: inner })))
    expect(decodeBytes(tagged).info.vlanId).toBe(10)
    expect(decodeBytes(outerUdp(4789, inner)).info.vlanId).toBe(30)
  })

  it('leaves UDP 4789 without the VXLAN I flag alone', () => {
    const d = decodeBytes(outerUdp(4789, vxlan({ vni: 1, flags: 0 }, eth({}, innerTcp()))))
    expect([d.info.tunnel, d.info.dstPort]).toEqual([Tunnel.None, 4789])
  })

  it('removes Geneve with options', () => {
    const d = decodeBytes(
      outerUdp(6081, geneve({ vni: 77, options: new Uint8Array(8) }, eth({}, innerTcp()))),
    )
    expectInner(d, Tunnel.Geneve, 77)
    const ip = decodeBytes(outerUdp(6081, geneve({ vni: 78, protocol: ETH.IPV4 }, innerTcp())))
    expectInner(ip, Tunnel.Geneve, 78)
  })

  it.each([
    ['plain', {}, 0],
    ['key', { key: 0xabcd }, 0xabcd],
    ['checksum+key+seq', { checksum: true, key: 9, seq: 1 }, 9],
  ])('removes GRE (%s) carrying IPv4', (_n, o, id) => {
    const d = decodeBytes(eth({ src: '00:00:00:00:00:0a' }, ipv4({ proto: PROTO.GRE }, gre(o, innerTcp()))))
    expectInner(d, Tunnel.Gre, id)
  })

  it('removes GRE carrying IPv6, Ethernet, ERSPAN II/III and MPLS', () => {
    const outer = (g: Uint8Array): Uint8Array =>
      eth({ src: '00:00:00:00:00:0a' }, ipv4({ proto: PROTO.GRE }, g))
    const d6 = decodeBytes(outer(gre({ key: 1 }, tcp6())))
    expect([d6.info.tunnel, d6.info.ipVersion, d6.info.dstPort]).toEqual([Tunnel.Gre, 6, 443])
    expectInner(decodeBytes(outer(gre({ protocol: ETH.TEB, key: 5 }, eth({}, innerTcp())))), Tunnel.Gre, 5)
    expectInner(
      decodeBytes(outer(gre({ protocol: ETH.ERSPAN2, seq: 1 }, erspan2({}, eth({}, innerTcp()))))),
      Tunnel.Gre,
      0,
    )
    expectInner(decodeBytes(outer(gre({ protocol: ETH.ERSPAN2 }, eth({}, innerTcp())))), Tunnel.Gre, 0) // type I
    expectInner(
      decodeBytes(outer(gre({ protocol: ETH.ERSPAN3 }, erspan3({}, eth({}, innerTcp()))))),
      Tunnel.Gre,
      0,
    )
    expectInner(
      decodeBytes(outer(gre({ protocol: ETH.ERSPAN3 }, erspan3({ platform: true }, eth({}, innerTcp()))))),
      Tunnel.Gre,
      0,
    )
    const m = decodeBytes(outer(gre({ protocol: ETH.MPLS }, mpls([44], innerTcp()))))
    expect([m.info.tunnel, m.info.mplsTopLabel, m.info.dstPort]).toEqual([Tunnel.Gre, 44, 22])
  })

  it('removes PPTP enhanced GRE with PPP inside', () => {
    const d = decodeBytes(
      eth({ src: '00:00:00:00:00:0a' }, ipv4({ proto: PROTO.GRE }, pptpGre({ callId: 321 }, innerTcp()))),
    )
    expectInner(d, Tunnel.Gre, 321)
  })

  it('removes IP-in-IP and 6in4 under IPv4 and IPv6', () => {
    expectInner(
      decodeBytes(eth({ src: '00:00:00:00:00:0a' }, ipv4({ proto: 4 }, innerTcp()))),
      Tunnel.IpInIp,
      0,
    )
    const i46 = decodeBytes(ipv6({ proto: 4 }, innerTcp()), { linkType: 229 })
    expect([i46.info.tunnel, i46.info.ipVersion, i46.info.src[1], i46.info.dstPort]).toEqual([
      Tunnel.IpInIp,
      4,
      0,
      22,
    ])
    const i64 = decodeBytes(ipv4({ proto: 41 }, tcp6()), { linkType: 228 })
    expect([i64.info.tunnel, i64.info.ipVersion, i64.info.dstPort]).toEqual([Tunnel.Ip6In4, 6, 443])
    const i66 = decodeBytes(ipv6({ proto: 41, ext: [optionsExt(60)] }, tcp6()), { linkType: 229 })
    expect([i66.info.tunnel, i66.info.ipLength, i66.info.dstPort]).toEqual([Tunnel.Ip6In4, 60, 443])
  })

  it('removes GTP-U G-PDUs, with and without extension headers', () => {
    expectInner(decodeBytes(outerUdp(2152, gtpu({ teid: 0xfeed }, innerTcp()), 2152)), Tunnel.GtpU, 0xfeed)
    expectInner(
      decodeBytes(
        outerUdp(2152, gtpu({ teid: 5, seq: 3, ext: [gtpPduSessionExt(), gtpPduSessionExt()] }, innerTcp())),
      ),
      Tunnel.GtpU,
      5,
    )
    const echo = decodeBytes(outerUdp(2152, gtpu({ teid: 0, messageType: 1 }, new Uint8Array(0))))
    expect([echo.info.tunnel, echo.info.dstPort]).toEqual([Tunnel.None, 2152])
    const badExt = gtpu({ teid: 5, ext: [gtpPduSessionExt()] }, innerTcp())
    badExt[12] = 0 // extension length 0
    const b = decodeBytes(outerUdp(2152, badExt))
    expect([b.info.tunnel, b.info.dstPort]).toEqual([Tunnel.None, 2152])
    expect(b.anomalies).toEqual({ bad_gtp_extension_header: 1 })
  })

  it('removes Teredo with origin and authentication indications', () => {
    for (const o of [{}, { origin: true }, { auth: true }, { auth: true, origin: true }]) {
      const d = decodeBytes(outerUdp(3544, teredo(o, tcp6())))
      expect([d.info.tunnel, d.info.ipVersion, d.info.dstPort]).toEqual([Tunnel.Teredo, 6, 443])
    }
    const fromServer = decodeBytes(outerUdp(50000, teredo({}, tcp6()), 3544))
    expect(fromServer.info.tunnel).toBe(Tunnel.Teredo)
    const notTeredo = decodeBytes(outerUdp(3544, new Uint8Array(60)))
    expect([notTeredo.info.tunnel, notTeredo.info.dstPort]).toEqual([Tunnel.None, 3544])
  })

  it('keeps the outer packet when the inner one is malformed or not IP', () => {
    const badInner = ipv4({ ihl: 3 }, new Uint8Array(20))
    const d = decodeBytes(eth({}, ipv4({ src: '1.1.1.1', dst: '2.2.2.2', proto: 4 }, badInner)))
    expect([d.r, d.info.tunnel, d.info.tunnelCount, d.info.protocol, d.info.src[0]]).toEqual([
      DecodeResult.Ip,
      Tunnel.None,
      0,
      4,
      ip4Num('1.1.1.1'),
    ])
    expect(d.anomalies).toEqual({ bad_ipv4_header_length: 1 })
    const arpIn = decodeBytes(outerUdp(4789, vxlan({ vni: 3 }, eth({ type: ETH.ARP }, arp()))))
    expect([arpIn.r, arpIn.info.tunnel, arpIn.info.dstPort, arpIn.info.ipLength]).toEqual([
      DecodeResult.Ip,
      Tunnel.None,
      4789,
      20 + 8 + 8 + 14 + 28,
    ])
    expect(arpIn.anomalies).toEqual({})
  })

  it('sets tunnel fields for the outermost tunnel and bounds the depth', () => {
    const nested = eth({}, ipv4({ proto: 47 }, gre({ key: 7 }, ipv4({ proto: 4 }, innerTcp()))))
    const d = decodeBytes(nested)
    expect([d.info.tunnel, d.info.tunnelId, d.info.tunnelCount, d.info.dstPort]).toEqual([
      Tunnel.Gre,
      7,
      2,
      22,
    ])
    let p = innerTcp()
    for (let i = 0; i < 5; i++) p = ipv4({ proto: 4 }, p)
    const deep = decodeBytes(p, { linkType: 228 })
    expect(deep.r).toBe(DecodeResult.Ip)
    expect(deep.info.tunnelCount).toBe(4)
    expect(deep.info.protocol).toBe(4)
    expect(deep.anomalies).toEqual({ tunnel_too_deep: 1 })
  })

  it('does not look into tunnels inside fragments', () => {
    const d = decodeBytes(ipv4({ proto: 4, mf: true }, innerTcp()), { linkType: 228 })
    expect([d.info.tunnel, d.info.protocol, d.info.isFragment]).toEqual([Tunnel.None, 4, true])
  })

  it('counts truncated tunnel headers and keeps the outer flow', () => {
    const cases: [Uint8Array, string][] = [
      [outerUdp(4789, new Uint8Array(4)), 'truncated_vxlan_header'],
      [outerUdp(6081, new Uint8Array(4)), 'truncated_geneve_header'],
      [outerUdp(6081, hex('02 00 65 58 00 00 01 00')), 'truncated_geneve_header'],
      [outerUdp(2152, new Uint8Array(4)), 'truncated_gtp_header'],
      [outerUdp(3544, hex('00 01 05 05')), 'truncated_teredo_header'],
      [eth({}, ipv4({ proto: 47 }, hex('00 00'))), 'truncated_gre_header'],
      [eth({}, ipv4({ proto: 47 }, hex('20 00 08 00 00 00'))), 'truncated_gre_header'],
      [eth({}, ipv4({ proto: 47 }, hex('10 00 88 be 00 00 00 01 00 00'))), 'truncated_erspan_header'],
      [eth({}, ipv4({ proto: 47 }, hex('30 01 88 0b 00 10 00 05 00 00 00 01'))), 'truncated_ppp_header'],
    ]
    for (const [pkt, name] of cases) {
      const d = decodeBytes(pkt)
      expect(d.r, name).toBe(DecodeResult.Ip)
      expect(d.info.tunnel, name).toBe(Tunnel.None)
      expect(d.anomalies, name).toEqual({ [name]: 1 })
    }
  })
})

describe('decoder reuse', () => {
  it('clears fields between packets', () => {
    const anomalies = new Anomalies()
    const decoder = new PacketDecoder(anomalies)
    const a = decodeBytes(tcp6(), { linkType: 229, decoder })
    expect(a.info.src[3]).not.toBe(0)
    const b = decodeBytes(eth({ type: ETH.ARP }, arp()), { decoder })
    expect([b.info.ipVersion, b.info.src[3], b.info.dstPort]).toEqual([0, 0, 0])
  })

  it('clamps each packet to the buffer it is in, also after a longer buffer', () => {
    // The decoder remembers the length of the last buffer: a shorter one must not be read past its end.
    const decoder = new PacketDecoder(new Anomalies())
    const frame = eth({}, tcpSyn())
    const long = new Uint8Array(frame.length + 100)
    long.set(frame)
    const short = frame.slice(0, 20) // Ethernet header and 6 bytes of IPv4
    const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength)
    const out = new PacketInfo()
    const at = (b: Uint8Array): DecodeResult =>
      decoder.decode(b, view(b), 0, frame.length, frame.length, 1, 0, out)
    expect(at(long)).toBe(DecodeResult.Ip)
    expect(at(short)).toBe(DecodeResult.Malformed)
    expect(decoder.anomalies.toObject()).toEqual({ truncated_ipv4_header: 1 })
    expect(at(long)).toBe(DecodeResult.Ip)
  })
})
