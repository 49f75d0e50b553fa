/**
 * Canonical bidirectional flow keys (RFC 5103): both directions of a conversation map to one key.
 *
 * A key is KEY_WORDS u32 words written into a caller-owned scratch array. Endpoint A is the smaller of
 * (address, port) pairs, so a packet and its reply produce the same words; `fillKey` returns whether the
 * packet travels A → B. ICMP has no ports: the type/code takes the destination port's place, with replies
 * folded onto their request type so that an echo request and its reply share one biflow.
 */
import type { PacketInfo } from '../decode/packet.js'

/** Words: 0-3 address A, 4-7 address B, 8 portA<<16|portB, 9 ipVersion<<8|protocol, 10 innerVlan<<16|vlan, 11 tunnelId, 12 tunnelType. */
export const KEY_WORDS = 13

/** ICMP reply type → request type, so both halves of an exchange key alike (RFC 792, RFC 4443). */
function icmpKeyType(protocol: number, type: number): number {
  if (protocol === 1) {
    switch (type) {
      case 0: // echo reply
        return 8
      case 14: // timestamp reply
        return 13
      case 16: // information reply
        return 15
      case 18: // address mask reply
        return 17
      default:
        return type
    }
  }
  switch (type) {
    case 129: // ICMPv6 echo reply
      return 128
    default:
      return type
  }
}

/** Compare (addr, port) of the source against the destination: negative when the source sorts first. */
function compareEndpoints(p: PacketInfo, sport: number, dport: number): number {
  const s = p.src
  const d = p.dst
  for (let i = 0; i < 4; i++) {
    const a = s[i]!
    const b = d[i]!
    if (a !== b) return a < b ? -1 : 1
  }
  return sport - dport
}

/**
 * Write the canonical key of `p` into `key` (length ≥ KEY_WORDS). Returns true when the packet goes
 * from endpoint A to endpoint B.
 */
export function fillKey(p: PacketInfo, key: Uint32Array): boolean {
  let sport = p.srcPort
  let dport = p.dstPort
  const icmp = p.protocol === 1 || p.protocol === 58
  if (icmp) {
    sport = 0
    dport = (icmpKeyType(p.protocol, p.icmpType) << 8) | p.icmpCode
  }
  const aToB = icmp ? compareEndpoints(p, 0, 0) <= 0 : compareEndpoints(p, sport, dport) <= 0
  const a = aToB ? p.src : p.dst
  const b = aToB ? p.dst : p.src
  key[0] = a[0]!
  key[1] = a[1]!
  key[2] = a[2]!
  key[3] = a[3]!
  key[4] = b[0]!
  key[5] = b[1]!
  key[6] = b[2]!
  key[7] = b[3]!
  key[8] = icmp ? dport : aToB ? ((sport << 16) | dport) >>> 0 : ((dport << 16) | sport) >>> 0
  key[9] = (p.ipVersion << 8) | p.protocol
  key[10] = ((p.innerVlanId << 16) | p.vlanId) >>> 0
  key[11] = p.tunnelId >>> 0
  key[12] = p.tunnel
  return aToB
}

/**
 * 30-bit hash of a key: the address words folded per endpoint (rotated apart; IPv4 leaves words 1-3 zero),
 * then murmur3 rounds over the four folded words and the finalizer. Written out without helper calls: a
 * 32-bit value returned from a call that is not inlined is boxed as a heap number, and so would a result
 * above 30 bits (the result stays a small integer).
 */
export function hashKey(key: Uint32Array): number {
  let x = key[1]!
  let y = key[2]!
  let z = key[3]!
  const a = key[0]! ^ ((x << 7) | (x >>> 25)) ^ ((y << 14) | (y >>> 18)) ^ ((z << 21) | (z >>> 11))
  x = key[5]!
  y = key[6]!
  z = key[7]!
  const b = key[4]! ^ ((x << 7) | (x >>> 25)) ^ ((y << 14) | (y >>> 18)) ^ ((z << 21) | (z >>> 11))
  x = key[10]!
  y = key[11]!
  z = key[12]!
  const rest = key[9]! ^ ((x << 11) | (x >>> 21)) ^ ((y << 3) | (y >>> 29)) ^ ((z << 24) | (z >>> 8))
  let h = 0x9747b28c
  for (let i = 0; i < 4; i++) {
    let k = i === 0 ? a : i === 1 ? b : i === 2 ? key[8]! : rest
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, 0x1b873593)
    h ^= k
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h & 0x3fffffff
}
