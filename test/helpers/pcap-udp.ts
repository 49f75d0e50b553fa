// UDP datagrams of a classic pcap file with Ethernet framing (IPv4 or IPv6, optional 802.1Q tag), for the L7
// parser tests that replay real captures datagram by datagram (src/l7/quic.test.ts, src/l7/dtls.test.ts).
import { readFileSync } from 'node:fs'

export interface UdpDatagram {
  tsUs: number
  src: string
  dst: string
  srcPort: number
  dstPort: number
  payload: Uint8Array
}

export function udpDatagrams(file: string): UdpDatagram[] {
  const b = readFileSync(file)
  const magic = b.readUInt32LE(0)
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d
  const nano = magic === 0xa1b23c4d || magic === 0x4d3cb2a1
  const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o))
  if (u32(20) !== 1) throw new Error(`${file}: not Ethernet`)
  const out: UdpDatagram[] = []
  for (let p = 24; p + 16 <= b.length;) {
    const tsUs = u32(p) * 1e6 + (nano ? Math.floor(u32(p + 4) / 1000) : u32(p + 4))
    const caplen = u32(p + 8)
    const frame = b.subarray(p + 16, p + 16 + caplen)
    p += 16 + caplen
    let o = 12
    let type = frame.readUInt16BE(o)
    if (type === 0x8100) type = frame.readUInt16BE((o += 4))
    o += 2
    let src: string, dst: string, proto: number, l4: number, end: number
    if (type === 0x0800) {
      proto = frame[o + 9]!
      l4 = o + (frame[o]! & 0x0f) * 4
      end = o + frame.readUInt16BE(o + 2)
      src = [...frame.subarray(o + 12, o + 16)].join('.')
      dst = [...frame.subarray(o + 16, o + 20)].join('.')
    } else if (type === 0x86dd) {
      proto = frame[o + 6]!
      l4 = o + 40
      end = l4 + frame.readUInt16BE(o + 4)
      const v6 = (a: number): string =>
        frame
          .subarray(a, a + 16)
          .toString('hex')
          .replace(/(.{4})(?!$)/g, '$1:')
      src = v6(o + 8)
      dst = v6(o + 24)
    } else continue
    if (proto !== 17) continue
    out.push({
      tsUs,
      src,
      dst,
      srcPort: frame.readUInt16BE(l4),
      dstPort: frame.readUInt16BE(l4 + 2),
      payload: Uint8Array.from(frame.subarray(l4 + 8, Math.min(end, frame.length))),
    })
  }
  return out
}
