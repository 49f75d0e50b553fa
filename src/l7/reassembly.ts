/**
 * @module l7/reassembly
 * TCP stream reassembly for one direction of one flow (RFC 9293 §3.4 sequence numbers, modulo 2^32), in the
 * spirit of Suricata's stream-tcp-reassemble and Zeek's TCP_Reassembler, reduced to what L7 parsers need:
 *
 * - In-order data goes straight to the sink without a copy (the common case); out-of-order segments are
 *   copied and held, sorted by stream offset, until the hole before them fills.
 * - Retransmissions and overlaps: the first data seen for a byte wins (Suricata's default policy for most
 *   OSes is "first"), later copies are dropped; an overlap whose bytes differ is counted as a conflict,
 *   a possible evasion.
 * - Mid-stream starts: the first segment seen fixes the stream start (a SYN fixes it at ISN + 1).
 * - Memory: held bytes are charged to a per-flow budget and to a total budget shared by all flows; a
 *   segment that does not fit, or one beyond `maxSegments`, forces the oldest hole to be declared a gap
 *   (the sink is told its size), which releases memory. `flush()` at the end of a flow does the same for
 *   whatever is still held, so parsers see data after a capture loss.
 * - `clear()` stops the stream for good (the parser needs no more bytes): later segments cost a flag test.
 */

export interface StreamSink {
  /** In-order bytes. The array is only valid during the call (it may point into a packet buffer). */
  data(bytes: Uint8Array): void
  /** `size` bytes are missing before the next data. */
  gap(size: number): void
}

/** A byte budget; a flow's budget has the total budget as parent, so a reservation charges both. */
export class Budget {
  used = 0
  constructor(
    public max: number,
    readonly parent?: Budget,
  ) {}
  reserve(n: number): boolean {
    const p = this.parent
    if (this.used + n > this.max) return false
    if (p !== undefined && p.used + n > p.max) return false
    this.used += n
    if (p !== undefined) p.used += n
    return true
  }
  release(n: number): void {
    this.used -= n
    if (this.parent !== undefined) this.parent.used -= n
  }
}

export interface ReassemblyStats {
  /** Segments (or parts) that repeated bytes already seen with the same content. */
  retransmissions: number
  /** Overlaps whose bytes differ from the first copy (first copy kept). */
  overlapConflicts: number
  gaps: number
  gapBytes: number
  /** Segments too far ahead of the stream to be plausible (ignored). */
  outOfWindow: number
}

export function newReassemblyStats(): ReassemblyStats {
  return { retransmissions: 0, overlapConflicts: 0, gaps: 0, gapBytes: 0, outOfWindow: 0 }
}

interface Segment {
  start: number // stream offset
  data: Uint8Array // owned copy
}

/** Segments further ahead than this (bytes) are treated as garbage, not as a hole to wait for. */
const MAX_AHEAD = 1 << 26

export class StreamReassembler {
  started = false
  stopped = false
  /** Next expected sequence number (u32) and its stream offset (bytes delivered or skipped so far). */
  private next = 0
  private offset = 0
  private segs: Segment[] = []

  constructor(
    private readonly budget: Budget,
    private readonly stats: ReassemblyStats,
    private readonly sink: StreamSink,
    private readonly maxSegments = 64,
  ) {}

  /** Fix the stream start at sequence number `seq` (ISN + 1 after a SYN). */
  start(seq: number): void {
    if (this.started) return
    this.started = true
    this.next = seq >>> 0
  }

  /** Bytes delivered or skipped so far. */
  get position(): number {
    return this.offset
  }

  /** Bytes held out of order. */
  get held(): number {
    let n = 0
    for (const s of this.segs) n += s.data.byteLength
    return n
  }

  /** One segment's payload, starting at sequence number `seq`. */
  push(seq: number, data: Uint8Array): void {
    if (this.stopped || data.byteLength === 0) return
    if (!this.started) this.start(seq)
    let rel = (seq - this.next) | 0
    let d = data
    if (rel + d.byteLength <= 0) {
      this.stats.retransmissions++
      return
    }
    if (rel < 0) {
      // Partial retransmission: the part already delivered is dropped (first data wins).
      d = d.subarray(-rel)
      rel = 0
      this.stats.retransmissions++
    }
    if (rel > MAX_AHEAD) {
      this.stats.outOfWindow++
      return
    }
    if (rel === 0 && this.segs.length === 0) {
      this.deliver(d)
      return
    }
    this.insert(this.offset + rel, d)
  }

  /**
   * `len` bytes at `seq` that the sink would only drop (a body its parser skips): when they are exactly the
   * next ones and nothing is held, the stream steps over them (as push then delivering them would) without
   * a view or a sink call, and returns true; otherwise false, and the caller pushes them.
   */
  advance(seq: number, len: number): boolean {
    if (!this.started || this.stopped || seq >>> 0 !== this.next || this.segs.length !== 0) return false
    this.next = (this.next + len) >>> 0
    this.offset += len
    return true
  }

  /** End of the flow: deliver everything still held, declaring the holes as gaps. */
  flush(): void {
    while (!this.stopped && this.segs.length > 0) this.skipTo(this.segs[0]!.start)
  }

  /** `len` bytes at `seq` are known to be missing (cut by the capture's snap length): skip them if next. */
  lost(seq: number, len: number): void {
    if (this.stopped || len <= 0 || !this.started || seq >>> 0 !== this.next) return
    this.skipTo(this.offset + len)
  }

  /** Make the reassembler new again (pooled per-flow state). */
  reset(): void {
    this.clear()
    this.stopped = false
    this.started = false
    this.next = 0
    this.offset = 0
  }

  /** Stop for good and release what is held. */
  clear(): void {
    this.stopped = true
    if (this.segs.length === 0) return // (most streams: no new array per pooled reset)
    for (const s of this.segs) this.budget.release(s.data.byteLength)
    this.segs = []
  }

  private deliver(d: Uint8Array): void {
    this.next = (this.next + d.byteLength) >>> 0
    this.offset += d.byteLength
    this.sink.data(d)
  }

  /** Declare the bytes up to stream offset `to` lost, then deliver what follows contiguously. */
  private skipTo(to: number): void {
    const size = to - this.offset
    if (size > 0) {
      this.stats.gaps++
      this.stats.gapBytes += size
      this.next = (this.next + size) >>> 0
      this.offset = to
      this.sink.gap(size)
    }
    this.drain()
  }

  /** Deliver held segments that have become contiguous. */
  private drain(): void {
    const segs = this.segs
    while (!this.stopped && segs.length > 0 && segs[0]!.start <= this.offset) {
      const g = segs.shift()!
      this.budget.release(g.data.byteLength)
      const end = g.start + g.data.byteLength
      if (end > this.offset) this.deliver(g.data.subarray(this.offset - g.start))
    }
  }

  /** Add [start, start + d.length) where no earlier data covers it (first wins), counting conflicts. */
  private insert(start: number, d: Uint8Array): void {
    const end = start + d.byteLength
    // The parts of the new segment no held segment covers, in order.
    const pieces: number[] = []
    let cur = start
    for (const g of this.segs) {
      const gEnd = g.start + g.data.byteLength
      if (gEnd <= cur) continue
      if (g.start >= end) break
      if (g.start > cur) pieces.push(cur, g.start)
      const os = Math.max(cur, g.start)
      const oe = Math.min(end, gEnd)
      if (same(d, os - start, g.data, os - g.start, oe - os)) this.stats.retransmissions++
      else this.stats.overlapConflicts++
      cur = oe
    }
    if (cur < end) pieces.push(cur, end)
    for (let i = 0; i < pieces.length && !this.stopped; i += 2) {
      let ps = pieces[i]!
      const pe = pieces[i + 1]!
      if (pe <= this.offset) continue
      if (ps < this.offset) ps = this.offset
      while (!this.stopped && ps > this.offset) {
        if (this.segs.length < this.maxSegments && this.budget.reserve(pe - ps)) {
          this.store(ps, d.slice(ps - start, pe - start))
          break
        }
        // Over the bounds: give up waiting for the oldest hole.
        this.skipTo(this.segs.length > 0 ? Math.min(this.segs[0]!.start, ps) : ps)
      }
      if (!this.stopped && ps === this.offset) {
        this.deliver(d.subarray(ps - start, pe - start))
        this.drain()
      }
    }
  }

  private store(start: number, data: Uint8Array): void {
    const segs = this.segs
    let i = segs.length
    while (i > 0 && segs[i - 1]!.start > start) i--
    segs.splice(i, 0, { start, data })
  }
}

function same(a: Uint8Array, ao: number, b: Uint8Array, bo: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[ao + i] !== b[bo + i]) return false
  return true
}
