/**
 * IP datagram reassembly for the L7 path: rebuilds the payload of fragmented IPv4/IPv6 datagrams so the L7
 * engine sees a whole DNS answer, TLS record or HTTP request instead of the first fragment's bytes only
 * (what YAF, nProbe, Zeek and Suricata do). Flow accounting does not use it: the flow cache still counts each
 * fragment as the decoder gave it (later fragments get their ports from fragments.ts).
 *
 * Specs: RFC 791 and RFC 815 (IPv4 fragments, hole filling), RFC 8200 §4.5 (IPv6 Fragment header, the
 * fragmentable part starts after it), RFC 5722 (overlapping IPv6 fragments: the datagram is dropped), RFC 6946
 * (atomic fragments are whole packets: the decoder leaves isFragment false, so they never come here), RFC 1858
 * and RFC 7112 (tiny fragments: a TCP fragment at offset 8, a first fragment without the whole transport
 * header, are dropped).
 *
 * Identification (fragments.ts's fragmentKey): IPv4 source, destination, protocol and 16-bit id (RFC 791);
 * IPv6 source, destination and 32-bit id (RFC 8200: the protocol after the Fragment header may differ between
 * fragments when extension headers follow it). Only fragments reach this class, so its key string and
 * per-fragment work cost nothing to other packets; the caller (the L7 hub) calls it only when an L7 field
 * group is on.
 *
 * Policies:
 * - IPv4 overlaps: the first data seen for a byte wins (as in src/l7/reassembly.ts); an overlap whose bytes
 *   differ counts `ip_fragment_overlap` once per fragment. Exact repeats are not counted.
 * - IPv6 overlaps: the datagram is dropped (`ipv6_fragment_overlap`). A fragment whose bytes all repeat data
 *   already held, identical, is taken as a duplicate and ignored (RFC 8200 §4.5 allows this).
 * - A dropped datagram stays as a tombstone (no buffer) until its timeout, so its remaining fragments are
 *   ignored instead of starting a new datagram that would time out and be counted a second time.
 * - Bounds: a datagram is at most 65 535 bytes (IPv4 total length, IPv6 header + payload length) and at most
 *   `maxFragments` fragments; at most `maxDatagrams` datagrams and `maxBytes` of buffers are held. The oldest
 *   datagram is evicted first (Map order is creation order, which is also timeout order). An incomplete
 *   datagram is dropped `timeoutUs` of packet time after its first fragment (Linux ipfrag_time, 30 s), or at
 *   the end of the input (finish()): either way it counts `ip_reassembly_timeout`.
 * - Buffers come from a pool in power-of-two sizes (2 KiB to 64 KiB) and grow as fragments extend the datagram.
 *
 * Every drop counts one named anomaly (anomalies.ts) and the datagram gives the L7 path nothing, but for a
 * first fragment cut short by the capture (snap length): it goes on alone, as any cut packet does.
 */
import { A, type Anomalies } from './anomalies.js'
import { PacketInfo } from './packet.js'
import {
  IPPROTO_ICMP as ICMP,
  IPPROTO_ICMPV6 as ICMPV6,
  IPPROTO_TCP as TCP,
  IPPROTO_UDP as UDP,
  IPPROTO_UDPLITE as UDP_LITE,
} from './protocol-numbers.js'
import { DEFAULT_FRAGMENT_TIMEOUT_US, fragmentKey } from './fragments.js'

export interface IpReassemblyOptions {
  /** Datagrams being reassembled (or dropped, until their timeout) at once. */
  maxDatagrams: number
  /** Buffer bytes held by all datagrams. */
  maxBytes: number
  /** Fragments one datagram may take. */
  maxFragments: number
  /** How long an incomplete datagram waits for its missing fragments, packet-time µs. */
  timeoutUs: number
}

/**
 * What reassembly did with the datagrams it took, for the probe's summary and status (the drops also count
 * their named anomalies; `reassembled` has none).
 */
export interface IpReassemblyStats {
  /** Datagrams rebuilt and handed to the L7 path. */
  reassembled: number
  /** Datagrams still incomplete at the timeout or at the end of the input (`ip_reassembly_timeout`). */
  timedOut: number
  /** Datagrams dropped for the limits: datagram count, buffer bytes, fragments per datagram. */
  evicted: number
  /** Datagrams dropped for their fragments: tiny, bad length, IPv6 overlap, cut by the capture, flow mismatch. */
  dropped: number
}

export function emptyIpReassemblyStats(): IpReassemblyStats {
  return { reassembled: 0, timedOut: 0, evicted: 0, dropped: 0 }
}

/** Adds `b`'s counts into `a` (several pipelines, generations or workers). */
export function addIpReassemblyStats(a: IpReassemblyStats, b: IpReassemblyStats): IpReassemblyStats {
  a.reassembled += b.reassembled
  a.timedOut += b.timedOut
  a.evicted += b.evicted
  a.dropped += b.dropped
  return a
}

export const DEFAULT_IP_REASSEMBLY_OPTIONS: IpReassemblyOptions = {
  maxDatagrams: 4096,
  // Linux's ipfrag_high_thresh is 4 MiB per network namespace; a probe sees many hosts' traffic.
  maxBytes: 16 * 1024 * 1024,
  // A 65 535-byte datagram is 54 fragments at the IPv6 minimum MTU (1280) and 119 at IPv4's 576.
  maxFragments: 128,
  timeoutUs: DEFAULT_FRAGMENT_TIMEOUT_US,
}

/** Largest IP datagram (IPv4 total length; IPv6 40-byte header + 16-bit payload length, no jumbograms). */
const MAX_DATAGRAM = 65535
const IPV6_HEADER = 40
const IPV6_FRAGMENT_HEADER = 8
const MIN_BUFFER = 2048
/** Free buffers kept per size class. */
const POOL_PER_CLASS = 4

/** One datagram being reassembled. */
class Datagram {
  key = ''
  createdUs = 0
  /** Dropped: a tombstone that ignores the datagram's remaining fragments until its timeout. */
  dead = false
  buf: Uint8Array | undefined = undefined
  /** Covered byte ranges of the fragmentable part, sorted and merged: [start0, end0, start1, end1, ...]. */
  readonly spans: number[] = []
  /** End of the fragmentable part once the last fragment (MF clear) came; -1 before. */
  end = -1
  fragments = 0
  /** From the first fragment (offset 0): upper-layer protocol and where its header starts in the data. */
  hasFirst = false
  protocol = 0
  l4Start = 0

  reset(key: string, tsUs: number): void {
    this.key = key
    this.createdUs = tsUs
    this.dead = false
    this.buf = undefined
    this.spans.length = 0
    this.end = -1
    this.fragments = 0
    this.hasFirst = false
    this.protocol = 0
    this.l4Start = 0
  }
}

export class IpReassembly {
  private readonly datagrams = new Map<string, Datagram>()
  private readonly freeDatagrams: Datagram[] = []
  /** Free buffers per size class (index: log2(size / MIN_BUFFER)). */
  private readonly pool: Uint8Array[][] = [[], [], [], [], [], []]
  /** Buffer bytes held by datagrams (pooled free buffers not included). */
  private held = 0
  /** The buffer of the datagram returned last: the caller reads it until its next call. */
  private lent: Uint8Array | undefined = undefined
  /** The rebuilt packet handed back (one object, reused). */
  private readonly whole = new PacketInfo()
  /** Datagrams rebuilt so far. */
  reassembled = 0
  /** Datagrams given up so far: timed out, evicted for the limits, dropped for their fragments. */
  timedOut = 0
  evicted = 0
  dropped = 0

  constructor(
    private readonly anomalies: Anomalies,
    readonly opts: IpReassemblyOptions = DEFAULT_IP_REASSEMBLY_OPTIONS,
  ) {}

  /** Datagrams held (incomplete or tombstones). */
  get size(): number {
    return this.datagrams.size
  }

  /** Buffer bytes held by incomplete datagrams. */
  get heldBytes(): number {
    return this.held
  }

  /** The counts so far (a new object). */
  stats(): IpReassemblyStats {
    const { reassembled, timedOut, evicted, dropped } = this
    return { reassembled, timedOut, evicted, dropped }
  }

  /**
   * Take fragment `p` (isFragment true) seen at `tsUs`. Returns the whole datagram as a packet when `p`
   * completes it: `p`'s fields, with the payload in a reassembly buffer and the transport fields read from
   * the rebuilt transport header, not a fragment any more. The returned packet and its buffer are valid until
   * the next call. Returns undefined otherwise, except for a first fragment that the capture cut short: its
   * datagram cannot be rebuilt, and `p` itself is returned (the L7 path reads what was captured, as before).
   */
  add(p: PacketInfo, tsUs: number): PacketInfo | undefined {
    if (this.lent !== undefined) {
      this.free(this.lent)
      this.lent = undefined
    }
    this.expire(tsUs)
    const v6 = p.ipVersion === 6
    const key = fragmentKey(p)
    let d = this.datagrams.get(key)
    if (d === undefined) d = this.create(key, tsUs)
    const start = p.fragOffset
    const capEnd = p.payloadOffset + p.payloadCaptured
    const annEnd =
      p.payloadOffset + (p.payloadLength > p.payloadCaptured ? p.payloadLength : p.payloadCaptured)
    if (capEnd < annEnd) {
      // Not wholly captured (snap length, a cut frame): the datagram cannot be rebuilt. A first fragment goes
      // on as it is, as a packet cut the same way would: the L7 path gets what the capture has.
      if (!d.dead) this.kill(d, A.ip_reassembly_truncated)
      return start === 0 ? p : undefined
    }
    if (d.dead) return undefined

    const dataOff = p.fragDataOffset
    // A first fragment whose header chain the decoder could not follow to its end (RFC 7112: it must all be
    // in the first fragment) left no transport header to start from.
    if (start === 0 && (p.l4Offset < dataOff || p.payloadOffset < dataOff))
      return this.kill(d, A.ip_fragment_tiny)
    const len = annEnd - dataOff
    const end = start + len
    const more = p.moreFragments
    // RFC 1858: a TCP fragment at offset 8 can rewrite the TCP flags of the first one.
    if (!v6 && p.protocol === TCP && start === 8) return this.kill(d, A.ip_fragment_tiny)
    // RFC 791/8200: every fragment but the last carries a multiple of 8 bytes (and some bytes).
    if (more && (len === 0 || (len & 7) !== 0)) return this.kill(d, A.ip_fragment_bad_length)
    // IPv4: header + data <= 65 535 ("ping of death"). IPv6: payload length (unfragmentable headers + data).
    const hdr = dataOff - p.l3Offset
    const limit = v6 ? MAX_DATAGRAM - (hdr - IPV6_HEADER - IPV6_FRAGMENT_HEADER) : MAX_DATAGRAM - hdr
    if (end > limit) return this.kill(d, A.ip_fragment_bad_length)
    if (!more) {
      const spans = d.spans
      const covered = spans.length === 0 ? 0 : spans[spans.length - 1]!
      if ((d.end >= 0 && d.end !== end) || covered > end) return this.kill(d, A.ip_fragment_bad_length)
      d.end = end
    } else if (d.end >= 0 && end > d.end) {
      return this.kill(d, A.ip_fragment_bad_length)
    }
    if (start === 0) {
      const proto = p.protocol
      // The decoder leaves the payload at the transport header when it could not read all of it.
      if ((proto === TCP || proto === UDP || proto === UDP_LITE) && p.payloadOffset === p.l4Offset)
        return this.kill(d, A.ip_fragment_tiny)
      d.hasFirst = true
      d.protocol = proto
      d.l4Start = p.l4Offset - dataOff
    }
    if (++d.fragments > this.opts.maxFragments) return this.kill(d, A.ip_reassembly_evicted)
    if (len > 0 && !this.place(d, p.buf, dataOff, start, end, v6)) return undefined
    if (!d.hasFirst || d.end < 0) return undefined
    const spans = d.spans
    if (spans.length !== 2 || spans[0] !== 0 || spans[1] !== d.end) return undefined
    return this.complete(d, p)
  }

  /** End of the input: every datagram still incomplete counts `ip_reassembly_timeout` (it never completed). */
  finish(): void {
    for (const d of this.datagrams.values()) {
      if (!d.dead) this.timeout()
      this.retire(d)
    }
  }

  private timeout(): void {
    this.anomalies.inc(A.ip_reassembly_timeout)
    this.timedOut++
  }

  /**
   * Copy data[off, off + (end - start)) to [start, end) of the datagram, where no data is held yet. Returns
   * false when the datagram was dropped (IPv6 overlap, memory).
   */
  private place(
    d: Datagram,
    data: Uint8Array,
    off: number,
    start: number,
    end: number,
    v6: boolean,
  ): boolean {
    const spans = d.spans
    // Overlaps with held data: compare (IPv4 counts a conflict, IPv6 drops unless all of it is a duplicate).
    let overlap = 0
    let conflict = false
    const buf = d.buf
    if (buf !== undefined)
      for (let i = 0; i < spans.length; i += 2) {
        const s = spans[i]!
        const e = spans[i + 1]!
        if (e <= start) continue
        if (s >= end) break
        const os = s > start ? s : start
        const oe = e < end ? e : end
        overlap += oe - os
        if (!conflict)
          for (let j = os; j < oe; j++)
            if (buf[j] !== data[off + j - start]) {
              conflict = true
              break
            }
      }
    if (v6 && overlap > 0) {
      if (overlap === end - start && !conflict) return true // An exact duplicate of held bytes
      this.kill(d, A.ipv6_fragment_overlap)
      return false
    }
    if (conflict) this.anomalies.inc(A.ip_fragment_overlap)
    if (overlap === end - start) return true
    if (!this.ensure(d, end)) return false
    const b = d.buf!
    // Fill the holes of [start, end) and merge the spans (first data wins).
    let pos = start
    let i = 0
    while (i < spans.length && spans[i + 1]! < start) i += 2
    // Spans i.. may touch or overlap [start, end): merge them into one.
    let mergedStart = start
    let mergedEnd = end
    let j = i
    while (j < spans.length && spans[j]! <= end) {
      const s = spans[j]!
      const e = spans[j + 1]!
      if (s > pos) b.set(data.subarray(off + pos - start, off + s - start), pos)
      if (e > pos) pos = e
      if (s < mergedStart) mergedStart = s
      if (e > mergedEnd) mergedEnd = e
      j += 2
    }
    if (pos < end) b.set(data.subarray(off + pos - start, off + end - start), pos)
    spans.splice(i, j - i, mergedStart, mergedEnd)
    return true
  }

  /** Make the datagram's buffer hold `end` bytes, within the byte cap; false when it was dropped. */
  private ensure(d: Datagram, end: number): boolean {
    const old = d.buf
    const have = old === undefined ? 0 : old.length
    if (end <= have) return true
    let size = MIN_BUFFER
    while (size < end) size *= 2
    const grow = size - have
    // Oldest first; this datagram itself last (it is the one that needs the room).
    while (this.held + grow > this.opts.maxBytes) {
      const victim = this.oldestHolding(d)
      if (victim === undefined) {
        this.kill(d, A.ip_reassembly_evicted)
        return false
      }
      this.kill(victim, A.ip_reassembly_evicted)
    }
    const b = this.take(size)
    if (old !== undefined) {
      b.set(old)
      this.free(old)
      this.held -= have
    }
    d.buf = b
    this.held += size
    return true
  }

  /** The oldest live datagram with a buffer other than `not`. */
  private oldestHolding(not: Datagram): Datagram | undefined {
    for (const d of this.datagrams.values()) if (d !== not && d.buf !== undefined) return d
    return undefined
  }

  /** The rebuilt datagram as a packet (see add); the datagram leaves. */
  private complete(d: Datagram, p: PacketInfo): PacketInfo | undefined {
    const buf = d.buf!
    const w = this.whole
    w.copyFrom(p)
    w.buf = buf
    w.isFragment = w.moreFragments = false
    w.fragOffset = 0
    const proto = d.protocol
    const l4 = d.l4Start
    const end = d.end
    w.protocol = proto
    w.l4Offset = l4
    w.srcPort = w.dstPort = w.tcpFlags = w.tcpSeq = w.tcpAck = w.tcpWindow = w.udpLength = 0
    w.icmpType = w.icmpCode = 0
    let payload = l4
    let payloadEnd = end
    const avail = end - l4
    if (proto === TCP || proto === UDP || proto === UDP_LITE) {
      // add() made sure the first fragment held the whole transport header.
      w.srcPort = (buf[l4]! << 8) | buf[l4 + 1]!
      w.dstPort = (buf[l4 + 2]! << 8) | buf[l4 + 3]!
      if (proto === TCP) {
        w.tcpSeq = ((buf[l4 + 4]! << 24) | (buf[l4 + 5]! << 16) | (buf[l4 + 6]! << 8) | buf[l4 + 7]!) >>> 0
        w.tcpAck = ((buf[l4 + 8]! << 24) | (buf[l4 + 9]! << 16) | (buf[l4 + 10]! << 8) | buf[l4 + 11]!) >>> 0
        w.tcpFlags = ((buf[l4 + 12]! << 8) | buf[l4 + 13]!) & 0x1ff
        w.tcpWindow = (buf[l4 + 14]! << 8) | buf[l4 + 15]!
        payload = l4 + ((buf[l4 + 12]! >> 4) << 2)
      } else {
        const ulen = (buf[l4 + 4]! << 8) | buf[l4 + 5]!
        w.udpLength = ulen
        payload = l4 + 8
        // The UDP length bounds the data (the IP datagram may carry padding); a bad one leaves the IP end.
        if (proto === UDP && ulen >= 8 && ulen <= avail) payloadEnd = l4 + ulen
      }
    } else if ((proto === ICMP || proto === ICMPV6) && avail >= 2) {
      w.icmpType = buf[l4]!
      w.icmpCode = buf[l4 + 1]!
    }
    w.payloadOffset = payload
    w.payloadCaptured = w.payloadLength = payloadEnd - payload
    this.datagrams.delete(d.key)
    d.buf = undefined
    this.held -= buf.length
    this.lent = buf
    this.freeDatagrams.push(d)
    // The fragment was counted in the flow of its own ports: hand the datagram to that flow only.
    if (w.srcPort !== p.srcPort || w.dstPort !== p.dstPort) {
      this.anomalies.inc(A.ip_reassembly_flow_mismatch)
      this.dropped++
      return undefined
    }
    this.reassembled++
    return w
  }

  /** A new datagram entry, evicting the oldest when the count cap is reached. */
  private create(key: string, tsUs: number): Datagram {
    if (this.datagrams.size >= this.opts.maxDatagrams) {
      const oldest = this.datagrams.values().next()
      if (oldest.done !== true) {
        const o = oldest.value
        if (!o.dead) {
          this.anomalies.inc(A.ip_reassembly_evicted)
          this.evicted++
        }
        this.retire(o)
      }
    }
    const d = this.freeDatagrams.pop() ?? new Datagram()
    d.reset(key, tsUs)
    this.datagrams.set(key, d)
    return d
  }

  /** Drop a datagram: count `anomaly`, free its buffer, keep it as a tombstone until its timeout. */
  private kill(d: Datagram, anomaly: number): undefined {
    this.anomalies.inc(anomaly)
    if (anomaly === A.ip_reassembly_evicted) this.evicted++
    else this.dropped++
    this.release(d)
    d.dead = true
    return undefined
  }

  private release(d: Datagram): void {
    const b = d.buf
    if (b === undefined) return
    this.held -= b.length
    this.free(b)
    d.buf = undefined
    d.spans.length = 0
  }

  /** Drop datagrams older than the timeout (oldest first); incomplete live ones count a timeout. */
  private expire(nowUs: number): void {
    const timeout = this.opts.timeoutUs
    for (const d of this.datagrams.values()) {
      if (nowUs - d.createdUs <= timeout) break
      if (!d.dead) this.timeout()
      this.retire(d)
    }
  }

  /** The datagram leaves (its buffer back to the pool) and its entry is kept for reuse. */
  private retire(d: Datagram): void {
    this.release(d)
    this.datagrams.delete(d.key)
    this.freeDatagrams.push(d)
  }

  private take(size: number): Uint8Array {
    return this.pool[sizeClass(size)]!.pop() ?? new Uint8Array(size)
  }

  private free(b: Uint8Array): void {
    const list = this.pool[sizeClass(b.length)]!
    if (list.length < POOL_PER_CLASS) list.push(b)
  }
}

function sizeClass(size: number): number {
  return 31 - Math.clz32(size / MIN_BUFFER)
}
