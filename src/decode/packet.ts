/**
 * The decoded view of one packet, filled in place by the decoder for every packet (one reusable object,
 * no allocation per packet). Offsets point into the batch buffer the packet came from.
 */

/** Tunnel encapsulations the decoder removes; the flow is keyed on the innermost IP packet. */
export const enum Tunnel {
  None = 0,
  Vxlan = 1, // UDP 4789 / 8472, RFC 7348: tunnelId = VNI
  Geneve = 2, // UDP 6081, RFC 8926: tunnelId = VNI
  Gre = 3, // IP proto 47, RFC 2784/2890: tunnelId = key (0 when absent)
  IpInIp = 4, // IP proto 4 (IPv4 in IPv4/IPv6)
  Ip6In4 = 5, // IP proto 41 (IPv6 in IPv4/IPv6)
  GtpU = 6, // UDP 2152, 3GPP TS 29.281: tunnelId = TEID
  Teredo = 7, // UDP 3544, RFC 4380
}

/** Result of decoding one packet. */
export const enum DecodeResult {
  /** An IP packet with a usable flow key (ports may be 0 for protocols without ports). */
  Ip = 0,
  /** A well-formed packet that is not IP (ARP, LLDP, STP, ...); `etherType` says what it is. */
  NonIp = 1,
  /** Malformed or truncated before a flow key could be formed; an anomaly was counted. */
  Malformed = 2,
  /** The capture's link type is not supported; the caller counts it and warns once. */
  UnsupportedLinkType = 3,
}

const EMPTY = new Uint8Array(0)

/**
 * First value of the fields that take full 32-bit values (MAC low words, TCP sequence numbers, tunnel
 * ids): a number beyond V8's small integers makes them double fields from the start. Starting as small
 * integers, each one changed representation at its first large value, and every function optimized for
 * the object's previous shape was thrown away and compiled again. The constructor's reset() sets them to 0.
 */
const WIDE = 2 ** 31

export class PacketInfo {
  // Link layer
  /** True when the packet had an Ethernet header (MACs are valid). */
  hasEthernet = false
  /** MAC addresses as 16-bit high part and 32-bit low part. */
  srcMacHi = 0
  srcMacLo = WIDE
  dstMacHi = 0
  dstMacLo = WIDE
  /** EtherType of the L3 payload after VLAN/MPLS/PPPoE (0x0800, 0x86dd, 0x0806, ...). */
  etherType = 0
  /** Outer VLAN id (802.1Q or 802.1ad S-tag), 0 when untagged. */
  vlanId = 0
  /** Inner VLAN id (C-tag of QinQ), 0 when absent. */
  innerVlanId = 0
  /** Priority code point of the outer tag. */
  vlanPcp = 0
  /** Top MPLS label, 0 when absent (label 0 itself is IPv4 explicit null; mplsLabels counts the stack). */
  mplsTopLabel = 0
  mplsLabels = 0
  /** Offset of the L3 header inside the batch buffer (valid for NonIp too, e.g. the ARP body). */
  l3Offset = 0
  /**
   * The batch buffer the offsets point into (set by decode()), so features can read bounded bytes of the
   * packet, e.g. TCP options in [l4Offset + 20, payloadOffset) or the first payload bytes.
   */
  buf: Uint8Array = EMPTY

  // Tunnel (outermost tunnel that was removed)
  tunnel: Tunnel = Tunnel.None
  tunnelId = WIDE
  /** Number of tunnel encapsulations removed (0 when the packet was not tunnelled). */
  tunnelCount = 0

  // IP (innermost)
  ipVersion = 0
  /** Addresses: IPv4 in word 0 (words 1-3 zero); IPv6 in words 0-3, big-endian word order. */
  readonly src = new Uint32Array(4)
  readonly dst = new Uint32Array(4)
  /** IP-level length per RFC 7012 octetDeltaCount: IPv4 total length, IPv6 payload length + 40. */
  ipLength = 0
  ttl = 0
  /** IPv4 TOS byte / IPv6 traffic class. */
  tos = 0
  ipId = 0
  flowLabel = 0
  /** Transport protocol after the IPv6 extension chain. */
  protocol = 0
  /** Fragment state: isFragment; fragOffset in bytes; moreFragments. */
  isFragment = false
  fragOffset = 0
  moreFragments = false
  /**
   * Offset of a fragment's data (what fragOffset counts from: after the IPv4 header, after the IPv6 Fragment
   * header) in the batch buffer. Set by the decoder only when isFragment is true, and valid only then.
   */
  fragDataOffset = 0

  // Transport
  srcPort = 0
  dstPort = 0
  /** TCP flags as RFC 7125 low 9 bits (NS..FIN). */
  tcpFlags = 0
  tcpSeq = WIDE
  tcpAck = WIDE
  tcpWindow = 0
  /** UDP length field (header + data), 0 when not UDP. */
  udpLength = 0
  /** ICMP/ICMPv6 type and code (valid when protocol is 1 or 58 and not a later fragment). */
  icmpType = 0
  icmpCode = 0
  /** Offset of the L4 header and of the L4 payload in the batch buffer. */
  l4Offset = 0
  payloadOffset = 0
  /** Payload bytes present in the capture, and the payload length the IP header announces. */
  payloadCaptured = 0
  payloadLength = 0

  constructor() {
    this.reset()
  }

  /** Reset the fields a decoder may leave untouched; called once per packet before decoding. */
  reset(): void {
    this.hasEthernet = false
    this.srcMacHi = this.srcMacLo = this.dstMacHi = this.dstMacLo = 0
    this.etherType = 0
    this.vlanId = this.innerVlanId = this.vlanPcp = 0
    this.mplsTopLabel = this.mplsLabels = 0
    this.l3Offset = 0
    this.tunnel = Tunnel.None
    this.tunnelId = this.tunnelCount = 0
    this.ipVersion = 0
    // Explicit stores: TypedArray.fill has call overhead that shows on the packet path.
    const src = this.src
    const dst = this.dst
    src[0] = src[1] = src[2] = src[3] = 0
    dst[0] = dst[1] = dst[2] = dst[3] = 0
    this.ipLength = this.ttl = this.tos = this.ipId = this.flowLabel = this.protocol = 0
    this.isFragment = this.moreFragments = false
    this.fragOffset = 0
    this.srcPort = this.dstPort = 0
    this.tcpFlags = this.tcpSeq = this.tcpAck = this.tcpWindow = this.udpLength = 0
    this.icmpType = this.icmpCode = 0
    this.l4Offset = this.payloadOffset = this.payloadCaptured = this.payloadLength = 0
  }

  /** Copy every field from `o` (used by the decoder to restore the outer packet when an inner one is malformed). */
  copyFrom(o: PacketInfo): void {
    this.hasEthernet = o.hasEthernet
    this.srcMacHi = o.srcMacHi
    this.srcMacLo = o.srcMacLo
    this.dstMacHi = o.dstMacHi
    this.dstMacLo = o.dstMacLo
    this.etherType = o.etherType
    this.vlanId = o.vlanId
    this.innerVlanId = o.innerVlanId
    this.vlanPcp = o.vlanPcp
    this.mplsTopLabel = o.mplsTopLabel
    this.mplsLabels = o.mplsLabels
    this.l3Offset = o.l3Offset
    this.buf = o.buf
    this.tunnel = o.tunnel
    this.tunnelId = o.tunnelId
    this.tunnelCount = o.tunnelCount
    this.ipVersion = o.ipVersion
    this.src.set(o.src)
    this.dst.set(o.dst)
    this.ipLength = o.ipLength
    this.ttl = o.ttl
    this.tos = o.tos
    this.ipId = o.ipId
    this.flowLabel = o.flowLabel
    this.protocol = o.protocol
    this.isFragment = o.isFragment
    this.fragOffset = o.fragOffset
    this.moreFragments = o.moreFragments
    this.fragDataOffset = o.fragDataOffset
    this.srcPort = o.srcPort
    this.dstPort = o.dstPort
    this.tcpFlags = o.tcpFlags
    this.tcpSeq = o.tcpSeq
    this.tcpAck = o.tcpAck
    this.tcpWindow = o.tcpWindow
    this.udpLength = o.udpLength
    this.icmpType = o.icmpType
    this.icmpCode = o.icmpCode
    this.l4Offset = o.l4Offset
    this.payloadOffset = o.payloadOffset
    this.payloadCaptured = o.payloadCaptured
    this.payloadLength = o.payloadLength
  }
}
