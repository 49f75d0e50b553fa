/**
 * Field group `core` (always on): the L3/L4 key, counters and times of every biflow record.
 *
 * Elements per RFC 7012 and the IANA registry; reverse counterparts per RFC 5103 (PEN 29305). Byte counts
 * are IP-level (octetDeltaCount counts IP total length), tcpControlBits uses the 1-octet reduced size that
 * every peer decodes (RFC 7125 §3; pmacct misreads 2 octets). The ICMP type/code pair is only in the
 * templates of ICMP and ICMPv6 flows (RecordKind.Icmp), as softflowd does.
 */
import type { PacketInfo } from '../../decode/packet.js'
import { BufferWriter, type RecordWriter } from '../../ipfix/record-writer.js'
import { resized, swapEntries } from '../../util/typed-arrays.js'
import { Dir, RecordKind, type FieldList, type FlowFeature, type FlowView } from '../feature.js'

const V4_FIELDS: FieldList = [
  ['flowStartMilliseconds'],
  ['flowEndMilliseconds'],
  ['sourceIPv4Address'],
  ['destinationIPv4Address'],
  ['sourceTransportPort'],
  ['destinationTransportPort'],
  ['protocolIdentifier'],
  ['ipVersion'],
  ['octetDeltaCount'],
  ['packetDeltaCount'],
  ['reverseOctetDeltaCount'],
  ['reversePacketDeltaCount'],
  ['tcpControlBits', 1],
  ['reverseTcpControlBits', 1],
  ['ipClassOfService'],
  ['reverseIpClassOfService'],
  ['minimumTTL'],
  ['maximumTTL'],
  ['reverseMinimumTTL'],
  ['reverseMaximumTTL'],
  ['icmpTypeCodeIPv4'],
  ['reverseIcmpTypeCodeIPv4'],
  ['flowEndReason'],
  ['biflowDirection'],
]

const V6_FIELDS: FieldList = V4_FIELDS.map(([name, len]) => {
  const v6 = name
    .replace('IPv4Address', 'IPv6Address')
    .replace('icmpTypeCodeIPv4', 'icmpTypeCodeIPv6')
    .replace('IcmpTypeCodeIPv4', 'IcmpTypeCodeIPv6')
  return len === undefined ? ([v6] as const) : ([v6, len] as const)
})

/** Without the ICMP type/code pair: records of flows other than ICMP/ICMPv6 (where both are always 0). */
const withoutIcmp = (fields: FieldList): FieldList => fields.filter(([name]) => !/icmpTypeCode/i.test(name))
const V4_FIELDS_NO_ICMP = withoutIcmp(V4_FIELDS)
const V6_FIELDS_NO_ICMP = withoutIcmp(V6_FIELDS)

/** Octets of a core record (all fields fixed-length), ICMP type/code (4 octets) included. */
const V4_LENGTH = 76
const V6_LENGTH = 100
const TWO32 = 0x1_0000_0000

/** Non-negative safe integer as 8 octets at `p`; returns the next position. */
function putU64(view: DataView, p: number, v: number): number {
  const hi = v >= TWO32 ? Math.floor(v / TWO32) : 0
  view.setUint32(p, hi)
  view.setUint32(p + 4, v - hi * TWO32)
  return p + 8
}

const BIFLOW_INITIATOR = 1 // biflowDirection: the source is the initiator (RFC 5103 §6.3)

export class CoreFields implements FlowFeature {
  readonly name = 'core'
  /** octets fwd, octets rev, packets fwd, packets rev. */
  private counts = new Float64Array(0)
  /** tcpControlBits fwd, rev. */
  private tcpFlags = new Uint16Array(0)
  /** ICMP type·256+code of the first ICMP packet per direction. */
  private icmp = new Uint16Array(0)
  /** TOS of the first packet per direction. */
  private tos = new Uint8Array(0)
  /** min TTL fwd, max TTL fwd, min TTL rev, max TTL rev. */
  private ttl = new Uint8Array(0)
  /** Bit 0: a forward packet was seen, bit 1: a reverse packet. */
  private seen = new Uint8Array(0)
  private readonly addr = new Uint32Array(4)

  /** Totals over all packets accounted (for the summary and accounting checks). */
  packets = 0
  octets = 0

  fields(ipVersion: 4 | 6, kind: number): FieldList {
    if ((kind & RecordKind.Icmp) !== 0) return ipVersion === 4 ? V4_FIELDS : V6_FIELDS
    return ipVersion === 4 ? V4_FIELDS_NO_ICMP : V6_FIELDS_NO_ICMP
  }

  resize(capacity: number, used: number): void {
    this.counts = resized(this.counts, capacity * 4, used * 4)
    this.tcpFlags = resized(this.tcpFlags, capacity * 2, used * 2)
    this.icmp = resized(this.icmp, capacity * 2, used * 2)
    this.tos = resized(this.tos, capacity * 2, used * 2)
    this.ttl = resized(this.ttl, capacity * 4, used * 4)
    this.seen = resized(this.seen, capacity, used)
  }

  onCreate(id: number): void {
    this.onReset(id)
    this.icmp[id * 2] = 0
    this.icmp[id * 2 + 1] = 0
    this.tos[id * 2] = 0
    this.tos[id * 2 + 1] = 0
    this.seen[id] = 0
  }

  onPacket(id: number, p: PacketInfo, dir: Dir): void {
    const len = p.ipLength
    this.packets++
    this.octets += len
    const c = id * 4 + dir
    this.counts[c]! += len
    this.counts[c + 2]! += 1
    const d2 = id * 2 + dir
    this.tcpFlags[d2]! |= p.tcpFlags
    const ttl = p.ttl
    const t = id * 4 + dir * 2
    if (ttl < this.ttl[t]!) this.ttl[t] = ttl
    if (ttl > this.ttl[t + 1]!) this.ttl[t + 1] = ttl
    const bit = 1 << dir
    if ((this.seen[id]! & bit) === 0) {
      this.seen[id]! |= bit
      this.tos[d2] = p.tos
      if ((p.protocol === 1 || p.protocol === 58) && !(p.isFragment && p.fragOffset > 0)) {
        this.icmp[d2] = (p.icmpType << 8) | p.icmpCode
      }
    }
  }

  onReset(id: number): void {
    const c = id * 4
    this.counts[c] = this.counts[c + 1] = this.counts[c + 2] = this.counts[c + 3] = 0
    this.tcpFlags[id * 2] = this.tcpFlags[id * 2 + 1] = 0
    this.ttl[c] = 255
    this.ttl[c + 1] = 0
    this.ttl[c + 2] = 255
    this.ttl[c + 3] = 0
  }

  onSwap(id: number): void {
    swapEntries(this.counts, id * 4, id * 4 + 1)
    swapEntries(this.counts, id * 4 + 2, id * 4 + 3)
    swapEntries(this.tcpFlags, id * 2, id * 2 + 1)
    swapEntries(this.icmp, id * 2, id * 2 + 1)
    swapEntries(this.tos, id * 2, id * 2 + 1)
    swapEntries(this.ttl, id * 4, id * 4 + 2)
    swapEntries(this.ttl, id * 4 + 1, id * 4 + 3)
    const s = this.seen[id]!
    this.seen[id] = ((s & 1) << 1) | ((s >> 1) & 1)
  }

  write(id: number, flow: FlowView, w: RecordWriter): void {
    if (w instanceof BufferWriter) {
      const v = flow.ipVersion(id)
      const len = v === 4 ? V4_LENGTH : V6_LENGTH // an upper bound without ICMP
      if (w.pos + len <= w.limit) {
        this.writeDirect(id, flow, w, v)
        return
      }
    }
    this.writeChecked(id, flow, w)
  }

  /**
   * The same record as writeChecked, written straight into the buffer after one bounds check for the
   * whole (fixed-length) record.
   */
  private writeDirect(id: number, flow: FlowView, w: BufferWriter, v: number): void {
    const view = w.view
    let p = w.pos
    p = putU64(view, p, Math.floor(flow.startUs(id) / 1000))
    p = putU64(view, p, Math.floor(flow.endUs(id) / 1000))
    const a = this.addr
    flow.address(id, Dir.Forward, a)
    if (v === 4) {
      view.setUint32(p, a[0]!)
      p += 4
    } else {
      view.setUint32(p, a[0]!)
      view.setUint32(p + 4, a[1]!)
      view.setUint32(p + 8, a[2]!)
      view.setUint32(p + 12, a[3]!)
      p += 16
    }
    flow.address(id, Dir.Reverse, a)
    if (v === 4) {
      view.setUint32(p, a[0]!)
      p += 4
    } else {
      view.setUint32(p, a[0]!)
      view.setUint32(p + 4, a[1]!)
      view.setUint32(p + 8, a[2]!)
      view.setUint32(p + 12, a[3]!)
      p += 16
    }
    view.setUint16(p, flow.port(id, Dir.Forward))
    view.setUint16(p + 2, flow.port(id, Dir.Reverse))
    view.setUint8(p + 4, flow.protocol(id))
    view.setUint8(p + 5, v)
    p += 6
    const c = id * 4
    const counts = this.counts
    p = putU64(view, p, counts[c]!)
    p = putU64(view, p, counts[c + 2]!)
    p = putU64(view, p, counts[c + 1]!)
    p = putU64(view, p, counts[c + 3]!)
    view.setUint8(p, this.tcpFlags[id * 2]! & 0xff)
    view.setUint8(p + 1, this.tcpFlags[id * 2 + 1]! & 0xff)
    view.setUint8(p + 2, this.tos[id * 2]!)
    view.setUint8(p + 3, this.tos[id * 2 + 1]!)
    const seen = this.seen[id]!
    const ttl = this.ttl
    view.setUint8(p + 4, seen & 1 ? ttl[c]! : 0)
    view.setUint8(p + 5, seen & 1 ? ttl[c + 1]! : 0)
    view.setUint8(p + 6, seen & 2 ? ttl[c + 2]! : 0)
    view.setUint8(p + 7, seen & 2 ? ttl[c + 3]! : 0)
    p += 8
    const proto = flow.protocol(id)
    if (proto === 1 || proto === 58) {
      view.setUint16(p, this.icmp[id * 2]!)
      view.setUint16(p + 2, this.icmp[id * 2 + 1]!)
      p += 4
    }
    view.setUint8(p, flow.endReason(id))
    view.setUint8(p + 1, BIFLOW_INITIATOR)
    w.pos = p + 2
  }

  private writeChecked(id: number, flow: FlowView, w: RecordWriter): void {
    w.dateTimeMs(Math.floor(flow.startUs(id) / 1000))
    w.dateTimeMs(Math.floor(flow.endUs(id) / 1000))
    const v = flow.address(id, Dir.Forward, this.addr)
    if (v === 4) w.ipv4(this.addr[0]!)
    else w.ipv6(this.addr)
    flow.address(id, Dir.Reverse, this.addr)
    if (v === 4) w.ipv4(this.addr[0]!)
    else w.ipv6(this.addr)
    w.u16(flow.port(id, Dir.Forward))
    w.u16(flow.port(id, Dir.Reverse))
    w.u8(flow.protocol(id))
    w.u8(v)
    const c = id * 4
    w.u64(this.counts[c]!)
    w.u64(this.counts[c + 2]!)
    w.u64(this.counts[c + 1]!)
    w.u64(this.counts[c + 3]!)
    w.u8(this.tcpFlags[id * 2]! & 0xff)
    w.u8(this.tcpFlags[id * 2 + 1]! & 0xff)
    w.u8(this.tos[id * 2]!)
    w.u8(this.tos[id * 2 + 1]!)
    const seen = this.seen[id]!
    w.u8(seen & 1 ? this.ttl[c]! : 0)
    w.u8(seen & 1 ? this.ttl[c + 1]! : 0)
    w.u8(seen & 2 ? this.ttl[c + 2]! : 0)
    w.u8(seen & 2 ? this.ttl[c + 3]! : 0)
    const proto = flow.protocol(id)
    if (proto === 1 || proto === 58) {
      w.u16(this.icmp[id * 2]!)
      w.u16(this.icmp[id * 2 + 1]!)
    }
    w.u8(flow.endReason(id))
    w.u8(BIFLOW_INITIATOR)
  }
}
