/**
 * sFlow version 5 datagrams (sflow.org sflow_version_5.txt, XDR encoding): agent address, sub-agent, datagram
 * sequence, uptime and samples. Flow samples (0:1, expanded 0:3) become sampled-flow records: the raw packet
 * header record (0:1) is decoded by the probe's PacketDecoder (Ethernet, IPv4, IPv6), extended switch data
 * (0:1001) gives VLANs, and the counts are scaled by the sampling rate (packetDeltaCount = rate, octetDeltaCount
 * = IP length × rate). Counter samples (0:2, expanded 0:4) with generic (0:1) and Ethernet (0:2) interface
 * counters (and the port name, 0:1005, as interfaceName) become interface-counter records; sampled IPv4/IPv6
 * data (0:3, 0:4) is used when an agent sends it instead of a header. Unknown sample and record formats are skipped by their length
 * and counted. Datagram sequence numbers are accounted per (agent, sub-agent), sample sequence numbers per
 * source id, and sampling-pool drops are reported in every flow record (ignoredPacketTotalCount).
 * Every read is bounded by the enclosing sample or record length; nothing throws for bad input.
 */
import { Anomalies } from '../decode/anomalies.js'
import { PacketDecoder } from '../decode/packet-decoder.js'
import { DecodeResult, PacketInfo } from '../decode/packet.js'
import { ipv4Text, ipv6Text, type DecodedField, type FieldValue } from '../ipfix/decoder.js'
import { lookupElement, type IeDataType } from '../ipfix/elements.js'
import { SFLOW_PEN } from '../ipfix/enterprise/sflow.js'
import type { DecodeOutput, MessageDecoderHost } from './decode-output.js'
import type { TransportSession } from './session.js'

const LINK_ETHERNET = 1
const LINK_IPV4 = 228
const LINK_IPV6 = 229
/** Bounds that keep a hostile datagram from looping. */
const MAX_SAMPLES = 1024
const MAX_RECORDS = 256

const anomalies = new Anomalies()
const packetDecoder = new PacketDecoder(anomalies)
const info = new PacketInfo()

function iana(id: number, value: FieldValue, type?: IeDataType): DecodedField {
  const def = lookupElement(0, id)
  return { pen: 0, id, name: def?.name ?? `0.${id}`, type: type ?? def?.type ?? 'octetArray', value }
}

function sf(id: number, value: FieldValue): DecodedField {
  const def = lookupElement(SFLOW_PEN, id)
  return {
    pen: SFLOW_PEN,
    id,
    name: def?.name ?? `${SFLOW_PEN}.${id}`,
    type: def?.type ?? 'unsigned32',
    value,
  }
}

class Cursor {
  constructor(
    readonly v: DataView,
    public p: number,
    readonly end: number,
  ) {}
  has(n: number): boolean {
    return this.end - this.p >= n
  }
  u32(): number {
    const x = this.v.getUint32(this.p)
    this.p += 4
    return x
  }
  u64(): bigint {
    const x = this.v.getBigUint64(this.p)
    this.p += 8
    return x
  }
}

/** An sFlow address (type 1 IPv4, 2 IPv6); undefined when unknown or cut short. */
function address(c: Cursor): string | undefined {
  if (!c.has(4)) return undefined
  const t = c.u32()
  if (t === 1 && c.has(4)) return ipv4Text(c.u32())
  if (t === 2 && c.has(16)) {
    const s = ipv6Text(c.v, c.p)
    c.p += 16
    return s
  }
  return undefined
}

export function decodeSflow(
  col: MessageDecoderHost,
  bytes: Uint8Array,
  sess: TransportSession,
  out: DecodeOutput,
): void {
  col.count('sflow_datagrams')
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const c = new Cursor(v, 4, bytes.byteLength)
  const agent = address(c)
  if (agent === undefined || !c.has(16)) return col.fail(out, 'sflow_short_header')
  const subAgent = c.u32()
  const sequence = c.u32()
  const uptime = c.u32()
  const count = c.u32()
  sess.sequence(`sflow/${agent}`, subAgent).observe(sequence, 1)
  const head: DecodedField[] = [
    agent.includes(':') ? iana(131, agent) : iana(130, agent),
    sf(1, subAgent),
    sf(2, sequence),
    sf(3, uptime),
  ]
  const base = {
    version: 'sflow' as const,
    exporter: agent,
    odid: subAgent,
    exportTime: 0,
    sequence,
    deferred: false,
  }
  for (let i = 0; i < count && i < MAX_SAMPLES; i++) {
    if (!c.has(8)) return col.fail(out, 'sflow_truncated_sample')
    const format = c.u32()
    const len = c.u32()
    if (len > c.end - c.p) return col.fail(out, 'sflow_sample_overrun')
    const s = new Cursor(v, c.p, c.p + len)
    c.p += len
    const enterprise = format >>> 12
    const kind = format & 0xfff
    if (enterprise !== 0 || kind < 1 || kind > 4) {
      col.count('sflow_unknown_sample')
      continue
    }
    const expanded = kind === 3 || kind === 4
    const hdrLen = (kind === 1 ? 32 : kind === 3 ? 44 : kind === 2 ? 12 : 16) - 4
    if (!s.has(hdrLen + 4)) {
      col.count('sflow_truncated_sample')
      continue
    }
    const sampleSeq = s.u32()
    let srcType: number
    let srcIndex: number
    if (expanded) {
      srcType = s.u32()
      srcIndex = s.u32()
    } else {
      const id = s.u32()
      srcType = id >>> 24
      srcIndex = id & 0xffffff
    }
    sess
      .sequence(
        `sflow-sample/${agent}/${subAgent}/${kind & 1 ? 'flow' : 'counter'}`,
        srcType * 2 ** 24 + srcIndex,
      )
      .observe(sampleSeq, 1)
    const fields: DecodedField[] = [...head, sf(4, sampleSeq), sf(5, srcType), sf(6, srcIndex)]
    if (kind === 1 || kind === 3) {
      const rate = s.u32()
      const pool = s.u32()
      const drops = s.u32()
      let input: number
      let output: number
      if (expanded) {
        s.u32() // input format
        input = s.u32()
        s.u32() // output format
        output = s.u32()
      } else {
        input = s.u32() & 0x3fffffff
        output = s.u32() & 0x3fffffff
      }
      fields.push(
        iana(34, rate),
        iana(310, pool),
        iana(164, BigInt(drops)),
        iana(10, input),
        iana(14, output),
      )
      if (!flowRecords(col, s, fields, rate)) continue
      out.records.push({ ...base, templateId: 0, isOptions: false, scopeCount: 0, fields })
    } else {
      counterRecords(col, s, fields)
      out.records.push({ ...base, templateId: 0, isOptions: true, scopeCount: 0, fields })
    }
  }
  if (count > MAX_SAMPLES) col.count('sflow_too_many_samples')
}

/** Flow records of one flow sample into `fields`; false when the sample is unusable. */
function flowRecords(col: MessageDecoderHost, s: Cursor, fields: DecodedField[], rate: number): boolean {
  if (!s.has(4)) return false
  const n = s.u32()
  for (let i = 0; i < n && i < MAX_RECORDS; i++) {
    if (!s.has(8)) {
      col.count('sflow_truncated_record')
      return true
    }
    const format = s.u32()
    const len = s.u32()
    if (len > s.end - s.p) {
      col.count('sflow_record_overrun')
      return true
    }
    const r = new Cursor(s.v, s.p, s.p + len)
    s.p += len
    if (format === 1) rawHeader(col, r, fields, rate)
    else if (format === 1001 && r.has(16)) {
      fields.push(iana(58, r.u32()), iana(244, r.u32()), iana(59, r.u32()))
      r.u32() // output priority: no separate element
    } else if (format === 1002) {
      const nh = address(r)
      if (nh !== undefined) fields.push(nh.includes(':') ? iana(62, nh) : iana(15, nh))
      if (r.has(8)) {
        const sm = r.u32()
        const dm = r.u32()
        const v6 = nh?.includes(':') === true
        fields.push(iana(v6 ? 29 : 9, sm), iana(v6 ? 30 : 13, dm))
      }
    } else if (format === 3 && r.has(32)) {
      // Sampled IPv4: length, protocol, src, dst, src port, dst port, TCP flags, ToS.
      const len = r.u32()
      const proto = r.u32()
      const src = ipv4Text(r.u32())
      const dst = ipv4Text(r.u32())
      fields.push(iana(224, BigInt(len)), iana(4, proto), iana(8, src), iana(12, dst))
      fields.push(iana(7, r.u32()), iana(11, r.u32()), iana(6, r.u32()), iana(5, r.u32()))
    } else if (format === 4 && r.has(56)) {
      // Sampled IPv6: length, protocol, src, dst, src port, dst port, TCP flags, priority.
      const len = r.u32()
      const proto = r.u32()
      const src = ipv6Text(r.v, r.p)
      const dst = ipv6Text(r.v, r.p + 16)
      r.p += 32
      fields.push(iana(224, BigInt(len)), iana(4, proto), iana(27, src), iana(28, dst))
      fields.push(iana(7, r.u32()), iana(11, r.u32()), iana(6, r.u32()), iana(5, r.u32()))
    } else col.count('sflow_unknown_flow_record')
  }
  return true
}

function rawHeader(col: MessageDecoderHost, r: Cursor, fields: DecodedField[], rate: number): void {
  if (!r.has(16)) {
    col.count('sflow_truncated_record')
    return
  }
  const proto = r.u32()
  const frameLength = r.u32()
  const stripped = r.u32()
  const hlen = r.u32()
  if (hlen > r.end - r.p) {
    col.count('sflow_header_overrun')
    return
  }
  fields.push(sf(7, proto), sf(8, frameLength), sf(9, stripped), iana(312, Math.min(frameLength, 0xffff)))
  const link = proto === 1 ? LINK_ETHERNET : proto === 11 ? LINK_IPV4 : proto === 12 ? LINK_IPV6 : -1
  if (link < 0) {
    col.count('sflow_unknown_header_protocol')
    return
  }
  const bytes = new Uint8Array(r.v.buffer, r.v.byteOffset, r.v.byteLength)
  const res = packetDecoder.decode(bytes, r.v, r.p, hlen, frameLength, link, 0, info)
  if (info.hasEthernet) {
    fields.push(
      iana(56, mac(info.srcMacHi, info.srcMacLo)),
      iana(80, mac(info.dstMacHi, info.dstMacLo)),
      iana(256, info.etherType),
    )
    if (info.vlanId !== 0) fields.push(iana(243, info.vlanId))
  }
  fields.push(iana(2, BigInt(rate)))
  if (res !== DecodeResult.Ip) {
    fields.push(iana(352, BigInt(frameLength) * BigInt(rate)))
    return
  }
  const v4 = info.ipVersion === 4
  fields.push(
    iana(60, info.ipVersion),
    v4 ? iana(8, ipv4Text(info.src[0] ?? 0)) : iana(27, v6(info.src)),
    v4 ? iana(12, ipv4Text(info.dst[0] ?? 0)) : iana(28, v6(info.dst)),
    iana(4, info.protocol),
    iana(5, info.tos),
    iana(192, info.ttl),
    iana(224, BigInt(info.ipLength)),
    iana(1, BigInt(info.ipLength) * BigInt(rate)),
  )
  if (v4) fields.push(iana(54, info.ipId), iana(88, info.fragOffset))
  if (info.protocol === 6 || info.protocol === 17 || info.protocol === 132) {
    fields.push(iana(7, info.srcPort), iana(11, info.dstPort))
    if (info.protocol === 6) fields.push(iana(6, info.tcpFlags))
  } else if (info.protocol === 1 || info.protocol === 58) {
    fields.push(iana(info.protocol === 1 ? 32 : 139, info.icmpType * 256 + info.icmpCode))
  }
}

function counterRecords(col: MessageDecoderHost, s: Cursor, fields: DecodedField[]): void {
  if (!s.has(4)) return
  const n = s.u32()
  for (let i = 0; i < n && i < MAX_RECORDS; i++) {
    if (!s.has(8)) {
      col.count('sflow_truncated_record')
      return
    }
    const format = s.u32()
    const len = s.u32()
    if (len > s.end - s.p) {
      col.count('sflow_record_overrun')
      return
    }
    const r = new Cursor(s.v, s.p, s.p + len)
    s.p += len
    if (format === 1 && r.has(88)) {
      // ifIndex ifType ifSpeed(64) ifDirection ifStatus ifInOctets(64) 6×u32 ifOutOctets(64) 6×u32
      const wide = new Set([103, 106, 113])
      for (let id = 101; id <= 119; id++) fields.push(sf(id, wide.has(id) ? r.u64() : r.u32()))
    } else if (format === 2 && r.has(52)) {
      for (let id = 201; id <= 213; id++) fields.push(sf(id, r.u32()))
    } else if (format === 1005 && r.has(4)) {
      // Port name: a string of at most 255 octets (sFlow host/port extensions).
      const n = r.u32()
      if (n <= 255 && r.has(n)) {
        const name = new TextDecoder('utf-8', { fatal: false }).decode(
          new Uint8Array(r.v.buffer, r.v.byteOffset + r.p, n),
        )
        fields.push(iana(82, name))
      } else col.count('sflow_bad_port_name')
    } else col.count('sflow_unknown_counter_record')
  }
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0')

function mac(hi: number, lo: number): string {
  return [hi >>> 8, hi & 255, lo >>> 24, (lo >>> 16) & 255, (lo >>> 8) & 255, lo & 255].map(hex2).join(':')
}

function v6(a: Uint32Array): string {
  const v = new DataView(new ArrayBuffer(16))
  for (let i = 0; i < 4; i++) v.setUint32(i * 4, a[i] ?? 0)
  return ipv6Text(v, 0)
}
