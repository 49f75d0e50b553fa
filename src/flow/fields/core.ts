/**
 * Field group `core` (always on): the L3/L4 key, counters and times of every biflow record.
 *
 * Elements per RFC 7012 and the IANA registry; reverse counterparts per RFC 5103 (PEN 29305). Byte counts
 * are IP-level (octetDeltaCount counts IP total length), tcpControlBits uses the 1-octet reduced size that
 * every peer decodes (RFC 7125 §3; pmacct misreads 2 octets). The ICMP type/code pair is only in the
 * templates of ICMP and ICMPv6 flows (RecordKind.Icmp), as softflowd does. The four octet and packet
 * counters are 4 octets long (reduced-size encoding, RFC 7011 §6.2) in the records of flows whose counters
 * all fit in 32 bits (RecordKind.Counters32), and 8 octets in the others.
 */
import type { PacketInfo } from '../../decode/packet.js'
import { BufferWriter, putU64s, type RecordWriter } from '../../ipfix/record-writer.js'
import { swapDirectionBits, swapEntries } from '../../util/typed-arrays.js'
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

const COUNTERS = new Set([
  'octetDeltaCount',
  'packetDeltaCount',
  'reverseOctetDeltaCount',
  'reversePacketDeltaCount',
])
/** The counters in 4 octets (RecordKind.Counters32). */
const with32BitCounters = (fields: FieldList): FieldList =>
  fields.map((f) => (COUNTERS.has(f[0]) ? ([f[0], 4] as const) : f))

/** Field lists by RecordKind bits Icmp and Counters32 (index: Icmp ? 1 : 0, + 2 with Counters32). */
const V4_BY_KIND: readonly FieldList[] = [
  withoutIcmp(V4_FIELDS),
  V4_FIELDS,
  with32BitCounters(withoutIcmp(V4_FIELDS)),
  with32BitCounters(V4_FIELDS),
]
const V6_BY_KIND: readonly FieldList[] = [
  withoutIcmp(V6_FIELDS),
  V6_FIELDS,
  with32BitCounters(withoutIcmp(V6_FIELDS)),
  with32BitCounters(V6_FIELDS),
]

/** Octets of a core record (all fields fixed-length) with 8-octet counters, ICMP type/code included. */
const V4_LENGTH = 76
const V6_LENGTH = 100
/** Counters below this fit the 4-octet encoding. */
const TWO32 = 0x1_0000_0000

/** Writes an IPv4 (word 0) or IPv6 (words 0-3) address at p; returns the position after it. */
function putAddress(view: DataView, p: number, a: Uint32Array, ipVersion: number): number {
  view.setUint32(p, a[0]!)
  if (ipVersion === 4) return p + 4
  view.setUint32(p + 4, a[1]!)
  view.setUint32(p + 8, a[2]!)
  view.setUint32(p + 12, a[3]!)
  return p + 16
}

const BIFLOW_INITIATOR = 1 // biflowDirection: the source is the initiator (RFC 5103 §6.3)

/**
 * Per-flow state, interleaved: one 64-octet slot per flow (one cache line), so a packet or a record
 * touches one line instead of one per array. Indices below are in units of each view.
 */
const SLOT = 64
/** Float64 (8 per slot): octets fwd, octets rev, packets fwd, packets rev. */
const F_COUNTS = 0
/** Uint16 (32 per slot): tcpControlBits fwd, rev; ICMP type·256+code of the first ICMP packet fwd, rev. */
const H_TCP_FLAGS = 16
const H_ICMP = 18
/** Uint8 (64 per slot): TOS of the first packet fwd, rev; min TTL fwd, max fwd, min rev, max rev; seen. */
const B_TOS = 40
const B_TTL = 42
/** Bit 0: a forward packet was seen, bit 1: a reverse packet. */
const B_SEEN = 46

export class CoreFields implements FlowFeature {
  readonly name = 'core'
  private f64 = new Float64Array(0)
  private u16 = new Uint16Array(0)
  private u8 = new Uint8Array(0)
  private readonly addr = new Uint32Array(4)
  /** The 8-octet values of a record on their way into the buffer (see putU64s). */
  private readonly u64 = new Float64Array(4)

  /** Totals over all packets accounted (for the summary and accounting checks). */
  packets = 0
  octets = 0

  fields(ipVersion: 4 | 6, kind: number): FieldList {
    const i = ((kind & RecordKind.Icmp) !== 0 ? 1 : 0) + ((kind & RecordKind.Counters32) !== 0 ? 2 : 0)
    return (ipVersion === 4 ? V4_BY_KIND : V6_BY_KIND)[i]!
  }

  /** RecordKind.Counters32 when the four counters of flow `id` all fit in 32 bits. */
  recordKind(id: number): number {
    const f64 = this.f64
    const c = id * (SLOT / 8) + F_COUNTS
    return f64[c]! < TWO32 && f64[c + 1]! < TWO32 && f64[c + 2]! < TWO32 && f64[c + 3]! < TWO32
      ? RecordKind.Counters32
      : 0
  }

  resize(capacity: number, used: number): void {
    const buf = new ArrayBuffer(capacity * SLOT)
    const u8 = new Uint8Array(buf)
    u8.set(this.u8.subarray(0, Math.min(used, capacity) * SLOT))
    this.u8 = u8
    this.u16 = new Uint16Array(buf)
    this.f64 = new Float64Array(buf)
  }

  onCreate(id: number): void {
    this.onReset(id)
    const h = id * (SLOT / 2)
    this.u16[h + H_ICMP] = 0
    this.u16[h + H_ICMP + 1] = 0
    const b = id * SLOT
    this.u8[b + B_TOS] = 0
    this.u8[b + B_TOS + 1] = 0
    this.u8[b + B_SEEN] = 0
  }

  onPacket(id: number, p: PacketInfo, dir: Dir): void {
    const len = p.ipLength
    this.packets++
    this.octets += len
    const f64 = this.f64
    const c = id * (SLOT / 8) + F_COUNTS + dir
    f64[c]! += len
    f64[c + 2]! += 1
    const u16 = this.u16
    const h = id * (SLOT / 2) + dir
    u16[h + H_TCP_FLAGS]! |= p.tcpFlags
    const u8 = this.u8
    const b = id * SLOT
    const ttl = p.ttl
    const t = b + B_TTL + dir * 2
    if (ttl < u8[t]!) u8[t] = ttl
    if (ttl > u8[t + 1]!) u8[t + 1] = ttl
    const bit = 1 << dir
    const seen = u8[b + B_SEEN]!
    if ((seen & bit) === 0) {
      u8[b + B_SEEN] = seen | bit
      u8[b + B_TOS + dir] = p.tos
      if ((p.protocol === 1 || p.protocol === 58) && !(p.isFragment && p.fragOffset > 0)) {
        u16[h + H_ICMP] = (p.icmpType << 8) | p.icmpCode
      }
    }
  }

  onReset(id: number): void {
    const c = id * (SLOT / 8) + F_COUNTS
    const f64 = this.f64
    f64[c] = f64[c + 1] = f64[c + 2] = f64[c + 3] = 0
    const h = id * (SLOT / 2)
    this.u16[h + H_TCP_FLAGS] = this.u16[h + H_TCP_FLAGS + 1] = 0
    const t = id * SLOT + B_TTL
    this.u8[t] = 255
    this.u8[t + 1] = 0
    this.u8[t + 2] = 255
    this.u8[t + 3] = 0
  }

  onSwap(id: number): void {
    const c = id * (SLOT / 8) + F_COUNTS
    swapEntries(this.f64, c, c + 1)
    swapEntries(this.f64, c + 2, c + 3)
    const h = id * (SLOT / 2)
    swapEntries(this.u16, h + H_TCP_FLAGS, h + H_TCP_FLAGS + 1)
    swapEntries(this.u16, h + H_ICMP, h + H_ICMP + 1)
    const b = id * SLOT
    swapEntries(this.u8, b + B_TOS, b + B_TOS + 1)
    swapEntries(this.u8, b + B_TTL, b + B_TTL + 2)
    swapEntries(this.u8, b + B_TTL + 1, b + B_TTL + 3)
    swapDirectionBits(this.u8, b + B_SEEN)
  }

  write(id: number, flow: FlowView, w: RecordWriter, kind: number): void {
    const small = (kind & RecordKind.Counters32) !== 0
    if (w instanceof BufferWriter) {
      const v = flow.ipVersion(id)
      const len = v === 4 ? V4_LENGTH : V6_LENGTH // an upper bound without ICMP or with 4-octet counters
      if (w.pos + len <= w.limit) {
        this.writeDirect(id, flow, w, v, small)
        return
      }
    }
    this.writeChecked(id, flow, w, small)
  }

  /**
   * The same record as writeChecked, written straight into the buffer after one bounds check for the
   * whole (fixed-length) record.
   */
  private writeDirect(id: number, flow: FlowView, w: BufferWriter, v: number, small: boolean): void {
    // Octets through the byte array (DataView.setUint8 was left as a builtin call), wider fields through
    // the DataView (inlined).
    const b = w.buf
    const view = w.view
    let p = w.pos
    const u64 = this.u64
    u64[0] = Math.floor(flow.startUs(id) / 1000)
    u64[1] = Math.floor(flow.endUs(id) / 1000)
    p = putU64s(view, p, u64, 0, 2)
    const a = this.addr
    flow.address(id, Dir.Forward, a)
    p = putAddress(view, p, a, v)
    flow.address(id, Dir.Reverse, a)
    p = putAddress(view, p, a, v)
    view.setUint16(p, flow.port(id, Dir.Forward))
    view.setUint16(p + 2, flow.port(id, Dir.Reverse))
    const proto = flow.protocol(id)
    b[p + 4] = proto
    b[p + 5] = v
    p += 6
    const f64 = this.f64
    const c = id * (SLOT / 8) + F_COUNTS
    // octetDeltaCount, packetDeltaCount, then their reverse counterparts.
    if (small) {
      view.setUint32(p, f64[c]!)
      view.setUint32(p + 4, f64[c + 2]!)
      view.setUint32(p + 8, f64[c + 1]!)
      view.setUint32(p + 12, f64[c + 3]!)
      p += 16
    } else {
      u64[0] = f64[c]!
      u64[1] = f64[c + 2]!
      u64[2] = f64[c + 1]!
      u64[3] = f64[c + 3]!
      p = putU64s(view, p, u64, 0, 4)
    }
    const u16 = this.u16
    const h = id * (SLOT / 2)
    b[p] = u16[h + H_TCP_FLAGS]! & 0xff
    b[p + 1] = u16[h + H_TCP_FLAGS + 1]! & 0xff
    const u8 = this.u8
    const s = id * SLOT
    b[p + 2] = u8[s + B_TOS]!
    b[p + 3] = u8[s + B_TOS + 1]!
    const seen = u8[s + B_SEEN]!
    const t = s + B_TTL
    b[p + 4] = (seen & 1) !== 0 ? u8[t]! : 0
    b[p + 5] = (seen & 1) !== 0 ? u8[t + 1]! : 0
    b[p + 6] = (seen & 2) !== 0 ? u8[t + 2]! : 0
    b[p + 7] = (seen & 2) !== 0 ? u8[t + 3]! : 0
    p += 8
    if (proto === 1 || proto === 58) {
      view.setUint16(p, u16[h + H_ICMP]!)
      view.setUint16(p + 2, u16[h + H_ICMP + 1]!)
      p += 4
    }
    b[p] = flow.endReason(id)
    b[p + 1] = BIFLOW_INITIATOR
    w.pos = p + 2
  }

  private writeChecked(id: number, flow: FlowView, w: RecordWriter, small: boolean): void {
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
    const c = id * (SLOT / 8) + F_COUNTS
    // octetDeltaCount, packetDeltaCount, then their reverse counterparts.
    for (const k of [0, 2, 1, 3]) {
      if (small) w.u32(this.f64[c + k]!)
      else w.u64(this.f64[c + k]!)
    }
    const h = id * (SLOT / 2)
    w.u8(this.u16[h + H_TCP_FLAGS]! & 0xff)
    w.u8(this.u16[h + H_TCP_FLAGS + 1]! & 0xff)
    const b = id * SLOT
    w.u8(this.u8[b + B_TOS]!)
    w.u8(this.u8[b + B_TOS + 1]!)
    const seen = this.u8[b + B_SEEN]!
    const t = b + B_TTL
    w.u8(seen & 1 ? this.u8[t]! : 0)
    w.u8(seen & 1 ? this.u8[t + 1]! : 0)
    w.u8(seen & 2 ? this.u8[t + 2]! : 0)
    w.u8(seen & 2 ? this.u8[t + 3]! : 0)
    const proto = flow.protocol(id)
    if (proto === 1 || proto === 58) {
      w.u16(this.u16[h + H_ICMP]!)
      w.u16(this.u16[h + H_ICMP + 1]!)
    }
    w.u8(flow.endReason(id))
    w.u8(BIFLOW_INITIATOR)
  }
}
