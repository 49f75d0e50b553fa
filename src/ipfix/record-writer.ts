/**
 * Zero-allocation writing of IPFIX data records and Sets into one preallocated message buffer
 * (RFC 7011 §3.3 Set layout, §6.1 encodings, §7 variable-length prefix), pg-protocol Writer style:
 * Set lengths are patched when the Set closes. Writes past the limit never throw: they set `overflow`
 * and the caller drops the record.
 */
import { writeAscii } from '../util/utf8.js'

/** Writes the fields of one data record, in template order. */
export interface RecordWriter {
  u8(v: number): void
  u16(v: number): void
  u32(v: number): void
  /** Non-negative safe integer, 8 octets. */
  u64(v: number): void
  f64(v: number): void
  /** IPv4 address as an unsigned 32-bit number. */
  ipv4(v: number): void
  /** IPv6 address as 4 u32 words, most significant first. */
  ipv6(words: Uint32Array, start?: number): void
  mac(hi16: number, lo32: number): void
  /** dateTimeMilliseconds: u64 milliseconds since the UNIX epoch. */
  dateTimeMs(ms: number): void
  /** Fixed-length raw octets. */
  bytes(b: Uint8Array): void
  /** RFC 7011 §7 variable-length value: 1-octet length, or 255 + 2-octet length, then the octets. */
  varlen(b: Uint8Array): void
  /** UTF-8 string as a variable-length value. */
  string(s: string): void
}

const TWO32 = 0x1_0000_0000
/** Strings this long and longer are written by Buffer (one call, then native speed per character). */
const ASCII_LOOP_MAX = 64

/**
 * Writes `n` non-negative safe integers from `src[from..]` as 8 octets each at `p` (for fixed-length
 * record writers that checked the room once: fields/core.ts); returns the position after them. The values
 * travel in a Float64Array, not as arguments: a large number passed to a call that is not inlined is boxed
 * as a heap number.
 */
export function putU64s(view: DataView, p: number, src: Float64Array, from: number, n: number): number {
  for (let i = from; i < from + n; i++) {
    const v = src[i]!
    const hi = v >= TWO32 ? Math.floor(v / TWO32) : 0
    view.setUint32(p, hi)
    view.setUint32(p + 4, v - hi * TWO32)
    p += 8
  }
  return p
}

/** A RecordWriter over a byte range [pos, limit) of a Buffer; also writes Set headers. */
export class BufferWriter implements RecordWriter {
  readonly buf: Buffer
  readonly view: DataView
  pos: number
  limit: number
  /** Set when a write did not fit (or a value was out of range); the bytes written are then garbage. */
  overflow = false

  constructor(size: number) {
    this.buf = Buffer.alloc(size)
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength)
    this.pos = 0
    this.limit = size
  }

  private room(n: number): boolean {
    if (this.pos + n <= this.limit) return true
    this.overflow = true
    return false
  }

  u8(v: number): void {
    if (!this.room(1)) return
    this.view.setUint8(this.pos, v)
    this.pos += 1
  }
  u16(v: number): void {
    if (!this.room(2)) return
    this.view.setUint16(this.pos, v)
    this.pos += 2
  }
  u32(v: number): void {
    if (!this.room(4)) return
    this.view.setUint32(this.pos, v)
    this.pos += 4
  }
  u64(v: number): void {
    if (!this.room(8)) return
    const hi = v >= TWO32 ? Math.floor(v / TWO32) : 0
    this.view.setUint32(this.pos, hi)
    this.view.setUint32(this.pos + 4, v - hi * TWO32)
    this.pos += 8
  }
  f64(v: number): void {
    if (!this.room(8)) return
    this.view.setFloat64(this.pos, v)
    this.pos += 8
  }
  ipv4(v: number): void {
    this.u32(v)
  }
  ipv6(words: Uint32Array, start = 0): void {
    if (!this.room(16)) return
    const p = this.pos
    this.view.setUint32(p, words[start] ?? 0)
    this.view.setUint32(p + 4, words[start + 1] ?? 0)
    this.view.setUint32(p + 8, words[start + 2] ?? 0)
    this.view.setUint32(p + 12, words[start + 3] ?? 0)
    this.pos += 16
  }
  mac(hi16: number, lo32: number): void {
    if (!this.room(6)) return
    this.view.setUint16(this.pos, hi16)
    this.view.setUint32(this.pos + 2, lo32)
    this.pos += 6
  }
  dateTimeMs(ms: number): void {
    this.u64(ms)
  }
  bytes(b: Uint8Array): void {
    if (!this.room(b.byteLength)) return
    this.buf.set(b, this.pos)
    this.pos += b.byteLength
  }
  private lengthPrefix(n: number): boolean {
    if (n > 65535) {
      this.overflow = true
      return false
    }
    if (n < 255) {
      if (!this.room(1 + n)) return false
      this.view.setUint8(this.pos, n)
      this.pos += 1
    } else {
      if (!this.room(3 + n)) return false
      this.view.setUint8(this.pos, 255)
      this.view.setUint16(this.pos + 1, n)
      this.pos += 3
    }
    return true
  }
  varlen(b: Uint8Array): void {
    if (!this.lengthPrefix(b.byteLength)) return
    this.buf.set(b, this.pos)
    this.pos += b.byteLength
  }
  string(s: string): void {
    // Short ASCII strings, most of them, are written here: a loop over the code units costs less than a call
    // into Buffer's C++ below ASCII_LOOP_MAX units (see util/utf8.ts), more above it.
    const len = s.length
    if (
      len < ASCII_LOOP_MAX &&
      this.pos + 1 + len <= this.limit &&
      writeAscii(this.buf, this.pos + 1, s) === len
    ) {
      this.buf[this.pos] = len
      this.pos += 1 + len
      return
    }
    const n = Buffer.byteLength(s, 'utf8')
    if (!this.lengthPrefix(n)) return
    this.pos += this.buf.write(s, this.pos, n, 'utf8')
  }
  /**
   * Writes a variable-length value with the 3-octet length form even when short (allowed by RFC 7011 §7,
   * RECOMMENDED for structured data by RFC 6313 §5.1).
   */
  varlenLong(b: Uint8Array): void {
    if (b.byteLength > 65535 || !this.room(3 + b.byteLength)) {
      this.overflow = true
      return
    }
    this.view.setUint8(this.pos, 255)
    this.view.setUint16(this.pos + 1, b.byteLength)
    this.buf.set(b, this.pos + 3)
    this.pos += 3 + b.byteLength
  }
}

/**
 * The body of one IPFIX message being built: Sets back to back after a reserved 16-octet header
 * (RFC 7011 §3.1). Only one Set is open at a time; opening another closes it and patches its length.
 */
export class MessageBuilder {
  readonly w: BufferWriter
  /** Set ID of the open Set, or -1. */
  setId = -1
  private setStart = 0
  /** Data records (incl. options data records) in this message, for the Sequence Number. */
  records = 0

  constructor(readonly maxMessageSize: number) {
    this.w = new BufferWriter(maxMessageSize)
    this.reset()
  }

  reset(): void {
    this.w.pos = 16
    this.w.limit = this.maxMessageSize
    this.w.overflow = false
    this.setId = -1
    this.records = 0
  }

  get isEmpty(): boolean {
    return this.w.pos === 16
  }
  /** Octets left for Set contents, counting the header of a new Set when `setId` is not the open one. */
  free(setId: number): number {
    return this.maxMessageSize - this.w.pos - (setId === this.setId ? 0 : 4)
  }

  openSet(setId: number): void {
    if (this.setId === setId) return
    this.closeSet()
    this.setStart = this.w.pos
    this.w.u16(setId)
    this.w.u16(0)
    this.setId = setId
  }

  closeSet(): void {
    if (this.setId < 0) return
    if (this.w.pos === this.setStart + 4) {
      // Nothing was written into it (the only record was abandoned): remove the Set header.
      this.w.pos = this.setStart
      this.setId = -1
      return
    }
    this.w.view.setUint16(this.setStart + 2, this.w.pos - this.setStart)
    this.setId = -1
  }

  /** Closes the open Set and returns a copy of the body (everything after the header). */
  takeBody(): Uint8Array {
    this.closeSet()
    return Uint8Array.prototype.slice.call(this.w.buf, 16, this.w.pos)
  }
}

/** Writes the 16-octet message header (RFC 7011 §3.1) into `out` (or a new array). */
export function messageHeader(
  bodyLength: number,
  exportTime: number,
  sequence: number,
  odid: number,
  out: Uint8Array = new Uint8Array(16),
): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset, 16)
  v.setUint16(0, 10)
  v.setUint16(2, 16 + bodyLength)
  v.setUint32(4, exportTime >>> 0)
  v.setUint32(8, sequence >>> 0)
  v.setUint32(12, odid >>> 0)
  return out
}
