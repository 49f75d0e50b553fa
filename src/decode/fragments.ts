/**
 * Bounded cache that gives later IP fragments the ports of their first fragment.
 *
 * Fragments are identified per RFC 791 (IPv4: source, destination, protocol, 16-bit identification) and
 * RFC 8200 section 4.5 (IPv6: source, destination, 32-bit identification; the protocol is the upper-layer
 * header after the fragment header). Only fragments reach this cache, so allocating a key string here is
 * acceptable: non-fragmented packets never touch it. Entries expire after a timeout in packet time and the
 * oldest entry is evicted when the cache is full (Map iteration order is insertion order).
 */
import { A, type Anomalies } from './anomalies.js'
import type { PacketInfo } from './packet.js'

interface FragmentEntry {
  tsUs: number
  /** The upper-layer protocol the first fragment's header chain led to (IPv6: see fragmentKey). */
  protocol: number
  srcPort: number
  dstPort: number
  icmpType: number
  icmpCode: number
}

export const DEFAULT_FRAGMENT_CACHE_SIZE = 65536
/** RFC 791 suggests a reassembly timer of up to 15 s; Linux uses 30 s (ipfrag_time). */
export const DEFAULT_FRAGMENT_TIMEOUT_US = 30_000_000

export class FragmentCache {
  private readonly entries = new Map<string, FragmentEntry>()

  constructor(
    private readonly anomalies: Anomalies,
    readonly maxEntries: number = DEFAULT_FRAGMENT_CACHE_SIZE,
    readonly timeoutUs: number = DEFAULT_FRAGMENT_TIMEOUT_US,
  ) {}

  get size(): number {
    return this.entries.size
  }

  clear(): void {
    this.entries.clear()
  }

  /** Remember the ports of a first fragment (offset 0, more-fragments set); `p` holds its decoded fields. */
  recordFirst(p: PacketInfo, tsUs: number): void {
    this.expire(tsUs)
    const key = fragmentKey(p)
    const old = this.entries.get(key)
    if (old !== undefined) {
      // A retransmitted first fragment: refresh it and move it to the young end.
      this.entries.delete(key)
    } else if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next()
      if (oldest.done !== true) this.entries.delete(oldest.value)
      this.anomalies.inc(A.fragment_cache_full)
    }
    this.entries.set(key, {
      tsUs,
      protocol: p.protocol,
      srcPort: p.srcPort,
      dstPort: p.dstPort,
      icmpType: p.icmpType,
      icmpCode: p.icmpCode,
    })
  }

  /**
   * Fill the ports (and ICMP type/code) of a later fragment from its first fragment, and for IPv6 the
   * protocol too (a later fragment's Fragment header names the first header of the fragmentable part, which
   * is not the upper-layer protocol when extension headers follow it). Returns false, and counts
   * `fragment_without_first`, when the first fragment is unknown or expired.
   */
  fillLater(p: PacketInfo, tsUs: number): boolean {
    const key = fragmentKey(p)
    const e = this.entries.get(key)
    if (e === undefined || tsUs - e.tsUs > this.timeoutUs) {
      if (e !== undefined) this.entries.delete(key)
      this.anomalies.inc(A.fragment_without_first)
      return false
    }
    p.protocol = e.protocol
    p.srcPort = e.srcPort
    p.dstPort = e.dstPort
    p.icmpType = e.icmpType
    p.icmpCode = e.icmpCode
    return true
  }

  /** Drop expired entries from the old end (insertion order is close to packet-time order). */
  private expire(nowUs: number): void {
    for (const [key, e] of this.entries) {
      if (nowUs - e.tsUs <= this.timeoutUs) break
      this.entries.delete(key)
    }
  }
}

/**
 * The datagram a fragment belongs to. IPv4: source, destination, protocol and identification (RFC 791).
 * IPv6: source, destination and identification (RFC 8200 section 4.5): not the protocol, which a later
 * fragment does not carry (its Fragment header names the first header of the fragmentable part).
 */
export function fragmentKey(p: PacketInfo): string {
  const s = p.src
  const d = p.dst
  if (p.ipVersion === 4) return `4 ${s[0]} ${d[0]} ${p.protocol} ${p.ipId}`
  return `6 ${s[0]} ${s[1]} ${s[2]} ${s[3]} ${d[0]} ${d[1]} ${d[2]} ${d[3]} ${p.ipId}`
}
