/**
 * Teredo (RFC 4380) recognised by content on any UDP port. Port 3544 is only the Teredo server's port:
 * after qualification a client talks to relays and peers from and to arbitrary ports (RFC 4380 §5.2), so
 * a capture of a Teredo client's HTTP carries it on e.g. 3797 <-> 32900. Zeek finds these by content too.
 *
 * A UDP payload is Teredo when, after the optional authentication (§5.1.1) and origin (§5.1.2)
 * indicators, it holds an IPv6 header (version 6) whose payload length accounts exactly for the rest of the
 * UDP payload (as Wireshark's teredo heuristic requires), and one of its addresses is a Teredo address
 * (2001:0000::/32, §4) or link-local (fe80::/10: router solicitations and bubbles between peers). The last
 * check keeps other UDP traffic that happens to start with a 6 nibble (QUIC short headers, say) out.
 */

/** Teredo prefix 2001:0000::/32 as the first 32-bit word of an address. */
const TEREDO_PREFIX = 0x20010000
/** Authentication indicator: 0x0001 id-len(1) au-len(1) client id, auth value, nonce(8), confirmation(1). */
const AUTH_FIXED = 13
/** Origin indicator: 0x0000 port(2) address(4). */
const ORIGIN_LEN = 8
const IPV6_HEADER = 40

const teredoOrLinkLocal = (v: DataView, a: number): boolean =>
  v.getUint32(a) === TEREDO_PREFIX || (v.getUint16(a) & 0xffc0) === 0xfe80

/**
 * Offset of the IPv6 header inside the UDP payload at [p, capEnd) (captured) whose UDP length ends at
 * udpEnd, when the payload is Teredo by the rules above; else -1. Reads nothing at or beyond capEnd.
 */
export function teredoInnerByContent(v: DataView, p: number, capEnd: number, udpEnd: number): number {
  if (capEnd - p < IPV6_HEADER) return -1
  let q = p
  let first = v.getUint8(q)
  if (first >> 4 !== 6 && first !== 0) return -1
  if (first === 0 && v.getUint8(q + 1) === 1) {
    const alen = AUTH_FIXED + v.getUint8(q + 2) + v.getUint8(q + 3)
    if (capEnd - q < alen + IPV6_HEADER) return -1
    q += alen
    first = v.getUint8(q)
  }
  if (first === 0 && v.getUint8(q + 1) === 0) {
    if (capEnd - q < ORIGIN_LEN + IPV6_HEADER) return -1
    q += ORIGIN_LEN
    first = v.getUint8(q)
  }
  if (first >> 4 !== 6) return -1
  if (q + IPV6_HEADER + v.getUint16(q + 4) !== udpEnd) return -1
  if (!teredoOrLinkLocal(v, q + 8) && !teredoOrLinkLocal(v, q + 24)) return -1
  return q
}
