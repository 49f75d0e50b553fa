/**
 * The troubleshooting capture of the export traffic (issue 5): the seed tells operators to tcpdump the
 * export traffic when data does not arrive at the collector; the probe records it itself.
 *
 * Every export message sent while a capture runs (transport-tap.ts hands it over) is written as one packet
 * of a classic pcap file (draft-ietf-opsawg-pcap, microsecond magic, little-endian, LINKTYPE_RAW 101), with
 * synthesized IPv4 (RFC 791) or IPv6 (RFC 8200) and UDP (RFC 768) or TCP (RFC 9293) headers carrying the real
 * local and remote address and port of the transport socket, and correct checksums, so Wireshark/tshark
 * decode it as the collector would see it (IPFIX decode-as on a non-default port: `-d udp.port==P,cflow`).
 *
 * TCP: each message becomes data segment(s) with PSH|ACK and sequence numbers that grow by the bytes sent on
 * that connection, starting at 1 for the first byte captured (Wireshark shows relative numbers, and its
 * cflow dissector reassembles messages across segments). No handshake is invented: a capture that starts
 * mid-connection shows the stream from there, as tcpdump would. Messages a TCP transport queues while
 * disconnected are not recorded (they are not on the wire at send time).
 *
 * Bounded: maxBytes (default 10 MiB, at most 100 MiB) caps the whole pcap file, maxSeconds (default 60, at
 * most 3600) its duration; the capture stops itself at either limit with stopReason 'size-limit' or
 * 'time-limit'. The pcap of the last capture is kept until the next start.
 */
import { isIPv4, isIPv6 } from 'node:net'
import type { DebugCaptureState } from './control.js'
import type { MessageRecorder, SocketEndpoints } from '../ipfix/transport-tap.js'

export const DEBUG_CAPTURE_DEFAULT_BYTES = 10 * 1024 * 1024
export const DEBUG_CAPTURE_MAX_BYTES = 100 * 1024 * 1024
/** Smallest maxBytes accepted: the file header and one small packet. */
export const DEBUG_CAPTURE_MIN_BYTES = 1024
export const DEBUG_CAPTURE_DEFAULT_SECONDS = 60
export const DEBUG_CAPTURE_MAX_SECONDS = 3600

export const LINKTYPE_RAW = 101
const PCAP_HEADER_LEN = 24
const RECORD_HEADER_LEN = 16
const SNAPLEN = 262144
/** Largest TCP payload per synthesized segment (keeps the IPv4 total length and IPv6 payload length < 2^16). */
const MAX_TCP_SEGMENT = 65000
/** The pcap is written into blocks of this size (or maxBytes when smaller). */
const BLOCK_SIZE = 1024 * 1024

export interface DebugCaptureLimits {
  maxBytes: number
  maxSeconds: number
}

/**
 * Checks requested limits and fills in the defaults. Throws a RangeError whose message names the option
 * and the allowed range (the API turns it into a 400).
 */
export function debugCaptureLimits(opts: { maxBytes?: unknown; maxSeconds?: unknown }): DebugCaptureLimits {
  const maxBytes = opts.maxBytes ?? DEBUG_CAPTURE_DEFAULT_BYTES
  const maxSeconds = opts.maxSeconds ?? DEBUG_CAPTURE_DEFAULT_SECONDS
  if (
    typeof maxBytes !== 'number' ||
    !Number.isSafeInteger(maxBytes) ||
    maxBytes < DEBUG_CAPTURE_MIN_BYTES ||
    maxBytes > DEBUG_CAPTURE_MAX_BYTES
  )
    throw new RangeError(
      `maxBytes must be an integer from ${DEBUG_CAPTURE_MIN_BYTES} to ${DEBUG_CAPTURE_MAX_BYTES}, got ${JSON.stringify(maxBytes)}`,
    )
  if (
    typeof maxSeconds !== 'number' ||
    !Number.isFinite(maxSeconds) ||
    maxSeconds <= 0 ||
    maxSeconds > DEBUG_CAPTURE_MAX_SECONDS
  )
    throw new RangeError(
      `maxSeconds must be a number above 0 and at most ${DEBUG_CAPTURE_MAX_SECONDS}, got ${JSON.stringify(maxSeconds)}`,
    )
  return { maxBytes, maxSeconds }
}

export interface DebugCaptureRecorderOptions {
  /** Wall clock in milliseconds since the epoch (tests inject one). Default Date.now. */
  now?: () => number
  /**
   * Runs `cb` after `ms` so a capture with no traffic still stops at its time limit; returns a cancel
   * function. Default: an unref'd setTimeout. Tests with an injected clock pass a no-op.
   */
  schedule?: (ms: number, cb: () => void) => () => void
}

const defaultSchedule = (ms: number, cb: () => void): (() => void) => {
  const t = setTimeout(cb, ms)
  t.unref()
  return () => clearTimeout(t)
}

/** Records export messages into an in-memory pcap; implements the tap's MessageRecorder. */
export class DebugCaptureRecorder implements MessageRecorder {
  /** True while a capture runs (read by every tap on every send). */
  active = false
  private readonly now: () => number
  private readonly schedule: (ms: number, cb: () => void) => () => void
  /** Filled blocks of the pcap file, then the current block up to `used`. */
  private chunks: Uint8Array[] = []
  private block = new Uint8Array(0)
  private used = 0
  private bytes = 0
  private packets = 0
  private startedMs = 0
  private stoppedMs = 0
  private limits: DebugCaptureLimits | undefined
  private stopReason: string | undefined
  private cancelTimer: (() => void) | undefined
  private ipId = 0
  /** Next sequence number per TCP 4-tuple. */
  private readonly tcpSeq = new Map<string, number>()
  /** Address bytes per (local, remote) address pair: parsing text per message would dominate the cost. */
  private readonly addrCache = new Map<string, { src: Uint8Array; dst: Uint8Array }>()

  constructor(opts: DebugCaptureRecorderOptions = {}) {
    this.now = opts.now ?? Date.now
    this.schedule = opts.schedule ?? defaultSchedule
  }

  /** Starts a new capture (discarding the previous one); throws a RangeError for bad limits. */
  start(opts: { maxBytes?: number; maxSeconds?: number } = {}): DebugCaptureState {
    const limits = debugCaptureLimits(opts)
    this.cancelTimer?.()
    this.limits = limits
    this.chunks = [pcapFileHeader()]
    this.block = new Uint8Array(0)
    this.used = 0
    this.bytes = PCAP_HEADER_LEN
    this.packets = 0
    this.tcpSeq.clear()
    this.addrCache.clear()
    this.startedMs = this.now()
    this.stoppedMs = 0
    this.stopReason = undefined
    this.active = true
    this.cancelTimer = this.schedule(limits.maxSeconds * 1000, () => this.checkTime())
    return this.state()
  }

  /** Stops the capture (no-op when none runs); the pcap stays available. */
  stop(reason = 'stopped'): DebugCaptureState {
    if (this.active) {
      this.active = false
      this.stoppedMs = this.now()
      this.stopReason = reason
      this.cancelTimer?.()
      this.cancelTimer = undefined
    }
    return this.state()
  }

  state(): DebugCaptureState {
    this.checkTime()
    const s: DebugCaptureState = { running: this.active, bytes: this.bytes, packets: this.packets }
    if (this.limits !== undefined) {
      s.startedAt = new Date(this.startedMs).toISOString()
      s.maxBytes = this.limits.maxBytes
      s.maxSeconds = this.limits.maxSeconds
    }
    if (!this.active && this.stopReason !== undefined) {
      s.stoppedAt = new Date(this.stoppedMs).toISOString()
      s.stopReason = this.stopReason
    }
    return s
  }

  /** The pcap file of the running or last capture (just the file header when there was none). */
  pcap(): Uint8Array {
    if (this.chunks.length === 0) return pcapFileHeader()
    return Buffer.concat([...this.chunks, this.block.subarray(0, this.used)])
  }

  record(ep: SocketEndpoints, message: readonly Uint8Array[]): void {
    if (!this.active || !this.checkTime()) return
    const limits = this.limits
    if (limits === undefined) return
    let payloadLen = 0
    for (const c of message) payloadLen += c.length
    const { src, dst } = this.addresses(ep)
    const ipLen = src.length === 4 ? 20 : 40
    const tcp = ep.protocol === 'tcp'
    const segments = tcp ? Math.max(1, Math.ceil(payloadLen / MAX_TCP_SEGMENT)) : 1
    const need = segments * (RECORD_HEADER_LEN + ipLen + (tcp ? 20 : 8)) + payloadLen
    if (this.bytes + need > limits.maxBytes) {
      this.stop('size-limit')
      return
    }
    const tsMs = this.now()
    if (!tcp) {
      const pkt = this.reserveRecord(tsMs, ipLen + 8 + payloadLen, limits.maxBytes)
      this.udpPacket(pkt, ep, src, dst, message, payloadLen)
      return
    }
    const key = `${ep.local.address}|${ep.local.port}|${ep.remote.address}|${ep.remote.port}`
    let seq = this.tcpSeq.get(key) ?? 1
    for (let i = 0; i < segments; i++) {
      const from = i * MAX_TCP_SEGMENT
      const to = Math.min(payloadLen, from + MAX_TCP_SEGMENT)
      const pkt = this.reserveRecord(tsMs, ipLen + 20 + (to - from), limits.maxBytes)
      this.tcpSegment(pkt, ep, src, dst, seq, message, from, to)
      seq = (seq + (to - from)) % 0x1_0000_0000
    }
    this.tcpSeq.set(key, seq)
  }

  /**
   * Room for one record in the current block (blocks of up to 1 MiB, so a capture makes few allocations):
   * writes the record header and returns the packet's bytes, counted.
   */
  private reserveRecord(tsMs: number, len: number, maxBytes: number): Uint8Array {
    const n = RECORD_HEADER_LEN + len
    if (this.block.length - this.used < n) {
      if (this.used > 0) this.chunks.push(this.block.subarray(0, this.used))
      this.block = new Uint8Array(Math.max(n, Math.min(BLOCK_SIZE, maxBytes)))
      this.used = 0
    }
    const r = this.block.subarray(this.used, this.used + n)
    this.used += n
    this.bytes += n
    this.packets++
    const v = new DataView(r.buffer, r.byteOffset, RECORD_HEADER_LEN)
    const us = Math.max(0, Math.floor(tsMs * 1000))
    v.setUint32(0, Math.floor(us / 1e6) >>> 0, true)
    v.setUint32(4, us % 1e6, true)
    v.setUint32(8, len, true)
    v.setUint32(12, len, true)
    return r.subarray(RECORD_HEADER_LEN)
  }

  /** Stops at the time limit; returns whether the capture still runs. */
  private checkTime(): boolean {
    if (!this.active || this.limits === undefined) return this.active
    if (this.now() - this.startedMs >= this.limits.maxSeconds * 1000) {
      this.stoppedMs = this.startedMs + this.limits.maxSeconds * 1000
      this.active = false
      this.stopReason = 'time-limit'
      this.cancelTimer?.()
      this.cancelTimer = undefined
    }
    return this.active
  }

  private addresses(ep: SocketEndpoints): { src: Uint8Array; dst: Uint8Array } {
    const key = `${ep.local.address}|${ep.remote.address}`
    let a = this.addrCache.get(key)
    if (a === undefined) {
      if (this.addrCache.size >= 256) this.addrCache.clear()
      a = addressBytes(ep)
      this.addrCache.set(key, a)
    }
    return a
  }

  private udpPacket(
    pkt: Uint8Array,
    ep: SocketEndpoints,
    src: Uint8Array,
    dst: Uint8Array,
    message: readonly Uint8Array[],
    payloadLen: number,
  ): void {
    const ipLen = src.length === 4 ? 20 : 40
    const udpLen = 8 + payloadLen
    const v = new DataView(pkt.buffer, pkt.byteOffset, pkt.length)
    this.ipHeader(pkt, v, src, dst, 17, udpLen)
    v.setUint16(ipLen, ep.local.port)
    v.setUint16(ipLen + 2, ep.remote.port)
    v.setUint16(ipLen + 4, Math.min(udpLen, 0xffff))
    copyRange(message, 0, payloadLen, pkt, ipLen + 8)
    let sum = transportChecksum(src, dst, 17, pkt, ipLen)
    if (sum === 0) sum = 0xffff // RFC 768: a computed zero is sent as all ones
    v.setUint16(ipLen + 6, sum)
  }

  private tcpSegment(
    pkt: Uint8Array,
    ep: SocketEndpoints,
    src: Uint8Array,
    dst: Uint8Array,
    seq: number,
    message: readonly Uint8Array[],
    from: number,
    to: number,
  ): void {
    const ipLen = src.length === 4 ? 20 : 40
    const v = new DataView(pkt.buffer, pkt.byteOffset, pkt.length)
    this.ipHeader(pkt, v, src, dst, 6, 20 + (to - from))
    v.setUint16(ipLen, ep.local.port)
    v.setUint16(ipLen + 2, ep.remote.port)
    v.setUint32(ipLen + 4, seq >>> 0)
    v.setUint32(ipLen + 8, 1) // ack: the collector sends nothing (RFC 7011 §10.4)
    v.setUint8(ipLen + 12, 5 << 4) // data offset 5 words, no options
    v.setUint8(ipLen + 13, 0x18) // PSH | ACK
    v.setUint16(ipLen + 14, 65535) // window
    copyRange(message, from, to, pkt, ipLen + 20)
    v.setUint16(ipLen + 16, transportChecksum(src, dst, 6, pkt, ipLen))
  }

  /** Writes the IPv4 or IPv6 header for `upperLen` octets of transport header + data. */
  private ipHeader(
    pkt: Uint8Array,
    v: DataView,
    src: Uint8Array,
    dst: Uint8Array,
    proto: number,
    upperLen: number,
  ): void {
    if (src.length === 4) {
      v.setUint8(0, 0x45)
      v.setUint16(2, Math.min(20 + upperLen, 0xffff))
      v.setUint16(4, this.ipId)
      this.ipId = (this.ipId + 1) & 0xffff
      v.setUint16(6, 0x4000) // DF
      v.setUint8(8, 64)
      v.setUint8(9, proto)
      pkt.set(src, 12)
      pkt.set(dst, 16)
      v.setUint16(10, onesComplement(sum16(pkt, 0, 20, 0)))
    } else {
      v.setUint32(0, 0x6000_0000)
      v.setUint16(4, Math.min(upperLen, 0xffff))
      v.setUint8(6, proto)
      v.setUint8(7, 64)
      pkt.set(src, 8)
      pkt.set(dst, 24)
    }
  }
}

function pcapFileHeader(): Uint8Array {
  const h = new Uint8Array(PCAP_HEADER_LEN)
  const v = new DataView(h.buffer)
  v.setUint32(0, 0xa1b2c3d4, true)
  v.setUint16(4, 2, true)
  v.setUint16(6, 4, true)
  v.setUint32(16, SNAPLEN, true)
  v.setUint32(20, LINKTYPE_RAW, true)
  return h
}

/** Copies octets [from, to) of a message given as chunks into out at `at`. */
function copyRange(
  message: readonly Uint8Array[],
  from: number,
  to: number,
  out: Uint8Array,
  at: number,
): void {
  let pos = 0
  let w = at
  for (const c of message) {
    const end = pos + c.length
    if (end > from && pos < to) {
      const a = Math.max(from, pos) - pos
      const b = Math.min(to, end) - pos
      out.set(a === 0 && b === c.length ? c : c.subarray(a, b), w)
      w += b - a
    }
    pos = end
    if (pos >= to) break
  }
}

/** Both addresses as bytes of one family: an IPv4 side with an IPv6 side becomes IPv4-mapped IPv6. */
function addressBytes(ep: SocketEndpoints): { src: Uint8Array; dst: Uint8Array } {
  const a = unmapIPv4(ep.local.address)
  const b = unmapIPv4(ep.remote.address)
  if (isIPv4(a) && isIPv4(b)) return { src: ipv4Bytes(a), dst: ipv4Bytes(b) }
  return { src: ipv6Bytes(a), dst: ipv6Bytes(b) }
}

function unmapIPv4(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  return m?.[1] ?? address
}

function ipv4Bytes(a: string): Uint8Array {
  return Uint8Array.from(a.split('.').map(Number))
}

/** IPv6 text (with ::, an embedded IPv4 tail or a %zone) to 16 bytes; IPv4 text becomes ::ffff:a.b.c.d. */
export function ipv6Bytes(text: string): Uint8Array {
  const out = new Uint8Array(16)
  const a = text.replace(/%.*$/, '')
  if (isIPv4(a)) {
    out[10] = 0xff
    out[11] = 0xff
    out.set(ipv4Bytes(a), 12)
    return out
  }
  if (!isIPv6(a)) return out // unknown: unspecified address
  const words: number[] = []
  const parse = (part: string): number[] => {
    if (part === '') return []
    const r: number[] = []
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const b = ipv4Bytes(g)
        r.push(((b[0] ?? 0) << 8) | (b[1] ?? 0), ((b[2] ?? 0) << 8) | (b[3] ?? 0))
      } else r.push(parseInt(g, 16))
    }
    return r
  }
  const dbl = a.indexOf('::')
  if (dbl < 0) words.push(...parse(a))
  else {
    const head = parse(a.slice(0, dbl))
    const tail = parse(a.slice(dbl + 2))
    words.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail)
  }
  const v = new DataView(out.buffer)
  words.forEach((w, i) => v.setUint16(i * 2, w))
  return out
}

/** Sum of big-endian 16-bit words of b[from, to), added to `acc` (not folded). */
function sum16(b: Uint8Array, from: number, to: number, acc: number): number {
  let s = acc
  let i = from
  for (; i + 1 < to; i += 2) s += ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0)
  if (i < to) s += (b[i] ?? 0) << 8
  return s
}

function onesComplement(s: number): number {
  let x = s
  while (x > 0xffff) x = (x & 0xffff) + Math.floor(x / 0x10000)
  return ~x & 0xffff
}

/** UDP/TCP checksum over the pseudo-header (RFC 768, RFC 9293 §3.1, RFC 8200 §8.1) and pkt[from..]. */
function transportChecksum(
  src: Uint8Array,
  dst: Uint8Array,
  proto: number,
  pkt: Uint8Array,
  from: number,
): number {
  const len = pkt.length - from
  let s = sum16(src, 0, src.length, 0)
  s = sum16(dst, 0, dst.length, s)
  s += proto + (len & 0xffff) + Math.floor(len / 0x10000)
  s = sum16(pkt, from, pkt.length, s)
  return onesComplement(s)
}
