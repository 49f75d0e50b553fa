/**
 * Linux netfilter NFLOG link layer (LINKTYPE_NFLOG 239,
 * https://www.tcpdump.org/linktypes/LINKTYPE_NFLOG.html):
 * a 4-byte header (address family, version, resource id), then type-length-value attributes in the
 * netlink layout (length(2) type(2) value, each padded to 4 octets). The logged packet, starting at its
 * network header, is the value of the NFULA_PAYLOAD attribute (type 9).
 *
 * The TLV length and type are in the capturing host's byte order, which the packet does not name (libpcap
 * swaps them on read only when it knows the file's order). They are read little-endian unless the first
 * type only makes sense big-endian: every NFULA_* type is below 256, and the top two bits are netlink flags.
 */

/** Where the logged packet is: written by nflogPayload (one reused object, no allocation per packet). */
export interface NflogSpan {
  /** AF_INET (2) or AF_INET6 (10), from the NFLOG header. */
  family: number
  start: number
  end: number
}

export const enum NflogStatus {
  /** span holds the IPv4 or IPv6 packet. */
  Payload = 0,
  /** The header or an attribute is cut short or has an impossible length. */
  Truncated = 1,
  /** A well-formed NFLOG message without a payload attribute, or of a non-IP family (bridge, ARP). */
  NotIp = 2,
}

const NFULA_PAYLOAD = 9
const AF_INET = 2
const AF_INET6 = 10
/** NLA_F_NESTED | NLA_F_NET_BYTEORDER: flag bits above the attribute type. */
const NLA_TYPE_MASK = 0x3fff
/** Bound on attributes walked (each is at least 4 octets; a 64 KiB frame holds at most 16 Ki). */
const MAX_ATTRIBUTES = 64

/** Finds the logged packet of the NFLOG frame at [p, end) of `v`; never reads outside it. */
export function nflogPayload(v: DataView, p: number, end: number, span: NflogSpan): NflogStatus {
  if (end - p < 4) return NflogStatus.Truncated
  const family = v.getUint8(p)
  let q = p + 4
  if (end - q < 4) return NflogStatus.NotIp
  const le = (v.getUint16(q + 2, true) & NLA_TYPE_MASK) < 0x100
  for (let n = 0; n < MAX_ATTRIBUTES && end - q >= 4; n++) {
    const len = v.getUint16(q, le)
    const type = v.getUint16(q + 2, le) & NLA_TYPE_MASK
    if (len < 4) return NflogStatus.Truncated
    if (type === NFULA_PAYLOAD) {
      if (family !== AF_INET && family !== AF_INET6) return NflogStatus.NotIp
      span.family = family
      span.start = q + 4
      // A snap length may cut the payload: the IP decoder sees what was captured (and knows why).
      span.end = q + len < end ? q + len : end
      return NflogStatus.Payload
    }
    if (len > end - q) return NflogStatus.Truncated
    q += (len + 3) & ~3
  }
  return NflogStatus.NotIp
}
