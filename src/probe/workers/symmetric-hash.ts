/**
 * The worker choice for one packet, made on the dispatching thread without a full decode: a symmetric hash
 * of the unordered IP address pair (of the first IP header after the link layer, or of the inner one for the
 * tunnels below), so both directions of a conversation (and every flow between two hosts) reach the same
 * metering worker.
 *
 * Link layers walked (the same framing rules as src/decode/packet-decoder.ts): Ethernet II and 802.3
 * LLC/SNAP (IEEE 802.3, RFC 1042), 802.1Q / 802.1ad / 0x9100 tags and Cisco MetaData shims, MPLS label
 * stacks (RFC 3032) with the RFC 4385 pseudowire control word, PPPoE session (RFC 2516), PPP (RFC 1661/1662)
 * and Cisco HDLC, NSH (RFC 8300), Linux SLL/SLL2, Linux NFLOG, BSD NULL/LOOP, raw IPv4/IPv6.
 *
 * Why the address pair only, without ports: a non-first IP fragment carries no transport header (RFC 791,
 * RFC 8200 §4.5). The decoder gives it the ports of its first fragment from a per-worker fragment cache, so
 * every fragment of a datagram must reach the worker that saw the first one, and also the worker that holds
 * the unfragmented packets of the same flow (a UDP flow mixes both). Only the address pair is present in all
 * of them. The balance cost: all traffic between one pair of hosts is metered by one worker.
 *
 * Tunnels: the flow key is the innermost packet plus the tunnel type and id (src/flow/flow-key.ts).
 * IP-in-IP, 6in4 (RFC 2003, RFC 4213) and Teredo (RFC 4380) are hashed by their inner pair: their inner
 * header is cheap to reach, and their outer endpoints are often not symmetric (a Teredo client talks to two
 * server addresses and native replies come back through whichever relay is nearest; one 6in4 packet may be
 * seen on both legs of a tunnel broker). The other tunnels (VXLAN, Geneve, GRE/ERSPAN/PPTP, GTP-U) are
 * hashed by the OUTER pair, the first IP header: a flow stays on one worker as long as its packets travel
 * between the same two tunnel endpoints (VTEP pairs, GRE sessions, eNB/gNB–gateway paths; GTP-U TEIDs differ
 * per direction, so those directions are separate flows anyway). The balance cost: all flows inside one such
 * tunnel endpoint pair are metered by one worker. A flow over changing outer endpoints (ECMP over anycast
 * VTEPs, say) would be split between workers into partial records. Outer fragments are always hashed by the
 * outer pair: the decoder keys them on the outer packet and never looks inside them.
 *
 * Packets without an IP header: Ethernet frames (ARP, LLDP, ...) hash the unordered MAC pair of the outer
 * Ethernet header (ARP records need no flow state, any worker will do; the pair spreads them). Packets whose
 * IP header cannot be located (truncated, unsupported framing, unknown link type) go to worker 0, whose
 * decoder counts the anomaly.
 */

import { nflogPayload, NflogStatus, type NflogSpan } from '../../decode/nflog.js'
import { teredoInnerByContent } from '../../decode/teredo.js'

/** LINKTYPE_* values handled here (pcap/pcapng link-type registry). */
const LT_NULL = 0
const LT_ETHERNET = 1
const LT_PPP = 9
const LT_RAW_12 = 12
const LT_RAW_14 = 14
const LT_PPP_HDLC = 50
const LT_RAW = 101
const LT_C_HDLC = 104
const LT_LOOP = 108
const LT_LINUX_SLL = 113
const LT_IPV4 = 228
const LT_IPV6 = 229
const LT_LINUX_SLL2 = 276
const LT_NFLOG = 239
/** Scratch for the NFLOG payload position (used at once). */
const nflogSpan: NflogSpan = { family: 0, start: 0, end: 0 }

/** Bounds against hostile packets (the decoder's own bounds, packet-decoder.ts). */
const MAX_SHIMS = 8
const MAX_MPLS_LABELS = 16
const MAX_L2_HEADERS = 8
const MAX_TUNNEL_DEPTH = 4

/** Returned for a packet whose IP header (or Ethernet header) could not be located: worker 0. */
export const NO_HASH = -1

/** MurmurHash3 32-bit finalizer: a cheap bijective mix. */
function fmix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** Symmetric combination of two 32-bit endpoint hashes: f(a, b) === f(b, a). */
function pair(a: number, b: number): number {
  return fmix32((a + b) ^ Math.imul(a ^ b, 0x9e3779b1) ^ 0x5bd1e995)
}

function ipv6Address(v: DataView, p: number): number {
  let h = fmix32(v.getUint32(p))
  h = fmix32(h ^ v.getUint32(p + 4))
  h = fmix32(h ^ v.getUint32(p + 8))
  return fmix32(h ^ v.getUint32(p + 12))
}

/**
 * Hash of the IP header at p (version from the first nibble), or NO_HASH when the header is not all there or
 * is one the decoder rejects as malformed (so a malformed inner packet falls back to its outer one, as the
 * decoder's flow does). Unfragmented IP-in-IP, 6in4 and Teredo packets are hashed by their inner header.
 */
function ipAt(v: DataView, p: number, end: number, depth: number): number {
  if (p >= end) return NO_HASH
  const version = v.getUint8(p) >> 4
  if (version === 4) {
    if (end - p < 20) return NO_HASH
    const ihl = (v.getUint8(p) & 0x0f) << 2
    const total = v.getUint16(p + 2)
    if (ihl < 20 || end - p < ihl || (total !== 0 && total < ihl)) return NO_HASH
    if (depth < MAX_TUNNEL_DEPTH && (v.getUint16(p + 6) & 0x3fff) === 0) {
      const ipEnd = total >= ihl && p + total < end ? p + total : end
      const inner = innerOf(v, v.getUint8(p + 9), p + ihl, ipEnd, depth)
      if (inner !== NO_HASH) return inner
    }
    return pair(fmix32(v.getUint32(p + 12)), fmix32(v.getUint32(p + 16)))
  }
  if (version === 6) {
    if (end - p < 40) return NO_HASH
    if (depth < MAX_TUNNEL_DEPTH) {
      // Only a tunnel right after the fixed header (no extension headers, so no fragment header either).
      const len = v.getUint16(p + 4)
      const ipEnd = len > 0 && p + 40 + len < end ? p + 40 + len : end
      const inner = innerOf(v, v.getUint8(p + 6), p + 40, ipEnd, depth)
      if (inner !== NO_HASH) return inner
    }
    return pair(ipv6Address(v, p + 8), ipv6Address(v, p + 24))
  }
  return NO_HASH
}

/** The hash of the inner packet of an IP-in-IP (4), 6in4 (41) or Teredo packet at q, else NO_HASH. */
function innerOf(v: DataView, proto: number, q: number, end: number, depth: number): number {
  if (proto === 4 || proto === 41) {
    // The decoder wants the version the protocol announces; another one is a malformed inner packet.
    if (q >= end || v.getUint8(q) >> 4 !== (proto === 4 ? 4 : 6)) return NO_HASH
    return ipAt(v, q, end, depth + 1)
  }
  if (proto !== 17) return NO_HASH
  const inner = teredoInner(v, q, end)
  return inner < 0 ? NO_HASH : ipAt(v, inner, end, depth + 1)
}

/**
 * Offset of the IPv6 header inside a Teredo packet (UDP at u, port 3544 on either side, or Teredo by content
 * on another port), or -1. Follows the
 * decoder (packet-decoder.ts teredo()): optional authentication and origin indications, then a whole IPv6
 * header within the UDP length.
 */
function teredoInner(v: DataView, u: number, ipEnd: number): number {
  if (ipEnd - u < 8) return -1
  const ulen = v.getUint16(u + 4)
  // Other ports: by content, as the decoder does (src/decode/teredo.ts).
  if (v.getUint16(u) !== 3544 && v.getUint16(u + 2) !== 3544)
    return teredoInnerByContent(v, u + 8, u + ulen < ipEnd ? u + ulen : ipEnd, u + ulen)
  if (ulen >= 8 && u + ulen < ipEnd) ipEnd = u + ulen
  let q = u + 8
  if (ipEnd - q >= 2 && v.getUint16(q) === 0x0001) {
    if (ipEnd - q < 4) return -1
    q += 4 + v.getUint8(q + 2) + v.getUint8(q + 3) + 9
  }
  if (ipEnd - q >= 2 && v.getUint16(q) === 0x0000) q += 8
  if (ipEnd - q < 40 || v.getUint8(q) >> 4 !== 6) return -1
  return q
}

/**
 * Symmetric 32-bit hash of the packet at [offset, offset + caplen) of `view`, or NO_HASH. Reads nothing
 * outside the range; never throws.
 */
export function symmetricPacketHash(
  view: DataView,
  offset: number,
  caplen: number,
  linkType: number,
): number {
  let end = offset + caplen
  if (end > view.byteLength) end = view.byteLength
  if (offset < 0 || end <= offset) return NO_HASH
  const v = view
  const p = offset
  switch (linkType) {
    case LT_ETHERNET:
      return ethernet(v, p, end, 0, NO_HASH)
    case LT_RAW:
    case LT_RAW_12:
    case LT_RAW_14:
    case LT_IPV4:
    case LT_IPV6:
      return ipAt(v, p, end, 0)
    case LT_LINUX_SLL:
      return end - p < 16 ? NO_HASH : etherPayload(v, v.getUint16(p + 14), p + 16, end, NO_HASH, 0)
    case LT_LINUX_SLL2:
      return end - p < 20 ? NO_HASH : etherPayload(v, v.getUint16(p), p + 20, end, NO_HASH, 0)
    case LT_NULL:
    case LT_LOOP:
      // The family only says IPv4 or IPv6; the version nibble says the same for a well-formed packet.
      return end - p < 4 ? NO_HASH : ipAt(v, p + 4, end, 0)
    case LT_NFLOG:
      return nflogPayload(v, p, end, nflogSpan) === NflogStatus.Payload
        ? ipAt(v, nflogSpan.start, nflogSpan.end, 0)
        : NO_HASH
    case LT_PPP:
      return ppp(v, p, end, 0)
    case LT_PPP_HDLC:
    case LT_C_HDLC:
      if ((v.getUint8(p) & 0x7f) === 0x0f)
        return end - p < 4 ? NO_HASH : etherPayload(v, v.getUint16(p + 2), p + 4, end, NO_HASH, 0)
      return ppp(v, p, end, 0)
    default:
      return NO_HASH
  }
}

/**
 * Ethernet frame at p: the outermost one's MAC pair is the fallback for frames that carry no IP; an inner
 * one (pseudowire, NSH) keeps the outer fallback.
 */
function ethernet(v: DataView, p: number, end: number, depth: number, outer: number): number {
  if (end - p < 14 || depth >= MAX_L2_HEADERS) return NO_HASH
  // dst MAC at p, src MAC at p + 6: fold each 6-octet address into 32 bits.
  const macs = pair(
    fmix32(v.getUint32(p) ^ Math.imul(v.getUint16(p + 4), 0x27d4eb2d)),
    fmix32(v.getUint32(p + 6) ^ Math.imul(v.getUint16(p + 10), 0x27d4eb2d)),
  )
  const fallback = depth === 0 ? macs : outer
  const type = v.getUint16(p + 12)
  if (type < 0x0600) {
    // 802.3 length: only LLC/SNAP (AA AA 03, OUI, EtherType) can carry IP (RFC 1042).
    const q = p + 14
    if (end - q < 8 || v.getUint16(q) !== 0xaaaa || v.getUint8(q + 2) !== 0x03) return fallback
    return etherPayload(v, v.getUint16(q + 6), q + 8, end, fallback, depth)
  }
  return etherPayload(v, type, p + 14, end, fallback, depth)
}

/** EtherType dispatch after removing tags and shims; `fallback` is returned for non-IP payloads. */
function etherPayload(
  v: DataView,
  type: number,
  p: number,
  end: number,
  fallback: number,
  depth: number,
): number {
  for (let shims = 0; ; shims++) {
    switch (type) {
      case 0x0800:
      case 0x86dd:
        return ipAt(v, p, end, 0)
      case 0x8100:
      case 0x88a8:
      case 0x9100:
        if (shims >= MAX_SHIMS || end - p < 4) return NO_HASH
        type = v.getUint16(p + 2)
        p += 4
        continue
      case 0x8909: // Cisco MetaData: ver len opt SGT, then an EtherType
        if (shims >= MAX_SHIMS || end - p < 8) return NO_HASH
        type = v.getUint16(p + 6)
        p += 8
        continue
      case 0x8847:
      case 0x8848:
        return mpls(v, p, end, fallback, depth)
      case 0x8864: // PPPoE session: 6-octet header, then the PPP protocol
        if (end - p < 8) return NO_HASH
        return pppProto(v, v.getUint16(p + 6), p + 8, end, fallback, depth)
      case 0x894f:
        return nsh(v, p, end, fallback, depth)
      default:
        return fallback
    }
  }
}

function mpls(v: DataView, p: number, end: number, fallback: number, depth: number): number {
  for (let n = 0; ; n++) {
    if (n >= MAX_MPLS_LABELS || end - p < 4) return NO_HASH
    const bottom = (v.getUint8(p + 2) & 1) !== 0
    p += 4
    if (bottom) break
  }
  if (p >= end) return NO_HASH
  const nibble = v.getUint8(p) >> 4
  if (nibble === 4 || nibble === 6) return ipAt(v, p, end, 0)
  // RFC 4385 control word, then an Ethernet frame (the decoder's rule).
  if (nibble === 0 && end - p >= 4 + 14) return ethernet(v, p + 4, end, depth + 1, fallback)
  return fallback
}

function nsh(v: DataView, p: number, end: number, fallback: number, depth: number): number {
  if (end - p < 8) return NO_HASH
  const hl = (v.getUint16(p) & 0x3f) << 2
  if (hl < 8 || end - p < hl) return NO_HASH
  const q = p + hl
  switch (v.getUint8(p + 3)) {
    case 1:
    case 2:
      return ipAt(v, q, end, 0)
    case 3:
      return ethernet(v, q, end, depth + 1, fallback)
    case 5:
      return mpls(v, q, end, fallback, depth)
    default:
      return fallback
  }
}

function ppp(v: DataView, p: number, end: number, depth: number): number {
  if (end - p >= 2 && v.getUint16(p) === 0xff03) p += 2
  if (p >= end) return NO_HASH
  let proto = v.getUint8(p)
  if ((proto & 1) === 0) {
    if (end - p < 2) return NO_HASH
    proto = v.getUint16(p)
    p += 2
  } else {
    p += 1
  }
  return pppProto(v, proto, p, end, NO_HASH, depth)
}

function pppProto(
  v: DataView,
  proto: number,
  p: number,
  end: number,
  fallback: number,
  depth: number,
): number {
  switch (proto) {
    case 0x0021:
    case 0x0057:
      return ipAt(v, p, end, 0)
    case 0x0281:
    case 0x0283:
      return mpls(v, p, end, fallback, depth)
    default:
      return fallback
  }
}

/** The worker (0..workers-1) that meters the packet: the symmetric hash modulo the worker count. */
export function workerForPacket(
  view: DataView,
  offset: number,
  caplen: number,
  linkType: number,
  workers: number,
): number {
  if (workers <= 1) return 0
  const h = symmetricPacketHash(view, offset, caplen, linkType)
  return h === NO_HASH ? 0 : h % workers
}
