/**
 * Test helper: builds packets byte by byte, layer by layer, for decoder and flow tests.
 *
 * Each builder takes its header fields and the already-built payload and returns a new Uint8Array, so packets
 * read outside-in: `eth({ vlan: [10] }, ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }, tcp({ sport: 1, dport: 2 })))`.
 * Layouts follow IEEE 802.3/802.1Q, RFC 791 (IPv4), RFC 8200 (IPv6), RFC 9293 (TCP), RFC 768 (UDP), RFC 9260 (SCTP),
 * RFC 3032 (MPLS), RFC 2516 (PPPoE), RFC 7348 (VXLAN), RFC 8926 (Geneve), RFC 2784/2890 (GRE), RFC 2637 (PPTP GRE),
 * 3GPP TS 29.281 (GTP-U) and RFC 4380 (Teredo). The IPv4 header checksum is computed; transport checksums are left 0
 * (the decoder does not verify them). Fields that tests want to corrupt can be overridden (`totalLength`, `ihl`, ...).
 */

// ---------------------------------------------------------------------------------------------------------
// Bytes and addresses

/** Concatenate byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

/** Bytes from a hex string; spaces, newlines and `#` comments to the end of a line are ignored. */
export function hex(s: string): Uint8Array {
  const clean = s.replace(/#[^\n]*/g, '').replace(/[^0-9a-fA-F]/g, '')
  if (clean.length % 2 !== 0) throw new Error(`odd hex length: ${clean.length}`)
  const out = new Uint8Array(clean.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16)
  return out
}

/** A writer for fixed-size headers: big-endian setters over a new zeroed buffer. */
class Hdr {
  readonly bytes: Uint8Array
  private readonly view: DataView
  constructor(size: number) {
    this.bytes = new Uint8Array(size)
    this.view = new DataView(this.bytes.buffer)
  }
  u8(o: number, v: number): this {
    this.view.setUint8(o, v & 0xff)
    return this
  }
  u16(o: number, v: number): this {
    this.view.setUint16(o, v & 0xffff)
    return this
  }
  u32(o: number, v: number): this {
    this.view.setUint32(o, v >>> 0)
    return this
  }
  set(o: number, b: Uint8Array): this {
    this.bytes.set(b, o)
    return this
  }
}

/** Parse 'aa:bb:cc:dd:ee:ff' into 6 bytes. */
export function mac(s: string): Uint8Array {
  const parts = s.split(':')
  if (parts.length !== 6) throw new Error(`bad MAC ${s}`)
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)))
}

/** Parse a dotted-quad IPv4 address into 4 bytes. */
export function ip4(s: string): Uint8Array {
  const parts = s.split('.').map(Number)
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) throw new Error(`bad IPv4 ${s}`)
  return Uint8Array.from(parts)
}

/** Parse an IPv6 address (with optional `::` and no embedded IPv4) into 16 bytes. */
export function ip6(s: string): Uint8Array {
  const [head = '', tail] = s.split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const fill = tail === undefined ? 0 : 8 - h.length - t.length
  const groups = [...h, ...Array<string>(fill).fill('0'), ...t]
  if (groups.length !== 8) throw new Error(`bad IPv6 ${s}`)
  const out = new Hdr(16)
  groups.forEach((g, i) => out.u16(i * 2, parseInt(g, 16)))
  return out.bytes
}

/** IPv4 address as the 32-bit number the decoder stores in `src[0]`. */
export function ip4Num(s: string): number {
  return new DataView(ip4(s).buffer).getUint32(0)
}

/** IPv6 address as the four 32-bit words the decoder stores in `src`. */
export function ip6Words(s: string): number[] {
  const v = new DataView(ip6(s).buffer)
  return [v.getUint32(0), v.getUint32(4), v.getUint32(8), v.getUint32(12)]
}

/** RFC 1071 Internet checksum. */
export function inetChecksum(b: Uint8Array): number {
  let sum = 0
  for (let i = 0; i < b.length; i += 2) sum += ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0)
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return ~sum & 0xffff
}

// ---------------------------------------------------------------------------------------------------------
// Constants

/** EtherTypes used by the builders. */
export const ETH = {
  IPV4: 0x0800, // Internet Protocol version 4
  ARP: 0x0806, // Address Resolution Protocol
  VLAN: 0x8100, // 802.1Q C-tag
  QINQ: 0x88a8, // 802.1ad S-tag
  IPV6: 0x86dd, // Internet Protocol version 6
  MPLS: 0x8847, // MPLS unicast
  PPPOE: 0x8864, // PPPoE session
  TEB: 0x6558, // Transparent Ethernet Bridging
  ERSPAN2: 0x88be, // ERSPAN type II
  ERSPAN3: 0x22eb, // ERSPAN type III
  PPP: 0x880b, // PPP (PPTP GRE)
  LLDP: 0x88cc, // Link Layer Discovery Protocol
} as const

/** IP protocol numbers used by the builders. */
export const PROTO = {
  HOPOPT: 0, // IPv6 hop-by-hop options
  ICMP: 1, // ICMP
  IPIP: 4, // IPv4 in IP
  TCP: 6, // TCP
  UDP: 17, // UDP
  IPV6: 41, // IPv6 in IP
  ROUTING: 43, // IPv6 routing header
  FRAGMENT: 44, // IPv6 fragment header
  GRE: 47, // GRE
  ESP: 50, // ESP
  AH: 51, // AH
  ICMPV6: 58, // ICMPv6
  NONE: 59, // IPv6 no next header
  DSTOPTS: 60, // IPv6 destination options
  SCTP: 132, // SCTP
  MOBILITY: 135, // Mobility header
} as const

/** TCP flag bits as in RFC 7125 (NS is bit 8). */
export const TCP = {
  FIN: 0x001,
  SYN: 0x002,
  RST: 0x004,
  PSH: 0x008,
  ACK: 0x010,
  URG: 0x020,
  ECE: 0x040,
  CWR: 0x080,
  NS: 0x100,
} as const

/** Pcap link types used by the builders. */
export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const

// ---------------------------------------------------------------------------------------------------------
// Link layer

export interface EthOptions {
  src?: string
  dst?: string
  /** VLAN ids, outermost first. */
  vlan?: number[]
  /** TPID for each tag (default 0x88a8 for the outer tag of a stack of 2+, else 0x8100). */
  vlanTpid?: number[]
  /** Priority code point of every tag. */
  pcp?: number
  /** EtherType of the payload; guessed from an IP version nibble when absent. */
  type?: number
}

function guessType(payload: Uint8Array): number {
  const v = (payload[0] ?? 0) >> 4
  return v === 6 ? ETH.IPV6 : ETH.IPV4
}

/** Ethernet II frame: dst(6) src(6) [TPID(2) TCI(2)]* type(2) payload. */
export function eth(o: EthOptions, payload: Uint8Array): Uint8Array {
  const vlans = o.vlan ?? []
  const h = new Hdr(14 + 4 * vlans.length)
  h.set(0, mac(o.dst ?? '02:00:00:00:00:02'))
  h.set(6, mac(o.src ?? '02:00:00:00:00:01'))
  let p = 12
  vlans.forEach((id, i) => {
    const tpid = o.vlanTpid?.[i] ?? (vlans.length > 1 && i === 0 ? ETH.QINQ : ETH.VLAN)
    h.u16(p, tpid)
    h.u16(p + 2, ((o.pcp ?? 0) << 13) | (id & 0xfff))
    p += 4
  })
  h.u16(p, o.type ?? guessType(payload))
  return concat(h.bytes, payload)
}

/** IEEE 802.3 frame with a length field and an LLC header (DSAP, SSAP, control); `snapType` adds SNAP. */
export function eth8023(
  o: { src?: string; dst?: string; snapType?: number },
  payload: Uint8Array,
): Uint8Array {
  const llc =
    o.snapType === undefined ? hex('42 42 03') : new Hdr(8).u16(0, 0xaaaa).u8(2, 3).u16(6, o.snapType).bytes
  const h = new Hdr(14)
  h.set(0, mac(o.dst ?? '01:80:c2:00:00:00'))
  h.set(6, mac(o.src ?? '02:00:00:00:00:01'))
  h.u16(12, llc.length + payload.length)
  return concat(h.bytes, llc, payload)
}

/** ARP request for IPv4 over Ethernet (RFC 826). */
export function arp(o: { senderIp?: string; targetIp?: string } = {}): Uint8Array {
  const h = new Hdr(28)
  h.u16(0, 1).u16(2, ETH.IPV4).u8(4, 6).u8(5, 4).u16(6, 1)
  h.set(8, mac('02:00:00:00:00:01')).set(14, ip4(o.senderIp ?? '10.0.0.1'))
  h.set(24, ip4(o.targetIp ?? '10.0.0.2'))
  return h.bytes
}

/** MPLS label stack (RFC 3032): label(20) TC(3) S(1) TTL(8), S set on the last label. */
export function mpls(labels: number[], payload: Uint8Array): Uint8Array {
  const h = new Hdr(4 * labels.length)
  labels.forEach((l, i) => h.u32(i * 4, (l << 12) | (i === labels.length - 1 ? 0x100 : 0) | 64))
  return concat(h.bytes, payload)
}

/** PPPoE session header (RFC 2516) plus the PPP protocol field (0x0021 IPv4 / 0x0057 IPv6 guessed). */
export function pppoe(o: { session?: number; pppProto?: number }, payload: Uint8Array): Uint8Array {
  const proto = o.pppProto ?? ((payload[0] ?? 0) >> 4 === 6 ? 0x0057 : 0x0021)
  const h = new Hdr(8)
  h.u8(0, 0x11)
    .u8(1, 0)
    .u16(2, o.session ?? 1)
    .u16(4, payload.length + 2)
    .u16(6, proto)
  return concat(h.bytes, payload)
}

/** Linux cooked header v1: packet type(2) ARPHRD(2) address length(2) address(8) protocol(2). */
export function sll(o: { protocol?: number }, payload: Uint8Array): Uint8Array {
  const h = new Hdr(16)
  h.u16(0, 0).u16(2, 1).u16(4, 6).set(6, mac('02:00:00:00:00:01'))
  h.u16(14, o.protocol ?? guessType(payload))
  return concat(h.bytes, payload)
}

/** Linux cooked header v2: protocol(2) reserved(2) ifindex(4) ARPHRD(2) type(1) addrlen(1) address(8). */
export function sll2(o: { protocol?: number }, payload: Uint8Array): Uint8Array {
  const h = new Hdr(20)
  h.u16(0, o.protocol ?? guessType(payload))
    .u32(4, 2)
    .u16(8, 1)
    .u8(10, 0)
    .u8(11, 6)
  h.set(12, mac('02:00:00:00:00:01'))
  return concat(h.bytes, payload)
}

/** BSD NULL (host byte order, little-endian here unless `bigEndian`) or LOOP (network order) header. */
export function nullHdr(o: { family: number; bigEndian?: boolean }, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, o.family, !(o.bigEndian ?? false))
  return concat(b, payload)
}

// ---------------------------------------------------------------------------------------------------------
// IP

export interface Ipv4Options {
  src?: string
  dst?: string
  /** Protocol; guessed from the payload builder when absent is not possible, so the default is TCP (6). */
  proto?: number
  ttl?: number
  tos?: number
  id?: number
  df?: boolean
  mf?: boolean
  /** Fragment offset in bytes (a multiple of 8). */
  fragOffset?: number
  /** IP options, padded to a multiple of 4 bytes. */
  options?: Uint8Array
  /** Override fields to build malformed packets. */
  totalLength?: number
  ihl?: number
  version?: number
}

/** IPv4 header (RFC 791) with checksum, followed by the payload. */
export function ipv4(o: Ipv4Options, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const opt = o.options ?? new Uint8Array(0)
  const optLen = (opt.length + 3) & ~3
  const hl = 20 + optLen
  const h = new Hdr(hl)
  h.u8(0, ((o.version ?? 4) << 4) | ((o.ihl ?? hl / 4) & 0xf))
  h.u8(1, o.tos ?? 0)
  h.u16(2, o.totalLength ?? hl + payload.length)
  h.u16(4, o.id ?? 1)
  h.u16(6, ((o.df ?? false) ? 0x4000 : 0) | ((o.mf ?? false) ? 0x2000 : 0) | ((o.fragOffset ?? 0) >> 3))
  h.u8(8, o.ttl ?? 64)
  h.u8(9, o.proto ?? PROTO.TCP)
  h.set(12, ip4(o.src ?? '10.0.0.1')).set(16, ip4(o.dst ?? '10.0.0.2'))
  h.set(20, opt)
  h.u16(10, inetChecksum(h.bytes))
  return concat(h.bytes, payload)
}

/** One IPv6 extension header; `bytes[0]` (next header) is filled in by ipv6(). */
export interface Ipv6Ext {
  type: number
  bytes: Uint8Array
}

/** Options-style extension header (hop-by-hop 0, destination options 60, ...) padded to 8n bytes with PadN. */
export function optionsExt(type: number, options: Uint8Array = new Uint8Array(0)): Ipv6Ext {
  const len = (2 + options.length + 7) & ~7
  const h = new Hdr(len)
  h.u8(1, len / 8 - 1).set(2, options)
  const pad = len - 2 - options.length
  if (pad === 1) h.u8(2 + options.length, 0)
  else if (pad >= 2) h.u8(2 + options.length, 1).u8(3 + options.length, pad - 2)
  return { type, bytes: h.bytes }
}

/** Hop-by-hop options header, optionally with a Jumbo Payload option (RFC 2675). */
export function hopByHop(o: { jumbo?: number } = {}): Ipv6Ext {
  if (o.jumbo === undefined) return optionsExt(PROTO.HOPOPT)
  return optionsExt(PROTO.HOPOPT, new Hdr(6).u8(0, 0xc2).u8(1, 4).u32(2, o.jumbo).bytes)
}

/** Routing header type 0/2/4 with `segments` addresses (RFC 8200 section 4.4). */
export function routingExt(
  o: { routingType?: number; segmentsLeft?: number; segments?: string[] } = {},
): Ipv6Ext {
  const segs = o.segments ?? ['2001:db8::99']
  const h = new Hdr(8 + 16 * segs.length)
  h.u8(1, 2 * segs.length)
    .u8(2, o.routingType ?? 0)
    .u8(3, o.segmentsLeft ?? segs.length)
  segs.forEach((s, i) => h.set(8 + 16 * i, ip6(s)))
  return { type: PROTO.ROUTING, bytes: h.bytes }
}

/** Fragment header: next(1) reserved(1) offset(13)/res(2)/M(1) identification(4). */
export function fragmentExt(o: { offset?: number; more?: boolean; id?: number }): Ipv6Ext {
  const h = new Hdr(8)
  h.u16(2, (o.offset ?? 0) | ((o.more ?? false) ? 1 : 0)).u32(4, o.id ?? 1)
  return { type: PROTO.FRAGMENT, bytes: h.bytes }
}

/** Authentication header (RFC 4302) with a 12-byte ICV: length field in 4-byte words minus 2. */
export function ahExt(o: { spi?: number; icvLength?: number } = {}): Ipv6Ext {
  const icv = o.icvLength ?? 12
  const h = new Hdr(12 + icv)
  h.u8(1, (12 + icv) / 4 - 2)
    .u32(4, o.spi ?? 0x1000)
    .u32(8, 1)
  return { type: PROTO.AH, bytes: h.bytes }
}

export interface Ipv6Options {
  src?: string
  dst?: string
  /** Upper-layer protocol after the extension chain (default TCP). */
  proto?: number
  hopLimit?: number
  trafficClass?: number
  flowLabel?: number
  ext?: Ipv6Ext[]
  /** Override the payload length field (e.g. 0 for a jumbogram). */
  payloadLength?: number
  version?: number
}

/** IPv6 header (RFC 8200) + extension headers (next-header fields chained) + payload. */
export function ipv6(o: Ipv6Options, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const exts = o.ext ?? []
  const chain = exts.map((e, i) => {
    const b = e.bytes.slice()
    b[0] = exts[i + 1]?.type ?? o.proto ?? PROTO.TCP
    return b
  })
  const body = concat(...chain, payload)
  const h = new Hdr(40)
  h.u32(0, ((o.version ?? 6) << 28) | ((o.trafficClass ?? 0) << 20) | ((o.flowLabel ?? 0) & 0xfffff))
  h.u16(4, o.payloadLength ?? body.length)
  h.u8(6, exts[0]?.type ?? o.proto ?? PROTO.TCP)
  h.u8(7, o.hopLimit ?? 64)
  h.set(8, ip6(o.src ?? '2001:db8::1')).set(24, ip6(o.dst ?? '2001:db8::2'))
  return concat(h.bytes, body)
}

// ---------------------------------------------------------------------------------------------------------
// Transport

export interface TcpOptions {
  sport: number
  dport: number
  seq?: number
  ack?: number
  /** RFC 7125 flag bits (TCP.SYN | TCP.ACK ...); NS goes into the reserved nibble's low bit. */
  flags?: number
  window?: number
  options?: Uint8Array
  payload?: Uint8Array
  /** Override the data offset (in 32-bit words). */
  dataOffset?: number
}

/** TCP header (RFC 9293): ports, seq, ack, data offset/flags, window, checksum(0), urgent, options. */
export function tcp(o: TcpOptions): Uint8Array {
  const opt = o.options ?? new Uint8Array(0)
  const hl = 20 + ((opt.length + 3) & ~3)
  const h = new Hdr(hl)
  h.u16(0, o.sport)
    .u16(2, o.dport)
    .u32(4, o.seq ?? 0)
    .u32(8, o.ack ?? 0)
  h.u16(12, ((o.dataOffset ?? hl / 4) << 12) | ((o.flags ?? TCP.ACK) & 0x1ff))
  h.u16(14, o.window ?? 65535).set(20, opt)
  return concat(h.bytes, o.payload ?? new Uint8Array(0))
}

/** UDP header (RFC 768); `length` overrides the length field. */
export function udp(o: { sport: number; dport: number; payload?: Uint8Array; length?: number }): Uint8Array {
  const payload = o.payload ?? new Uint8Array(0)
  const h = new Hdr(8)
  h.u16(0, o.sport)
    .u16(2, o.dport)
    .u16(4, o.length ?? 8 + payload.length)
  return concat(h.bytes, payload)
}

/** SCTP common header (RFC 9260): ports, verification tag, checksum; chunks are the payload. */
export function sctp(o: { sport: number; dport: number; vtag?: number; payload?: Uint8Array }): Uint8Array {
  const h = new Hdr(12)
  h.u16(0, o.sport)
    .u16(2, o.dport)
    .u32(4, o.vtag ?? 1)
  return concat(h.bytes, o.payload ?? new Uint8Array(0))
}

/** ICMP / ICMPv6 header: type, code, checksum(0), rest-of-header(4) and payload. */
export function icmp(o: { type: number; code?: number; rest?: number; payload?: Uint8Array }): Uint8Array {
  const h = new Hdr(8)
  h.u8(0, o.type)
    .u8(1, o.code ?? 0)
    .u32(4, o.rest ?? 0)
  return concat(h.bytes, o.payload ?? new Uint8Array(0))
}

// ---------------------------------------------------------------------------------------------------------
// Tunnels

/** VXLAN header (RFC 7348): flags 0x08, VNI; the payload is an Ethernet frame. */
export function vxlan(o: { vni: number; flags?: number }, inner: Uint8Array): Uint8Array {
  const h = new Hdr(8)
  h.u8(0, o.flags ?? 0x08).u32(4, o.vni << 8)
  return concat(h.bytes, inner)
}

/** Geneve header (RFC 8926): options length in 4-byte words, protocol type, VNI, options. */
export function geneve(
  o: { vni: number; protocol?: number; options?: Uint8Array },
  inner: Uint8Array,
): Uint8Array {
  const opt = o.options ?? new Uint8Array(0)
  const h = new Hdr(8 + opt.length)
  h.u8(0, (opt.length / 4) & 0x3f)
    .u16(2, o.protocol ?? ETH.TEB)
    .u32(4, o.vni << 8)
    .set(8, opt)
  return concat(h.bytes, inner)
}

/** GRE version 0 (RFC 2784/2890): optional checksum, key and sequence number. */
export function gre(
  o: { protocol?: number; key?: number; seq?: number; checksum?: boolean },
  inner: Uint8Array,
): Uint8Array {
  const c = o.checksum ?? false
  const hl = 4 + (c ? 4 : 0) + (o.key !== undefined ? 4 : 0) + (o.seq !== undefined ? 4 : 0)
  const h = new Hdr(hl)
  h.u16(0, (c ? 0x8000 : 0) | (o.key !== undefined ? 0x2000 : 0) | (o.seq !== undefined ? 0x1000 : 0))
  h.u16(2, o.protocol ?? guessType(inner))
  let p = 4 + (c ? 4 : 0)
  if (o.key !== undefined) {
    h.u32(p, o.key)
    p += 4
  }
  if (o.seq !== undefined) h.u32(p, o.seq)
  return concat(h.bytes, inner)
}

/** PPTP enhanced GRE (RFC 2637, version 1) carrying PPP with address/control bytes. */
export function pptpGre(o: { callId: number; seq?: number }, inner: Uint8Array): Uint8Array {
  const ppp = concat(
    hex('ff 03'),
    new Hdr(2).u16(0, (inner[0] ?? 0) >> 4 === 6 ? 0x0057 : 0x0021).bytes,
    inner,
  )
  const h = new Hdr(12)
  h.u16(0, 0x3001)
    .u16(2, ETH.PPP)
    .u16(4, ppp.length)
    .u16(6, o.callId)
    .u32(8, o.seq ?? 1)
  return concat(h.bytes, ppp)
}

/** ERSPAN type II header (8 bytes): version 1, VLAN, session id; the payload is an Ethernet frame. */
export function erspan2(o: { session?: number }, inner: Uint8Array): Uint8Array {
  const h = new Hdr(8)
  h.u16(0, 0x1000).u16(2, o.session ?? 1)
  return concat(h.bytes, inner)
}

/** ERSPAN type III header (12 bytes, + 8 when `platform` sets the O bit). */
export function erspan3(o: { session?: number; platform?: boolean }, inner: Uint8Array): Uint8Array {
  const plat = o.platform ?? false
  const h = new Hdr(plat ? 20 : 12)
  h.u16(0, 0x2000)
    .u16(2, o.session ?? 1)
    .u32(4, 12345)
    .u8(11, plat ? 1 : 0)
  return concat(h.bytes, inner)
}

/** GTP-U header (TS 29.281): G-PDU (type 255) with TEID; `ext` adds extension headers (each n*4 bytes). */
export function gtpu(
  o: { teid: number; messageType?: number; seq?: number; ext?: Uint8Array[] },
  inner: Uint8Array,
): Uint8Array {
  const exts = o.ext ?? []
  const opt = o.seq !== undefined || exts.length > 0
  const optBytes = opt
    ? new Hdr(4).u16(0, o.seq ?? 0).u8(3, exts.length > 0 ? 0x85 : 0).bytes
    : new Uint8Array(0)
  const extBytes = exts.map((e, i) => {
    const b = e.slice()
    b[b.length - 1] = i + 1 < exts.length ? 0x85 : 0
    return b
  })
  const body = concat(optBytes, ...extBytes, inner)
  const h = new Hdr(8)
  h.u8(0, 0x30 | (o.seq !== undefined ? 0x02 : 0) | (exts.length > 0 ? 0x04 : 0))
  h.u8(1, o.messageType ?? 255)
    .u16(2, body.length)
    .u32(4, o.teid)
  return concat(h.bytes, body)
}

/** A GTP-U PDU Session Container extension header (4 bytes: length 1, content, next type). */
export function gtpPduSessionExt(qfi = 9): Uint8Array {
  return new Hdr(4).u8(0, 1).u8(1, 0x10).u8(2, qfi).bytes
}

/** Teredo (RFC 4380) indications before the inner IPv6 packet. */
export function teredo(o: { origin?: boolean; auth?: boolean }, inner: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = []
  if (o.auth ?? false) parts.push(new Hdr(13).u16(0, 1).bytes) // id-len 0, au-len 0, nonce, confirmation
  if (o.origin ?? false)
    parts.push(
      new Hdr(8)
        .u16(0, 0)
        .u16(2, 0xffff ^ 3544)
        .u32(4, 0xffffffff ^ 0xc0000201).bytes,
    )
  return concat(...parts, inner)
}

// ---------------------------------------------------------------------------------------------------------
// Capture files

/** A classic little-endian microsecond pcap file (24-byte header, 16-byte record headers). */
export function pcapFile(
  linkType: number,
  packets: { data: Uint8Array; tsUs?: number; origlen?: number }[],
  snaplen = 262144,
): Uint8Array {
  const parts: Uint8Array[] = []
  const g = new Uint8Array(24)
  const gv = new DataView(g.buffer)
  gv.setUint32(0, 0xa1b2c3d4, true)
  gv.setUint16(4, 2, true)
  gv.setUint16(6, 4, true)
  gv.setUint32(16, snaplen, true)
  gv.setUint32(20, linkType, true)
  parts.push(g)
  packets.forEach((p, i) => {
    const r = new Uint8Array(16)
    const rv = new DataView(r.buffer)
    const ts = p.tsUs ?? 1_700_000_000_000_000 + i * 1000
    rv.setUint32(0, Math.floor(ts / 1e6), true)
    rv.setUint32(4, ts % 1e6, true)
    rv.setUint32(8, p.data.length, true)
    rv.setUint32(12, p.origlen ?? p.data.length, true)
    parts.push(r, p.data)
  })
  return concat(...parts)
}
