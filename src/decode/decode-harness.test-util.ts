/**
 * Test-only harness around PacketDecoder: decodes one crafted packet placed inside a larger buffer whose
 * surrounding bytes are filled with a given value, so tests can prove results never depend on bytes outside
 * the packet's range. Imported by tests only (tsconfig.build.json still compiles it, harmlessly).
 */
import { Anomalies } from './anomalies.js'
import { DecodeResult, PacketInfo } from './packet.js'
import { PacketDecoder, type PacketDecoderOptions } from './packet-decoder.js'

export interface Decoded {
  r: DecodeResult
  info: PacketInfo
  anomalies: Record<string, number>
  /** Offsets in `info` are absolute; this is where the packet started in the test buffer. */
  base: number
}

export interface DecodeOptions {
  linkType?: number
  caplen?: number
  origlen?: number
  tsUs?: number
  /** Byte value around the packet (default 0xee). */
  fill?: number
  /** Bytes placed before the packet (default 7, to catch alignment assumptions). */
  before?: number
  decoder?: PacketDecoder
  decoderOptions?: PacketDecoderOptions
}

/** Decode `pkt` (cut to `caplen` bytes) with `origlen` defaulting to the full packet length. */
export function decodeBytes(pkt: Uint8Array, o: DecodeOptions = {}): Decoded {
  const caplen = o.caplen ?? pkt.length
  const before = o.before ?? 7
  const buf = new Uint8Array(before + caplen + 64).fill(o.fill ?? 0xee)
  buf.set(pkt.subarray(0, caplen), before)
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const anomalies = o.decoder?.anomalies ?? new Anomalies()
  const dec = o.decoder ?? new PacketDecoder(anomalies, o.decoderOptions ?? {})
  const info = new PacketInfo()
  const r = dec.decode(buf, view, before, caplen, o.origlen ?? pkt.length, o.linkType ?? 1, o.tsUs ?? 0, info)
  return { r, info, anomalies: dec.anomalies.toObject(), base: before }
}

/** A plain snapshot of every PacketInfo field, with offsets made relative to the packet start. */
export function snapshot(d: Decoded): Record<string, unknown> {
  const i = d.info
  const rel = (x: number): number => (x === 0 ? 0 : x - d.base)
  return {
    r: d.r,
    hasEthernet: i.hasEthernet,
    srcMac: [i.srcMacHi, i.srcMacLo],
    dstMac: [i.dstMacHi, i.dstMacLo],
    etherType: i.etherType,
    vlanId: i.vlanId,
    innerVlanId: i.innerVlanId,
    vlanPcp: i.vlanPcp,
    mplsTopLabel: i.mplsTopLabel,
    mplsLabels: i.mplsLabels,
    l3Offset: rel(i.l3Offset),
    tunnel: i.tunnel,
    tunnelId: i.tunnelId,
    tunnelCount: i.tunnelCount,
    ipVersion: i.ipVersion,
    src: Array.from(i.src),
    dst: Array.from(i.dst),
    ipLength: i.ipLength,
    ttl: i.ttl,
    tos: i.tos,
    ipId: i.ipId,
    flowLabel: i.flowLabel,
    protocol: i.protocol,
    isFragment: i.isFragment,
    fragOffset: i.fragOffset,
    moreFragments: i.moreFragments,
    srcPort: i.srcPort,
    dstPort: i.dstPort,
    tcpFlags: i.tcpFlags,
    tcpSeq: i.tcpSeq,
    tcpAck: i.tcpAck,
    tcpWindow: i.tcpWindow,
    udpLength: i.udpLength,
    icmpType: i.icmpType,
    icmpCode: i.icmpCode,
    l4Offset: rel(i.l4Offset),
    payloadOffset: rel(i.payloadOffset),
    payloadCaptured: i.payloadCaptured,
    payloadLength: i.payloadLength,
    anomalies: d.anomalies,
  }
}
