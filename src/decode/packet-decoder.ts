/**
 * Hot-path packet decoder: link layer → VLAN/MPLS/PPPoE → IPv4/IPv6 → TCP/UDP/SCTP/ICMP, removing tunnels
 * (VXLAN, Geneve, GRE/ERSPAN/PPTP, IP-in-IP, 6in4, GTP-U, Teredo) so the flow is keyed on the innermost IP packet.
 *
 * Specs: pcap LINKTYPE registry (tcpdump.org/linktypes.html), IEEE 802.3/802.1Q/802.1ad, RFC 1042 (LLC/SNAP),
 * RFC 3032 (MPLS), RFC 4385 (PW control word), RFC 2516 (PPPoE), RFC 1661 (PPP), RFC 791 (IPv4), RFC 8200 (IPv6),
 * RFC 2675 (jumbograms), RFC 4302 (AH), RFC 6275 (mobility), RFC 7401 (HIP), RFC 5533 (shim6), RFC 9293 (TCP),
 * RFC 7125 (TCP flags), RFC 768 (UDP), RFC 9260 (SCTP), RFC 792/4443 (ICMP), RFC 7348 (VXLAN), RFC 8926 (Geneve),
 * RFC 2784/2890 (GRE), RFC 2637 (PPTP enhanced GRE), draft-foschiano-erspan (ERSPAN II/III), RFC 2003/4213
 * (IP-in-IP, 6in4), 3GPP TS 29.281 (GTP-U), RFC 4380 (Teredo).
 *
 * Rules: every header's length is checked once against the end of the captured range, then read at fixed
 * offsets; nothing outside [offset, offset + caplen) is read; nothing is allocated per packet (fragments aside,
 * see fragments.ts); problems bump a named anomaly instead of throwing. Truncation caused by the snap length
 * (caplen < origlen) is counted once as `snaplen_truncated` and not as a malformed-header anomaly.
 *
 * Result rule: once a valid IP header has been read the packet is `Ip` (a flow key exists); a broken transport
 * header or tunnel payload only counts an anomaly and leaves the fields it could not read at 0. A malformed inner
 * packet of a tunnel restores the outer packet as the flow.
 */
/* eslint-disable @typescript-eslint/no-unsafe-enum-comparison, @typescript-eslint/no-duplicate-enum-values --
   Wire constants are `const enum`s (inlined by tsc and esbuild) compared with plain numbers read from the
   wire, and the header-size enum naturally repeats values. */
import { A, type Anomalies } from './anomalies.js'
import { FragmentCache } from './fragments.js'
import { teredoInnerByContent } from './teredo.js'
import { nflogPayload, NflogStatus, type NflogSpan } from './nflog.js'
import { DecodeResult, PacketInfo, Tunnel } from './packet.js'

/** LINKTYPE_* values (pcap/pcapng link-layer header types). */
const enum LinkType {
  Null = 0, // BSD loopback: 4-byte address family in the capturing host's byte order
  Ethernet = 1, // IEEE 802.3 Ethernet
  RawOpenBsd = 12, // DLT_RAW on OpenBSD (LINKTYPE_RAW in files written there)
  RawBsdOs = 14, // DLT_RAW on BSD/OS
  Raw = 101, // Raw IPv4 or IPv6, version from the first nibble
  Loop = 108, // OpenBSD loopback: 4-byte address family in network byte order
  LinuxSll = 113, // Linux "cooked" capture v1
  Ipv4 = 228, // Raw IPv4
  Ipv6 = 229, // Raw IPv6
  LinuxSll2 = 276, // Linux "cooked" capture v2
  Ppp = 9, // PPP (RFC 1661), optional address/control bytes, protocol field
  PppHdlc = 50, // PPP in HDLC-like framing (RFC 1662), or Cisco HDLC when the first byte is 0x0f/0x8f
  CHdlc = 104, // Cisco HDLC: address(1) control(1) EtherType(2)
  ArcnetLinux = 129, // Linux ARCNET: source(1) destination(1) offset(2), then the ARCNET protocol id
  Nflog = 239, // Linux netfilter NFLOG: TLVs, the packet in NFULA_PAYLOAD (./nflog.ts)
}

/** ARCNET protocol ids (RFC 1051 and RFC 1201 framing). */
const enum Arcnet {
  Ip1051 = 240, // RFC 1051 IP: payload right after the protocol id
  Arp1051 = 241, // RFC 1051 ARP
  Ip1201 = 212, // RFC 1201 IP: split flag(1) sequence(2) before the payload
  Arp1201 = 213, // RFC 1201 ARP
  Ipv6 = 196, // RFC 2497 IPv6, RFC 1201 framing
  ExceptionFlag = 0xff, // RFC 1201 exception packet: 4 filler octets and a repeated header follow
}

/** Address families of the NULL/LOOP header. */
const enum Af {
  Inet = 2, // AF_INET everywhere
  Inet6Linux = 10, // AF_INET6 on Linux
  Inet6Bsd = 24, // AF_INET6 on NetBSD, OpenBSD, BSD/OS
  Inet6FreeBsd = 28, // AF_INET6 on FreeBSD, DragonFly
  Inet6Darwin = 30, // AF_INET6 on macOS/iOS
}

/** EtherType values (IEEE registry) and GRE/PPP protocol types. */
const enum EtherType {
  MinEtherType = 0x0600, // Below this the field is an 802.3 length
  Ipv4 = 0x0800, // Internet Protocol version 4
  Arp = 0x0806, // Address Resolution Protocol
  Vlan = 0x8100, // IEEE 802.1Q customer tag
  Ipv6 = 0x86dd, // Internet Protocol version 6
  Ppp = 0x880b, // PPP (PPTP enhanced GRE payload)
  Erspan2 = 0x88be, // ERSPAN type II (and type I without a GRE sequence number)
  MplsUnicast = 0x8847, // MPLS unicast
  MplsMulticast = 0x8848, // MPLS multicast
  PppoeSession = 0x8864, // PPPoE session stage
  QinQ = 0x88a8, // IEEE 802.1ad service tag
  QinQOld = 0x9100, // Pre-standard QinQ service tag
  TransparentEthernet = 0x6558, // Transparent Ethernet Bridging (NVGRE, Geneve)
  Erspan3 = 0x22eb, // ERSPAN type III
  Nsh = 0x894f, // Network Service Header (RFC 8300)
  CiscoMetaData = 0x8909, // Cisco MetaData (SGT tag): ver(1) len(1) opt(2) SGT(2) EtherType(2)
}

/** PPP protocol numbers (RFC 1661, IANA PPP DLL protocol numbers). */
const enum PppProto {
  Ipv4 = 0x0021, // Internet Protocol version 4
  Ipv6 = 0x0057, // Internet Protocol version 6
  MplsUnicast = 0x0281, // MPLS unicast (RFC 3032)
  MplsMulticast = 0x0283, // MPLS multicast
}

/** NSH next-protocol values (RFC 8300 section 11.2.5). */
const enum NshNext {
  Ipv4 = 1, // IPv4
  Ipv6 = 2, // IPv6
  Ethernet = 3, // Ethernet
  Mpls = 5, // MPLS
}

/** Inner-packet kinds for tunnel(); EtherTypes (>= 0x600) are passed through as they are. */
const enum Inner {
  GuessIp = 0, // IPv4 or IPv6 by the version nibble
  Ethernet = 1, // An Ethernet frame
  Ppp = 2, // A PPP frame (RFC 1661/1662)
  Ipv4 = 4, // IPv4
  Ipv6 = 6, // IPv6
}

/** IP protocol numbers (IANA). */
const enum IpProto {
  HopByHop = 0, // IPv6 Hop-by-Hop Options
  Icmp = 1, // ICMP for IPv4
  IpInIp = 4, // IPv4 encapsulation
  Tcp = 6, // TCP
  Udp = 17, // UDP
  Dccp = 33, // DCCP (ports like TCP/UDP)
  Ipv6 = 41, // IPv6 encapsulation
  Routing = 43, // IPv6 Routing header
  Fragment = 44, // IPv6 Fragment header
  Gre = 47, // Generic Routing Encapsulation
  Esp = 50, // Encapsulating Security Payload: the chain stops, no ports
  Ah = 51, // Authentication Header: length in 32-bit words minus 2
  Icmpv6 = 58, // ICMP for IPv6
  NoNext = 59, // IPv6 No Next Header
  DestOpts = 60, // IPv6 Destination Options
  Sctp = 132, // SCTP
  Mobility = 135, // Mobility header (RFC 6275)
  UdpLite = 136, // UDP-Lite (ports like UDP)
  Hip = 139, // Host Identity Protocol
  Shim6 = 140, // Shim6 protocol
}

/** UDP ports that announce a tunnel. */
const enum UdpPort {
  Vxlan = 4789, // IANA VXLAN (RFC 7348)
  VxlanLinux = 8472, // Linux kernel default VXLAN port
  Geneve = 6081, // RFC 8926
  GtpU = 2152, // 3GPP TS 29.281
  Teredo = 3544, // RFC 4380
}

/** Header sizes in bytes. */
const enum Len {
  Ethernet = 14, // dst(6) src(6) type(2)
  VlanTag = 4, // TCI(2) type(2)
  Llc = 3, // DSAP SSAP control
  Snap = 5, // OUI(3) type(2)
  Mpls = 4, // label(20) TC(3) S(1) TTL(8)
  Pppoe = 6, // ver/type code session(2) length(2)
  Sll = 16, // Linux cooked v1
  Sll2 = 20, // Linux cooked v2
  NullHdr = 4, // address family
  Ipv4 = 20, // fixed IPv4 header
  Ipv6 = 40, // fixed IPv6 header
  Ipv6Ext = 8, // minimal extension header / fragment header
  Tcp = 20, // TCP without options
  Udp = 8, // UDP header
  Sctp = 12, // SCTP common header
  Icmp = 4, // type code checksum
  Gre = 4, // flags/version protocol
  Vxlan = 8, // flags reserved VNI reserved
  Geneve = 8, // ver/optlen flags protocol VNI reserved
  GtpU = 8, // flags type length TEID
  Erspan2 = 8, // ver/vlan cos/en/t/session reserved/index
  Erspan3 = 12, // ver/vlan cos/bso/t/session timestamp sgt/p/ft/hwid/d/gra/o
  Erspan3Platform = 8, // optional platform-specific subheader (O bit)
}

/** Bounds that keep hostile packets from looping. */
const MAX_VLAN_TAGS = 8
const MAX_MPLS_LABELS = 16
const MAX_IPV6_EXT_HEADERS = 16
const MAX_TUNNEL_DEPTH = 4
const MAX_GTP_EXT_HEADERS = 8
/** Ethernet/NSH headers per packet (pseudowires, NSH and tunnels nest them; bounds the recursion). */
const MAX_L2_HEADERS = 8
/** Where the NFLOG payload is (scratch for decode(), used at once). */
const nflogSpan: NflogSpan = { family: 0, start: 0, end: 0 }

export interface PacketDecoderOptions {
  /** Maximum number of first fragments remembered (default 65536). */
  fragmentCacheSize?: number
  /** How long a first fragment is remembered, in packet-time microseconds (default 30 s). */
  fragmentTimeoutUs?: number
}

export class PacketDecoder {
  readonly fragments: FragmentCache

  // Per-packet state (set by decode(); plain fields so the layer methods stay monomorphic).
  private v: DataView = new DataView(new ArrayBuffer(0))
  private out: PacketInfo = new PacketInfo()
  private tsUs = 0
  /** caplen < origlen: missing bytes at the end are the snap length's doing, not malformation. */
  private snap = false
  /** origlen - caplen, bytes on the wire beyond the captured range. */
  private wireExtra = 0
  private depth = 0
  private l2Headers = 0
  private vlanSeen = false
  /** The buffer whose byteLength `bufLength` holds (see decodeAt). */
  private lengthOf: Uint8Array | undefined = undefined
  private bufLength = 0
  /** Saved outer packet per tunnel level, restored when the inner packet is malformed. */
  private readonly saves: PacketInfo[] = []

  constructor(
    readonly anomalies: Anomalies,
    opts: PacketDecoderOptions = {},
  ) {
    this.fragments = new FragmentCache(anomalies, opts.fragmentCacheSize, opts.fragmentTimeoutUs)
    for (let i = 0; i < MAX_TUNNEL_DEPTH; i++) this.saves.push(new PacketInfo())
  }

  /**
   * Decode the packet at buf[offset, offset + caplen) into `out` (which is reset first). `view` is a DataView
   * over exactly `buf`. Returns what kind of packet it was; anomalies are counted on the way.
   */
  decode(
    buf: Uint8Array,
    view: DataView,
    offset: number,
    caplen: number,
    origlen: number,
    linkType: number,
    tsUs: number,
    out: PacketInfo,
  ): DecodeResult {
    this.tsUs = tsUs
    return this.decodeAt(buf, view, offset, caplen, origlen, linkType, out)
  }

  /**
   * Set the packet time for decodeAt. The packet loop sets it with a field store: a time passed as a call
   * argument is boxed as a heap number per packet (µs since the epoch is not a small integer).
   */
  setTime(tsUs: number): void {
    this.tsUs = tsUs
  }

  /** decode() at the time given to setTime(). */
  decodeAt(
    buf: Uint8Array,
    view: DataView,
    offset: number,
    caplen: number,
    origlen: number,
    linkType: number,
    out: PacketInfo,
  ): DecodeResult {
    out.reset()
    out.buf = buf
    this.v = view
    this.out = out
    this.depth = 0
    this.l2Headers = 0
    this.vlanSeen = false
    // Clamp to the buffer so a bad caller cannot make a DataView getter throw. The length is read once per
    // buffer: a batch's packets share one, and `byteLength` of a typed array compiled to a generic property
    // load (a call into the IC runtime) on every packet.
    if (buf !== this.lengthOf) {
      this.lengthOf = buf
      this.bufLength = buf.byteLength
    }
    let end = offset + caplen
    if (end > this.bufLength) end = this.bufLength
    if (offset < 0 || end < offset) {
      this.anomalies.inc(A.truncated_ethernet_header)
      return DecodeResult.Malformed
    }
    this.snap = caplen < origlen
    this.wireExtra = this.snap ? origlen - caplen : 0
    if (this.snap) this.anomalies.inc(A.snaplen_truncated)

    let r: DecodeResult
    switch (linkType) {
      case LinkType.Ethernet:
        r = this.ethernet(offset, end)
        break
      case LinkType.Raw:
      case LinkType.RawOpenBsd:
      case LinkType.RawBsdOs:
        r = this.rawIp(offset, end)
        break
      case LinkType.Ipv4:
        r = this.ipv4(offset, end)
        break
      case LinkType.Ipv6:
        r = this.ipv6(offset, end)
        break
      case LinkType.Ppp:
        r = this.ppp(offset, end)
        break
      case LinkType.PppHdlc:
      case LinkType.CHdlc:
        if (end - offset >= 1 && (view.getUint8(offset) & 0x7f) === 0x0f) {
          if (end - offset < 4) {
            this.truncated(A.truncated_ppp_header)
            return DecodeResult.Malformed
          }
          r = this.etherPayload(view.getUint16(offset + 2), offset + 4, end)
        } else {
          r = this.ppp(offset, end)
        }
        break
      case LinkType.LinuxSll:
        if (end - offset < Len.Sll) {
          this.truncated(A.truncated_sll_header)
          return DecodeResult.Malformed
        }
        // packet type(2) ARPHRD(2) address length(2) address(8) protocol(2)
        r = this.etherPayload(view.getUint16(offset + 14), offset + Len.Sll, end)
        break
      case LinkType.LinuxSll2:
        if (end - offset < Len.Sll2) {
          this.truncated(A.truncated_sll_header)
          return DecodeResult.Malformed
        }
        // protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) address length(1) address(8)
        r = this.etherPayload(view.getUint16(offset), offset + Len.Sll2, end)
        break
      case LinkType.Null:
      case LinkType.Loop: {
        if (end - offset < Len.NullHdr) {
          this.truncated(A.truncated_null_header)
          return DecodeResult.Malformed
        }
        let family = view.getUint32(offset, linkType === LinkType.Null)
        // NULL is in the writer's byte order: a big-endian writer's family reads as family << 24.
        if (linkType === LinkType.Null && family > 0xffff) family = view.getUint32(offset, false)
        r = this.nullFamily(family, offset + Len.NullHdr, end)
        break
      }
      case LinkType.ArcnetLinux:
        r = this.arcnetLinux(offset, end)
        break
      case LinkType.Nflog: {
        const s = nflogPayload(view, offset, end, nflogSpan)
        if (s === NflogStatus.Truncated) {
          this.truncated(A.truncated_nflog_header)
          return DecodeResult.Malformed
        }
        r = s === NflogStatus.NotIp ? DecodeResult.NonIp : this.rawIp(nflogSpan.start, nflogSpan.end)
        break
      }
      default:
        return DecodeResult.UnsupportedLinkType
    }
    if (r === DecodeResult.NonIp) this.anomalies.inc(A.non_ip_packet)
    return r
  }

  /** Count a truncation anomaly unless the snap length explains it. */
  private truncated(id: number): void {
    if (!this.snap) this.anomalies.inc(id)
  }

  private nullFamily(family: number, p: number, end: number): DecodeResult {
    switch (family) {
      case Af.Inet:
        return this.ipv4(p, end)
      case Af.Inet6Linux:
      case Af.Inet6Bsd:
      case Af.Inet6FreeBsd:
      case Af.Inet6Darwin:
        return this.ipv6(p, end)
      default:
        this.anomalies.inc(A.unknown_null_family)
        this.out.etherType = 0
        this.out.l3Offset = p
        return DecodeResult.NonIp
    }
  }

  /** Linux ARCNET (LINKTYPE_ARCNET_LINUX): 4-byte header, protocol id, then RFC 1051 or RFC 1201 framing. */
  private arcnetLinux(p: number, end: number): DecodeResult {
    if (end - p < 5) {
      this.truncated(A.truncated_arcnet_header)
      return DecodeResult.Malformed
    }
    const v = this.v
    const proto = v.getUint8(p + 4)
    let q = p + 5
    if (proto === Arcnet.Ip1201 || proto === Arcnet.Arp1201 || proto === Arcnet.Ipv6) {
      if (end - q < 3) {
        this.truncated(A.truncated_arcnet_header)
        return DecodeResult.Malformed
      }
      // An exception packet repeats protocol id, split flag and sequence after 4 filler octets.
      q += v.getUint8(q) === Arcnet.ExceptionFlag ? 3 + 4 : 3
      if (q > end) {
        this.truncated(A.truncated_arcnet_header)
        return DecodeResult.Malformed
      }
    }
    switch (proto) {
      case Arcnet.Ip1051:
      case Arcnet.Ip1201:
        return this.ipv4(q, end)
      case Arcnet.Ipv6:
        return this.ipv6(q, end)
      default:
        this.out.etherType = proto === Arcnet.Arp1051 || proto === Arcnet.Arp1201 ? EtherType.Arp : 0
        this.out.l3Offset = q
        return DecodeResult.NonIp
    }
  }

  private rawIp(p: number, end: number): DecodeResult {
    if (p >= end) {
      this.truncated(A.truncated_ipv4_header)
      return DecodeResult.Malformed
    }
    const version = this.v.getUint8(p) >> 4
    if (version === 4) return this.ipv4(p, end)
    if (version === 6) return this.ipv6(p, end)
    this.anomalies.inc(A.bad_ip_version)
    return DecodeResult.Malformed
  }

  // ---------------------------------------------------------------------------------------------------
  // Link layer

  /** Ethernet II / 802.3 frame at p. MACs are taken from the outermost Ethernet header only. */
  private ethernet(p: number, end: number): DecodeResult {
    if (end - p < Len.Ethernet) {
      this.truncated(A.truncated_ethernet_header)
      return DecodeResult.Malformed
    }
    const v = this.v
    const out = this.out
    if (++this.l2Headers > MAX_L2_HEADERS) {
      this.anomalies.inc(A.encapsulation_too_deep)
      return DecodeResult.Malformed
    }
    if (!out.hasEthernet) {
      // MACs come from the outermost Ethernet header (not a tunnel's or pseudowire's inner one).
      out.hasEthernet = true
      out.dstMacHi = v.getUint16(p)
      out.dstMacLo = v.getUint32(p + 2)
      out.srcMacHi = v.getUint16(p + 6)
      out.srcMacLo = v.getUint32(p + 8)
    }
    const type = v.getUint16(p + 12)
    if (type < EtherType.MinEtherType) return this.llc(p + Len.Ethernet, end)
    return this.etherPayload(type, p + Len.Ethernet, end)
  }

  /** IEEE 802.3 frame with an 802.2 LLC header: only SNAP with an EtherType can carry IP (RFC 1042). */
  private llc(p: number, end: number): DecodeResult {
    const out = this.out
    out.etherType = 0
    out.l3Offset = p
    if (end - p < Len.Llc) {
      this.truncated(A.truncated_llc_header)
      return DecodeResult.Malformed
    }
    // DSAP 0xAA, SSAP 0xAA, control 0x03 (UI) announce a SNAP header: OUI(3) EtherType(2).
    if (this.v.getUint16(p) !== 0xaaaa || this.v.getUint8(p + 2) !== 0x03) return DecodeResult.NonIp
    if (end - p < Len.Llc + Len.Snap) {
      this.truncated(A.truncated_llc_header)
      return DecodeResult.Malformed
    }
    return this.etherPayload(this.v.getUint16(p + 6), p + Len.Llc + Len.Snap, end)
  }

  /** Dispatch on an EtherType, removing a bounded stack of VLAN tags first. */
  private etherPayload(type: number, p: number, end: number): DecodeResult {
    const v = this.v
    const out = this.out
    let tags = 0
    for (;;) {
      switch (type) {
        case EtherType.Ipv4:
          if (tags > 0) this.vlanSeen = true
          return this.ipv4(p, end)
        case EtherType.Ipv6:
          if (tags > 0) this.vlanSeen = true
          return this.ipv6(p, end)
        case EtherType.Vlan:
        case EtherType.QinQ:
        case EtherType.QinQOld: {
          if (tags >= MAX_VLAN_TAGS) {
            this.anomalies.inc(A.vlan_stack_too_deep)
            return DecodeResult.Malformed
          }
          if (end - p < Len.VlanTag) {
            this.truncated(A.truncated_vlan_header)
            return DecodeResult.Malformed
          }
          const tci = v.getUint16(p)
          // The outermost tags seen win: a tunnel's inner Ethernet only fills vlanId when no outer tag existed.
          if (!this.vlanSeen) {
            if (tags === 0) {
              out.vlanId = tci & 0x0fff
              out.vlanPcp = tci >> 13
            } else if (tags === 1) {
              out.innerVlanId = tci & 0x0fff
            }
          }
          tags++
          type = v.getUint16(p + 2)
          p += Len.VlanTag
          continue
        }
        case EtherType.MplsUnicast:
        case EtherType.MplsMulticast:
          if (tags > 0) this.vlanSeen = true
          return this.mpls(type, p, end)
        case EtherType.PppoeSession:
          if (tags > 0) this.vlanSeen = true
          return this.pppoe(p, end)
        case EtherType.Nsh:
          if (tags > 0) this.vlanSeen = true
          return this.nsh(p, end)
        case EtherType.CiscoMetaData:
          // Counted with the VLAN tags: it is another fixed-size shim with an EtherType at its end.
          if (tags >= MAX_VLAN_TAGS) {
            this.anomalies.inc(A.vlan_stack_too_deep)
            return DecodeResult.Malformed
          }
          if (end - p < 8) {
            this.truncated(A.truncated_vlan_header)
            return DecodeResult.Malformed
          }
          tags++
          type = v.getUint16(p + 6)
          p += 8
          continue
        default:
          if (tags > 0) this.vlanSeen = true
          out.etherType = type
          out.l3Offset = p
          return DecodeResult.NonIp
      }
    }
  }

  /** MPLS label stack (RFC 3032); the payload is guessed from its first nibble (RFC 4385 for PW). */
  private mpls(type: number, p: number, end: number): DecodeResult {
    const v = this.v
    const out = this.out
    const outermost = out.mplsLabels === 0
    let n = 0
    for (;;) {
      if (n >= MAX_MPLS_LABELS) {
        this.anomalies.inc(A.mpls_stack_too_deep)
        return DecodeResult.Malformed
      }
      if (end - p < Len.Mpls) {
        this.truncated(A.truncated_mpls_header)
        return DecodeResult.Malformed
      }
      const entry = v.getUint32(p)
      // The outermost stack wins when a tunnel carries MPLS again.
      if (outermost) {
        if (n === 0) out.mplsTopLabel = entry >>> 12
        out.mplsLabels = n + 1
      }
      n++
      p += Len.Mpls
      if ((entry & 0x100) !== 0) break // bottom of stack
    }
    if (p >= end) {
      this.truncated(A.truncated_mpls_header)
      return DecodeResult.Malformed
    }
    switch (v.getUint8(p) >> 4) {
      case 4:
        return this.ipv4(p, end)
      case 6:
        return this.ipv6(p, end)
      case 0:
        // Pseudowire control word (RFC 4385: first nibble 0) followed by an Ethernet frame.
        if (end - p >= 4 + Len.Ethernet) return this.ethernet(p + 4, end)
        break
    }
    out.etherType = type
    out.l3Offset = p
    return DecodeResult.NonIp
  }

  /** PPPoE session stage (RFC 2516) carrying PPP. */
  private pppoe(p: number, end: number): DecodeResult {
    if (end - p < Len.Pppoe + 2) {
      this.truncated(A.truncated_pppoe_header)
      return DecodeResult.Malformed
    }
    return this.pppProto(this.v.getUint16(p + Len.Pppoe), p + Len.Pppoe + 2, end, EtherType.PppoeSession)
  }

  /** Network Service Header (RFC 8300): base header with the total length in 4-byte words, then next protocol. */
  private nsh(p: number, end: number): DecodeResult {
    const v = this.v
    if (++this.l2Headers > MAX_L2_HEADERS) {
      this.anomalies.inc(A.encapsulation_too_deep)
      return DecodeResult.Malformed
    }
    if (end - p < 8) {
      this.truncated(A.truncated_nsh_header)
      return DecodeResult.Malformed
    }
    // Ver(2) O(1) U(1) TTL(6) Length(6) | Rsvd(4) MD type(4) | Next protocol(8), then service path(4), metadata.
    const hl = (v.getUint16(p) & 0x3f) << 2
    if (hl < 8 || end - p < hl) {
      this.truncated(A.truncated_nsh_header)
      return DecodeResult.Malformed
    }
    const q = p + hl
    switch (v.getUint8(p + 3)) {
      case NshNext.Ipv4:
        return this.ipv4(q, end)
      case NshNext.Ipv6:
        return this.ipv6(q, end)
      case NshNext.Ethernet:
        return this.ethernet(q, end)
      case NshNext.Mpls:
        return this.mpls(EtherType.MplsUnicast, q, end)
      default:
        this.out.etherType = EtherType.Nsh
        this.out.l3Offset = p
        return DecodeResult.NonIp
    }
  }

  /** A PPP frame (RFC 1661/1662): optional 0xff 0x03, protocol in 1 byte when compressed (odd first byte). */
  private ppp(p: number, end: number): DecodeResult {
    const v = this.v
    if (end - p >= 2 && v.getUint16(p) === 0xff03) p += 2
    if (p >= end) {
      this.truncated(A.truncated_ppp_header)
      return DecodeResult.Malformed
    }
    let proto = v.getUint8(p)
    if ((proto & 1) === 0) {
      if (end - p < 2) {
        this.truncated(A.truncated_ppp_header)
        return DecodeResult.Malformed
      }
      proto = v.getUint16(p)
      p += 2
    } else {
      p += 1
    }
    if (proto === PppProto.MplsUnicast || proto === PppProto.MplsMulticast) {
      return this.mpls(
        proto === PppProto.MplsUnicast ? EtherType.MplsUnicast : EtherType.MplsMulticast,
        p,
        end,
      )
    }
    return this.pppProto(proto, p, end, EtherType.Ppp)
  }

  private pppProto(proto: number, p: number, end: number, etherType: number): DecodeResult {
    if (proto === PppProto.Ipv4) return this.ipv4(p, end)
    if (proto === PppProto.Ipv6) return this.ipv6(p, end)
    this.out.etherType = etherType
    this.out.l3Offset = p
    return DecodeResult.NonIp
  }

  // ---------------------------------------------------------------------------------------------------
  // IP

  /** IPv4 header (RFC 791). */
  private ipv4(p: number, end: number): DecodeResult {
    const v = this.v
    const out = this.out
    if (end - p < Len.Ipv4) {
      this.truncated(A.truncated_ipv4_header)
      return DecodeResult.Malformed
    }
    const b0 = v.getUint8(p)
    if (b0 >> 4 !== 4) {
      this.anomalies.inc(A.bad_ip_version)
      return DecodeResult.Malformed
    }
    const ihl = (b0 & 0x0f) << 2
    if (ihl < Len.Ipv4) {
      this.anomalies.inc(A.bad_ipv4_header_length)
      return DecodeResult.Malformed
    }
    if (end - p < ihl) {
      this.truncated(A.truncated_ipv4_header)
      return DecodeResult.Malformed
    }
    let total = v.getUint16(p + 2)
    const avail = end - p
    if (total === 0) {
      // Segmentation offload (TSO/GSO) captures carry 0; Wireshark also falls back to the frame length.
      this.anomalies.inc(A.ipv4_total_length_zero)
      total = avail + this.wireExtra
      if (total > 0xffff) total = 0xffff
    } else if (total < ihl) {
      this.anomalies.inc(A.bad_ipv4_total_length)
      return DecodeResult.Malformed
    } else if (total > avail && !this.snap) {
      this.anomalies.inc(A.ipv4_total_length_exceeds_frame)
    }
    out.etherType = EtherType.Ipv4
    out.l3Offset = p
    out.ipVersion = 4
    out.ipLength = total
    out.tos = v.getUint8(p + 1)
    out.ipId = v.getUint16(p + 4)
    const frag = v.getUint16(p + 6)
    out.ttl = v.getUint8(p + 8)
    const proto = v.getUint8(p + 9)
    out.protocol = proto
    const src = out.src
    const dst = out.dst
    src[0] = v.getUint32(p + 12)
    dst[0] = v.getUint32(p + 16)
    src[1] = src[2] = src[3] = 0
    dst[1] = dst[2] = dst[3] = 0
    out.flowLabel = 0
    // Flags: reserved(1) DF(1) MF(1), then the fragment offset in 8-byte units. Ethernet padding is ignored.
    const ipEnd = total < avail ? p + total : end
    const fragOffset = (frag & 0x1fff) << 3
    const mf = (frag & 0x2000) !== 0
    out.fragOffset = fragOffset
    out.moreFragments = mf
    out.isFragment = mf || fragOffset > 0
    return this.transport(proto, p + ihl, ipEnd, p + total)
  }

  /** IPv6 fixed header (RFC 8200) and extension-header chain. */
  private ipv6(p: number, end: number): DecodeResult {
    const v = this.v
    const out = this.out
    if (end - p < Len.Ipv6) {
      this.truncated(A.truncated_ipv6_header)
      return DecodeResult.Malformed
    }
    const w0 = v.getUint32(p)
    if (w0 >>> 28 !== 6) {
      this.anomalies.inc(A.bad_ip_version)
      return DecodeResult.Malformed
    }
    const payloadLen = v.getUint16(p + 4)
    let nh = v.getUint8(p + 6)
    out.etherType = EtherType.Ipv6
    out.l3Offset = p
    out.ipVersion = 6
    out.tos = (w0 >>> 20) & 0xff
    out.flowLabel = w0 & 0xfffff
    out.ttl = v.getUint8(p + 7)
    out.ipId = 0
    const src = out.src
    const dst = out.dst
    src[0] = v.getUint32(p + 8)
    src[1] = v.getUint32(p + 12)
    src[2] = v.getUint32(p + 16)
    src[3] = v.getUint32(p + 20)
    dst[0] = v.getUint32(p + 24)
    dst[1] = v.getUint32(p + 28)
    dst[2] = v.getUint32(p + 32)
    dst[3] = v.getUint32(p + 36)
    out.isFragment = out.moreFragments = false
    out.fragOffset = 0

    const avail = end - p
    let total = payloadLen + Len.Ipv6
    if (payloadLen === 0 && nh !== IpProto.NoNext) {
      // Jumbogram (RFC 2675): the length is in the hop-by-hop Jumbo Payload option.
      const jumbo = nh === IpProto.HopByHop ? this.jumboLength(p + Len.Ipv6, end) : 0
      if (jumbo > 0) {
        total = jumbo + Len.Ipv6
      } else {
        this.anomalies.inc(A.ipv6_zero_payload_length)
        total = avail + this.wireExtra
      }
    }
    if (total > avail && !this.snap) this.anomalies.inc(A.ipv6_payload_length_exceeds_frame)
    out.ipLength = total
    const ipEnd = total < avail ? p + total : end
    const announcedEnd = p + total

    let q = p + Len.Ipv6
    for (let n = 0; ; n++) {
      switch (nh) {
        case IpProto.HopByHop:
        case IpProto.Routing:
        case IpProto.DestOpts:
        case IpProto.Mobility:
        case IpProto.Hip:
        case IpProto.Shim6:
        case IpProto.Ah:
        case IpProto.Fragment: {
          if (n >= MAX_IPV6_EXT_HEADERS) {
            this.anomalies.inc(A.ipv6_extension_chain_too_long)
            out.protocol = nh
            return DecodeResult.Ip
          }
          if (ipEnd - q < Len.Ipv6Ext) {
            this.truncated(A.truncated_ipv6_extension_header)
            out.protocol = nh
            return DecodeResult.Ip
          }
          if (nh === IpProto.Fragment) {
            // next(1) reserved(1) offset(13) res(2) M(1) identification(4)
            const fo = v.getUint16(q + 2)
            out.ipId = v.getUint32(q + 4)
            const fragOffset = fo & 0xfff8
            const mf = (fo & 1) !== 0
            out.fragOffset = fragOffset
            out.moreFragments = mf
            // An atomic fragment (offset 0, M clear; RFC 6946) is a whole packet, not a fragment.
            out.isFragment = mf || fragOffset > 0
            nh = v.getUint8(q)
            q += Len.Ipv6Ext
            out.fragDataOffset = q
            if (fragOffset > 0) {
              out.protocol = nh
              return this.transport(nh, q, ipEnd, announcedEnd)
            }
            continue
          }
          // AH counts its length in 4-byte words minus 2 (RFC 4302); the others in 8-byte words minus 1.
          const hl = v.getUint8(q + 1)
          const len = nh === IpProto.Ah ? (hl + 2) << 2 : (hl + 1) << 3
          if (ipEnd - q < len) {
            this.truncated(A.truncated_ipv6_extension_header)
            out.protocol = nh
            return DecodeResult.Ip
          }
          nh = v.getUint8(q)
          q += len
          continue
        }
        default:
          out.protocol = nh
          return this.transport(nh, q, ipEnd, announcedEnd)
      }
    }
  }

  /** Scan a hop-by-hop header at q for the Jumbo Payload option (type 0xC2, length 4); 0 when absent. */
  private jumboLength(q: number, end: number): number {
    const v = this.v
    if (end - q < Len.Ipv6Ext) return 0
    let lim = q + ((v.getUint8(q + 1) + 1) << 3)
    if (lim > end) lim = end
    let o = q + 2
    while (o < lim) {
      const t = v.getUint8(o)
      if (t === 0) {
        o++ // Pad1
        continue
      }
      if (o + 2 > lim) break
      const ol = v.getUint8(o + 1)
      if (t === 0xc2 && ol === 4 && o + 6 <= lim) return v.getUint32(o + 2)
      o += 2 + ol
    }
    return 0
  }

  // ---------------------------------------------------------------------------------------------------
  // Transport: p = start of the IP payload, ipEnd = end of its captured part, announcedEnd = where the IP
  // header says it ends (beyond ipEnd when truncated).

  private transport(proto: number, p: number, ipEnd: number, announcedEnd: number): DecodeResult {
    const out = this.out
    out.l4Offset = p
    if (out.isFragment) {
      // IPv4 fragment data starts after the header; the IPv6 Fragment header set it (see ipv6()).
      if (out.ipVersion === 4) out.fragDataOffset = p
      out.payloadOffset = p
      out.payloadCaptured = ipEnd > p ? ipEnd - p : 0
      out.payloadLength = announcedEnd > p ? announcedEnd - p : 0
      if (out.fragOffset > 0) {
        // A later fragment has no transport header: its ports come from the first fragment.
        this.fragments.fillLater(out, this.tsUs)
        return DecodeResult.Ip
      }
      // A first fragment: read the transport header, do not look inside tunnels (the rest is elsewhere).
      this.l4(proto, p, ipEnd, announcedEnd, false)
      this.fragments.recordFirst(out, this.tsUs)
      return DecodeResult.Ip
    }
    return this.l4(proto, p, ipEnd, announcedEnd, true)
  }

  private l4(proto: number, p: number, ipEnd: number, announcedEnd: number, tunnels: boolean): DecodeResult {
    const v = this.v
    const out = this.out
    const avail = ipEnd - p
    switch (proto) {
      case IpProto.Tcp: {
        if (avail >= 4) {
          out.srcPort = v.getUint16(p)
          out.dstPort = v.getUint16(p + 2)
        }
        if (avail < Len.Tcp) {
          this.truncated(A.truncated_tcp_header)
          return DecodeResult.Ip
        }
        out.tcpSeq = v.getUint32(p + 4)
        out.tcpAck = v.getUint32(p + 8)
        const offFlags = v.getUint16(p + 12)
        // Data offset(4) reserved(3) NS CWR ECE URG ACK PSH RST SYN FIN: RFC 7125's 9 low bits.
        out.tcpFlags = offFlags & 0x1ff
        out.tcpWindow = v.getUint16(p + 14)
        const hl = (offFlags >> 12) << 2
        if (hl < Len.Tcp) {
          this.anomalies.inc(A.bad_tcp_header_length)
          return DecodeResult.Ip
        }
        if (avail < hl) {
          this.truncated(A.truncated_tcp_header)
          return DecodeResult.Ip
        }
        this.setPayload(p + hl, ipEnd, announcedEnd)
        return DecodeResult.Ip
      }
      case IpProto.Udp:
      case IpProto.UdpLite: {
        if (avail >= 4) {
          out.srcPort = v.getUint16(p)
          out.dstPort = v.getUint16(p + 2)
        }
        if (avail < Len.Udp) {
          this.truncated(A.truncated_udp_header)
          return DecodeResult.Ip
        }
        const ulen = v.getUint16(p + 4)
        out.udpLength = ulen
        let dataEnd = announcedEnd
        // A first fragment's UDP length covers the whole datagram, beyond this packet.
        if (proto === IpProto.Udp && !out.isFragment) {
          if (ulen < Len.Udp || ulen > announcedEnd - p) this.anomalies.inc(A.bad_udp_length)
          else dataEnd = p + ulen
        }
        this.setPayload(p + Len.Udp, dataEnd < ipEnd ? dataEnd : ipEnd, dataEnd)
        if (tunnels && proto === IpProto.Udp) {
          const dport = out.dstPort
          const sport = out.srcPort
          const q = p + Len.Udp
          const qEnd = dataEnd < ipEnd ? dataEnd : ipEnd
          // Either port, as Wireshark does: a tunnel endpoint may answer from the well-known port. The
          // header checks in vxlan()/geneve() leave non-tunnel traffic on these ports as it is.
          if (dport === UdpPort.Vxlan || dport === UdpPort.VxlanLinux) return this.vxlan(q, qEnd)
          if (dport === UdpPort.Geneve || sport === UdpPort.Geneve) return this.geneve(q, qEnd)
          if (sport === UdpPort.Vxlan || sport === UdpPort.VxlanLinux) return this.vxlan(q, qEnd)
          if (dport === UdpPort.GtpU || sport === UdpPort.GtpU) return this.gtpU(q, qEnd)
          if (dport === UdpPort.Teredo || sport === UdpPort.Teredo) return this.teredo(q, qEnd)
          if (teredoInnerByContent(v, q, qEnd, dataEnd) >= 0) return this.teredo(q, qEnd)
        }
        return DecodeResult.Ip
      }
      case IpProto.Sctp:
      case IpProto.Dccp:
        if (avail >= 4) {
          out.srcPort = v.getUint16(p)
          out.dstPort = v.getUint16(p + 2)
        }
        if (proto === IpProto.Sctp && avail < Len.Sctp) this.truncated(A.truncated_sctp_header)
        this.setPayload(p, ipEnd, announcedEnd)
        return DecodeResult.Ip
      case IpProto.Icmp:
      case IpProto.Icmpv6:
        if (avail < Len.Icmp) {
          this.truncated(A.truncated_icmp_header)
          return DecodeResult.Ip
        }
        out.icmpType = v.getUint8(p)
        out.icmpCode = v.getUint8(p + 1)
        this.setPayload(p, ipEnd, announcedEnd)
        return DecodeResult.Ip
      case IpProto.IpInIp:
        this.setPayload(p, ipEnd, announcedEnd)
        if (!tunnels) return DecodeResult.Ip
        return this.tunnel(Tunnel.IpInIp, 0, Inner.Ipv4, p, ipEnd)
      case IpProto.Ipv6:
        this.setPayload(p, ipEnd, announcedEnd)
        if (!tunnels) return DecodeResult.Ip
        return this.tunnel(Tunnel.Ip6In4, 0, Inner.Ipv6, p, ipEnd)
      case IpProto.Gre:
        this.setPayload(p, ipEnd, announcedEnd)
        if (!tunnels) return DecodeResult.Ip
        return this.gre(p, ipEnd)
      default:
        // ESP, No Next Header and everything else: no ports; the payload is the whole IP payload.
        this.setPayload(p, ipEnd, announcedEnd)
        return DecodeResult.Ip
    }
  }

  private setPayload(p: number, capEnd: number, announcedEnd: number): void {
    const out = this.out
    out.payloadOffset = p
    out.payloadCaptured = capEnd > p ? capEnd - p : 0
    out.payloadLength = announcedEnd > p ? announcedEnd - p : 0
  }

  // ---------------------------------------------------------------------------------------------------
  // Tunnels. Each tunnel method checks its own header and calls tunnel() with the inner packet.

  /**
   * Decode an inner packet found inside a tunnel. `kind` selects the inner decoder: 4 IPv4, 6 IPv6,
   * 1 Ethernet, 0 guess IP by version nibble, or an EtherType (>= 0x600) dispatched like an Ethernet payload.
   * When the inner packet is not a usable IP packet, the outer packet is restored and stays the flow.
   */
  private tunnel(type: Tunnel, id: number, kind: number, p: number, end: number): DecodeResult {
    const out = this.out
    if (this.depth >= MAX_TUNNEL_DEPTH) {
      this.anomalies.inc(A.tunnel_too_deep)
      return DecodeResult.Ip
    }
    const save = this.saves[this.depth]!
    save.copyFrom(out)
    if (this.depth === 0) {
      out.tunnel = type
      out.tunnelId = id
    }
    this.depth++
    out.tunnelCount = this.depth
    // Fields of the outer transport header must not leak into an inner packet that lacks them.
    out.srcPort = out.dstPort = out.tcpFlags = out.tcpSeq = out.tcpAck = out.tcpWindow = out.udpLength = 0
    out.icmpType = out.icmpCode = 0
    out.l4Offset = out.payloadOffset = out.payloadCaptured = out.payloadLength = 0
    let r: DecodeResult
    switch (kind) {
      case Inner.Ipv4:
        r = this.ipv4(p, end)
        break
      case Inner.Ipv6:
        r = this.ipv6(p, end)
        break
      case Inner.Ethernet:
        r = this.ethernet(p, end)
        break
      case Inner.Ppp:
        r = this.ppp(p, end)
        break
      case Inner.GuessIp:
        r = this.rawIp(p, end)
        break
      default:
        r = this.etherPayload(kind, p, end)
    }
    this.depth--
    if (r !== DecodeResult.Ip) out.copyFrom(save)
    return DecodeResult.Ip
  }

  /** VXLAN (RFC 7348): flags(1, I = 0x08) reserved(3) VNI(3) reserved(1), then Ethernet. */
  private vxlan(p: number, end: number): DecodeResult {
    if (end - p < Len.Vxlan) {
      this.truncated(A.truncated_vxlan_header)
      return DecodeResult.Ip
    }
    if ((this.v.getUint8(p) & 0x08) === 0) return DecodeResult.Ip // Not VXLAN: VNI flag clear
    return this.tunnel(Tunnel.Vxlan, this.v.getUint32(p + 4) >>> 8, Inner.Ethernet, p + Len.Vxlan, end)
  }

  /** Geneve (RFC 8926): ver(2) optlen(6) O C rsvd(6) protocol(16) VNI(24) rsvd(8), options, payload. */
  private geneve(p: number, end: number): DecodeResult {
    const v = this.v
    if (end - p < Len.Geneve) {
      this.truncated(A.truncated_geneve_header)
      return DecodeResult.Ip
    }
    const b0 = v.getUint8(p)
    if (b0 >> 6 !== 0) return DecodeResult.Ip // Unknown Geneve version: leave the outer packet alone
    const hl = Len.Geneve + ((b0 & 0x3f) << 2)
    if (end - p < hl) {
      this.truncated(A.truncated_geneve_header)
      return DecodeResult.Ip
    }
    const proto = v.getUint16(p + 2)
    const vni = v.getUint32(p + 4) >>> 8
    if (proto < EtherType.MinEtherType) return DecodeResult.Ip // Not an EtherType: nothing to decode
    const kind = proto === EtherType.TransparentEthernet ? Inner.Ethernet : proto
    return this.tunnel(Tunnel.Geneve, vni, kind, p + hl, end)
  }

  /** GRE (RFC 2784/2890 version 0, RFC 2637 version 1). */
  private gre(p: number, end: number): DecodeResult {
    const v = this.v
    if (end - p < Len.Gre) {
      this.truncated(A.truncated_gre_header)
      return DecodeResult.Ip
    }
    const flags = v.getUint16(p)
    const proto = v.getUint16(p + 2)
    const version = flags & 7
    // C(0x8000) R(0x4000) K(0x2000) S(0x1000) s(0x0800) recur(3) A(0x0080) flags(4) version(3)
    const c = (flags & 0x8000) !== 0
    const k = (flags & 0x2000) !== 0
    const s = (flags & 0x1000) !== 0
    if (version === 1) {
      // PPTP enhanced GRE: key = payload length(2) call id(2), optional sequence and acknowledgement.
      if (proto !== EtherType.Ppp || !k) return DecodeResult.Ip
      const hl = 8 + (s ? 4 : 0) + ((flags & 0x0080) !== 0 ? 4 : 0)
      if (end - p < hl) {
        this.truncated(A.truncated_gre_header)
        return DecodeResult.Ip
      }
      const callId = v.getUint16(p + 6)
      if (!s || v.getUint16(p + 4) === 0) return DecodeResult.Ip // Acknowledgement only, no payload
      return this.tunnel(Tunnel.Gre, callId, Inner.Ppp, p + hl, end)
    }
    if (version !== 0 || (flags & 0x4000) !== 0) return DecodeResult.Ip // Routing present (RFC 1701): not decoded
    const hl = Len.Gre + (c ? 4 : 0) + (k ? 4 : 0) + (s ? 4 : 0)
    if (end - p < hl) {
      this.truncated(A.truncated_gre_header)
      return DecodeResult.Ip
    }
    const key = k ? v.getUint32(p + (c ? 8 : 4)) : 0
    const q = p + hl
    switch (proto) {
      case EtherType.TransparentEthernet:
        return this.tunnel(Tunnel.Gre, key, Inner.Ethernet, q, end)
      case EtherType.Erspan2:
        // ERSPAN type I has no ERSPAN header and no GRE sequence number; type II has both.
        if (!s) return this.tunnel(Tunnel.Gre, key, Inner.Ethernet, q, end)
        if (end - q < Len.Erspan2) {
          this.truncated(A.truncated_erspan_header)
          return DecodeResult.Ip
        }
        return this.tunnel(Tunnel.Gre, key, Inner.Ethernet, q + Len.Erspan2, end)
      case EtherType.Erspan3: {
        if (end - q < Len.Erspan3) {
          this.truncated(A.truncated_erspan_header)
          return DecodeResult.Ip
        }
        // O bit (last bit of the header) announces an 8-byte platform-specific subheader.
        const eh = Len.Erspan3 + ((v.getUint8(q + 11) & 1) !== 0 ? Len.Erspan3Platform : 0)
        if (end - q < eh) {
          this.truncated(A.truncated_erspan_header)
          return DecodeResult.Ip
        }
        return this.tunnel(Tunnel.Gre, key, Inner.Ethernet, q + eh, end)
      }
      case EtherType.Ipv4:
        return this.tunnel(Tunnel.Gre, key, Inner.Ipv4, q, end)
      case EtherType.Ipv6:
        return this.tunnel(Tunnel.Gre, key, Inner.Ipv6, q, end)
      case EtherType.CiscoMetaData:
        // Over GRE the EtherType comes first: type(2) ver(1) len(1) opt(2) SGT(2) (as Wireshark's CMD dissector).
        if (end - q < 8) {
          this.truncated(A.truncated_gre_header)
          return DecodeResult.Ip
        }
        if (v.getUint16(q) < EtherType.MinEtherType) return DecodeResult.Ip
        return this.tunnel(Tunnel.Gre, key, v.getUint16(q), q + 8, end)
      default:
        // MPLS, VLAN, ...: dispatched like an Ethernet payload; non-IP keeps the outer packet.
        if (proto < EtherType.MinEtherType) return DecodeResult.Ip
        return this.tunnel(Tunnel.Gre, key, proto, q, end)
    }
  }

  /** GTP-U (3GPP TS 29.281): only G-PDU (message type 255) carries user IP packets. */
  private gtpU(p: number, end: number): DecodeResult {
    const v = this.v
    if (end - p < Len.GtpU) {
      this.truncated(A.truncated_gtp_header)
      return DecodeResult.Ip
    }
    // flags: version(3) = 1, PT(1) = 1, spare(1), E(1) S(1) PN(1); message type; length; TEID
    const flags = v.getUint8(p)
    if (flags >> 5 !== 1 || (flags & 0x10) === 0 || v.getUint8(p + 1) !== 255) return DecodeResult.Ip
    const teid = v.getUint32(p + 4)
    let q = p + Len.GtpU
    if ((flags & 0x07) !== 0) {
      // Sequence number(2), N-PDU number(1), next extension header type(1).
      if (end - q < 4) {
        this.truncated(A.truncated_gtp_header)
        return DecodeResult.Ip
      }
      let next = v.getUint8(q + 3)
      q += 4
      for (let n = 0; next !== 0; n++) {
        if (n >= MAX_GTP_EXT_HEADERS) {
          this.anomalies.inc(A.bad_gtp_extension_header)
          return DecodeResult.Ip
        }
        if (end - q < 1) {
          this.truncated(A.truncated_gtp_header)
          return DecodeResult.Ip
        }
        // Extension length in 4-byte units, including the length and next-type bytes.
        const len = v.getUint8(q) << 2
        if (len === 0) {
          this.anomalies.inc(A.bad_gtp_extension_header)
          return DecodeResult.Ip
        }
        if (end - q < len) {
          this.truncated(A.truncated_gtp_header)
          return DecodeResult.Ip
        }
        next = v.getUint8(q + len - 1)
        q += len
      }
    }
    if (q >= end) return DecodeResult.Ip // G-PDU without payload
    return this.tunnel(Tunnel.GtpU, teid, Inner.GuessIp, q, end)
  }

  /** Teredo (RFC 4380): optional authentication and origin indications, then IPv6. */
  private teredo(p: number, end: number): DecodeResult {
    const v = this.v
    let q = p
    if (end - q >= 2 && v.getUint16(q) === 0x0001) {
      // Authentication: 0x0001 id-len(1) au-len(1) client id, authentication value, nonce(8), confirmation(1)
      if (end - q < 4) {
        this.truncated(A.truncated_teredo_header)
        return DecodeResult.Ip
      }
      const alen = 4 + v.getUint8(q + 2) + v.getUint8(q + 3) + 9
      if (end - q < alen) {
        this.truncated(A.truncated_teredo_header)
        return DecodeResult.Ip
      }
      q += alen
    }
    if (end - q >= 2 && v.getUint16(q) === 0x0000) {
      // Origin indication: 0x0000 port(2) address(4)
      if (end - q < 8) {
        this.truncated(A.truncated_teredo_header)
        return DecodeResult.Ip
      }
      q += 8
    }
    // Only treat it as Teredo when a whole IPv6 header follows; other traffic on port 3544 stays as it is.
    if (end - q < Len.Ipv6 || v.getUint8(q) >> 4 !== 6) return DecodeResult.Ip
    return this.tunnel(Tunnel.Teredo, 0, Inner.Ipv6, q, end)
  }
}
