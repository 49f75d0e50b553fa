// LINKTYPE_NFLOG (239) through the packet decoder: the IP packet in NFULA_PAYLOAD after other attributes
// (padded to 4 octets), both TLV byte orders, IPv6, a message without payload, truncation and snap
// lengths, and random frames never throwing or reading outside the packet. Spec: tcpdump.org LINKTYPE_NFLOG.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { concat, ip4Num, ipv4, ipv6, PROTO, tcp, udp } from '../../test/helpers/packet-builder.js'
import { decodeBytes } from './decode-harness.test-util.js'
import { nflogPayload, NflogStatus, type NflogSpan } from './nflog.js'
import { DecodeResult } from './packet.js'

const NFLOG = 239

/** One netlink attribute: length (4 + value) and type in the given byte order, value padded to 4. */
function tlv(type: number, value: Uint8Array, le = true): Uint8Array {
  const b = new Uint8Array(4 + value.length + ((4 - (value.length % 4)) % 4))
  const v = new DataView(b.buffer)
  v.setUint16(0, 4 + value.length, le)
  v.setUint16(2, type, le)
  b.set(value, 4)
  return b
}

function nflog(family: number, attrs: Uint8Array[]): Uint8Array {
  return concat(new Uint8Array([family, 0, 0, 42]), ...attrs)
}

const pkt4 = (): Uint8Array =>
  ipv4({ src: '10.0.2.15', dst: '93.184.216.34', proto: PROTO.TCP }, tcp({ sport: 49762, dport: 80 }))

/** What libnetfilter_log puts before the payload: packet header, prefix (5 octets, padded), ifindex, uid. */
function before(le = true): Uint8Array[] {
  return [
    tlv(1, new Uint8Array([0x08, 0x00, 3, 0]), le),
    tlv(10, new Uint8Array([0x61, 0x62, 0x63, 0x64, 0]), le),
    tlv(5, new Uint8Array([0, 0, 0, 2]), le),
    tlv(11, new Uint8Array(4), le),
  ]
}

describe('NFLOG link type', () => {
  it('decodes the IPv4 packet of NFULA_PAYLOAD after padded attributes, little- and big-endian TLVs', () => {
    for (const le of [true, false]) {
      const d = decodeBytes(nflog(2, [...before(le), tlv(9, pkt4(), le)]), { linkType: NFLOG })
      expect(d.r).toBe(DecodeResult.Ip)
      expect([d.info.src[0], d.info.dst[0], d.info.srcPort, d.info.dstPort]).toEqual([
        ip4Num('10.0.2.15'),
        ip4Num('93.184.216.34'),
        49762,
        80,
      ])
      expect(d.anomalies).toEqual({})
    }
  })

  it('decodes IPv6 (AF_INET6) and an attribute with the netlink byte-order flag', () => {
    const p6 = ipv6(
      { src: '2001:db8::1', dst: '2001:db8::2', proto: PROTO.UDP },
      udp({ sport: 5, dport: 53 }),
    )
    const d = decodeBytes(nflog(10, [tlv(0x4000 | 1, new Uint8Array(4)), tlv(9, p6)]), { linkType: NFLOG })
    expect([d.r, d.info.ipVersion, d.info.dstPort]).toEqual([DecodeResult.Ip, 6, 53])
  })

  it('a message without a payload attribute, or of a non-IP family, is not IP; a cut header is counted', () => {
    expect(decodeBytes(nflog(2, before()), { linkType: NFLOG }).r).toBe(DecodeResult.NonIp)
    expect(decodeBytes(nflog(7, [tlv(9, pkt4())]), { linkType: NFLOG }).r).toBe(DecodeResult.NonIp)
    const short = decodeBytes(new Uint8Array([2, 0, 0]), { linkType: NFLOG })
    expect([short.r, short.anomalies]).toEqual([DecodeResult.Malformed, { truncated_nflog_header: 1 }])
    const zeroLen = nflog(2, [new Uint8Array([0, 0, 1, 0]), tlv(9, pkt4())])
    expect(decodeBytes(zeroLen, { linkType: NFLOG }).anomalies).toEqual({ truncated_nflog_header: 1 })
    // An attribute longer than the frame.
    const long = nflog(2, [tlv(1, new Uint8Array(4))])
    long[4] = 200
    expect(decodeBytes(long, { linkType: NFLOG }).anomalies).toEqual({ truncated_nflog_header: 1 })
  })

  it('a snap length that cuts the payload leaves the captured part to the IP decoder', () => {
    const frame = nflog(2, [...before(), tlv(9, pkt4())])
    const d = decodeBytes(frame, { linkType: NFLOG, caplen: frame.length - 10 })
    expect([d.r, d.info.dstPort]).toEqual([DecodeResult.Ip, 80])
    expect(d.anomalies).toEqual({ snaplen_truncated: 1 })
  })

  it('random frames: a status, offsets inside the frame, never an exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (body, withPayload) => {
        const frame = withPayload ? nflog(2, [body, tlv(9, pkt4())]) : body
        const span: NflogSpan = { family: 0, start: 0, end: 0 }
        const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength)
        const s = nflogPayload(v, 0, frame.length, span)
        if (s === NflogStatus.Payload) {
          expect(span.start).toBeGreaterThanOrEqual(8)
          expect(span.end).toBeLessThanOrEqual(frame.length)
        }
        decodeBytes(frame, { linkType: NFLOG })
      }),
    )
  })
})
