// Tests for the fragment cache (fragments.ts) through the decoder: later IPv4/IPv6 fragments get the ports of
// their first fragment (RFC 791, RFC 8200 section 4.5), bounded size, timeout in packet time.
import { describe, expect, it } from 'vitest'
import { Anomalies } from './anomalies.js'
import { PacketDecoder } from './packet-decoder.js'
import { decodeBytes } from './decode-harness.test-util.js'
import {
  PROTO,
  concat,
  eth,
  fragmentExt,
  icmp,
  ipv4,
  ipv6,
  optionsExt,
  udp,
} from '../../test/helpers/packet-builder.js'

const first4 = (id: number, src = '10.0.0.1'): Uint8Array =>
  eth(
    {},
    ipv4(
      { src, id, mf: true, proto: PROTO.UDP },
      udp({ sport: 5353, dport: 9999, payload: new Uint8Array(24) }),
    ),
  )
const later4 = (id: number, src = '10.0.0.1', more = false): Uint8Array =>
  eth({}, ipv4({ src, id, mf: more, fragOffset: 32, proto: PROTO.UDP }, new Uint8Array(40)))

describe('fragment cache', () => {
  it('gives later IPv4 fragments the ports of the first', () => {
    const dec = new PacketDecoder(new Anomalies())
    const a = decodeBytes(first4(1), { decoder: dec, tsUs: 1 })
    expect([a.info.isFragment, a.info.srcPort, a.info.dstPort]).toEqual([true, 5353, 9999])
    const b = decodeBytes(later4(1, '10.0.0.1', true), { decoder: dec, tsUs: 2 })
    expect([b.info.isFragment, b.info.fragOffset, b.info.srcPort, b.info.dstPort]).toEqual([
      true,
      32,
      5353,
      9999,
    ])
    const c = decodeBytes(later4(1), { decoder: dec, tsUs: 3 })
    expect([c.info.moreFragments, c.info.dstPort]).toEqual([false, 9999])
    expect(c.anomalies).toEqual({})
    // Another datagram id, or another source, is unknown.
    expect(decodeBytes(later4(2), { decoder: dec, tsUs: 4 }).info.dstPort).toBe(0)
    const d = decodeBytes(later4(1, '10.0.0.9'), { decoder: dec, tsUs: 5 })
    expect(d.info.dstPort).toBe(0)
    expect(d.anomalies).toEqual({ fragment_without_first: 2 })
  })

  it('gives later IPv6 fragments the ports of the first (32-bit id)', () => {
    const dec = new PacketDecoder(new Anomalies())
    const f = ipv6(
      { proto: PROTO.UDP, ext: [fragmentExt({ more: true, id: 0x80000001 })] },
      udp({ sport: 1, dport: 2, payload: new Uint8Array(16) }),
    )
    decodeBytes(f, { linkType: 229, decoder: dec })
    const l = decodeBytes(
      ipv6({ proto: PROTO.UDP, ext: [fragmentExt({ offset: 24, id: 0x80000001 })] }, new Uint8Array(8)),
      {
        linkType: 229,
        decoder: dec,
      },
    )
    expect([
      l.info.isFragment,
      l.info.fragOffset,
      l.info.ipId,
      l.info.protocol,
      l.info.srcPort,
      l.info.dstPort,
    ]).toEqual([true, 24, 0x80000001, 17, 1, 2])
    expect(l.anomalies).toEqual({})
  })

  it('gives later IPv6 fragments the protocol and ports of the first when a Destination Options header follows the Fragment header', () => {
    const dec = new PacketDecoder(new Anomalies())
    // The fragmentable part starts with a Destination Options header (8 octets), then UDP.
    const dest = optionsExt(PROTO.DSTOPTS, new Uint8Array(4))
    const first = concat(
      concat(new Uint8Array([PROTO.UDP]), dest.bytes.subarray(1)),
      udp({ sport: 5353, dport: 9999, payload: new Uint8Array(16) }),
    )
    const f = decodeBytes(ipv6({ proto: PROTO.DSTOPTS, ext: [fragmentExt({ more: true, id: 7 })] }, first), {
      linkType: 229,
      decoder: dec,
      tsUs: 1,
    })
    expect([f.info.protocol, f.info.srcPort, f.info.dstPort]).toEqual([PROTO.UDP, 5353, 9999])
    // A later fragment's Fragment header names the Destination Options header (60), not UDP.
    const l = decodeBytes(
      ipv6({ proto: PROTO.DSTOPTS, ext: [fragmentExt({ offset: 32, id: 7 })] }, new Uint8Array(8)),
      { linkType: 229, decoder: dec, tsUs: 2 },
    )
    expect([l.info.isFragment, l.info.protocol, l.info.srcPort, l.info.dstPort]).toEqual([
      true,
      PROTO.UDP,
      5353,
      9999,
    ])
    expect(l.anomalies).toEqual({})
  })

  it('carries the ICMP type and code to later fragments', () => {
    const dec = new PacketDecoder(new Anomalies())
    decodeBytes(
      eth({}, ipv4({ id: 5, mf: true, proto: PROTO.ICMP }, icmp({ type: 8, payload: new Uint8Array(16) }))),
      {
        decoder: dec,
      },
    )
    const l = decodeBytes(eth({}, ipv4({ id: 5, fragOffset: 24, proto: PROTO.ICMP }, new Uint8Array(8))), {
      decoder: dec,
    })
    expect([l.info.icmpType, l.info.icmpCode]).toEqual([8, 0])
  })

  it('expires entries after the timeout (packet time)', () => {
    const dec = new PacketDecoder(new Anomalies(), { fragmentTimeoutUs: 1000 })
    decodeBytes(first4(1), { decoder: dec, tsUs: 0 })
    expect(decodeBytes(later4(1), { decoder: dec, tsUs: 1000 }).info.dstPort).toBe(9999)
    const late = decodeBytes(later4(1), { decoder: dec, tsUs: 2001 })
    expect(late.info.dstPort).toBe(0)
    expect(late.anomalies).toEqual({ fragment_without_first: 1 })
    // Inserting a new first fragment also drops expired ones.
    decodeBytes(first4(2), { decoder: dec, tsUs: 10_000 })
    decodeBytes(first4(3), { decoder: dec, tsUs: 20_000 })
    expect(dec.fragments.size).toBe(1)
  })

  it('is bounded and evicts the oldest entry', () => {
    const dec = new PacketDecoder(new Anomalies(), { fragmentCacheSize: 2 })
    decodeBytes(first4(1), { decoder: dec, tsUs: 1 })
    decodeBytes(first4(2), { decoder: dec, tsUs: 2 })
    const third = decodeBytes(first4(3), { decoder: dec, tsUs: 3 })
    expect(third.anomalies).toEqual({ fragment_cache_full: 1 })
    expect(dec.fragments.size).toBe(2)
    expect(decodeBytes(later4(1), { decoder: dec, tsUs: 4 }).info.dstPort).toBe(0)
    expect(decodeBytes(later4(2), { decoder: dec, tsUs: 5 }).info.dstPort).toBe(9999)
    expect(decodeBytes(later4(3), { decoder: dec, tsUs: 6 }).info.dstPort).toBe(9999)
  })

  it('is not touched by non-fragments', () => {
    const dec = new PacketDecoder(new Anomalies())
    decodeBytes(eth({}, ipv4({ proto: PROTO.UDP, df: true }, udp({ sport: 1, dport: 2 }))), { decoder: dec })
    expect(dec.fragments.size).toBe(0)
  })
})
