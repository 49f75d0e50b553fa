/**
 * IPFIX over TCP framing (RFC 7011 §10.4.3): messages are delimited by the header's Length field. Bytes are
 * appended as they arrive; complete messages are handed out. A stream that does not start with version 10,
 * or a Length below 16, cannot be resynchronised: the framer stops and reports the fault (the caller closes
 * the session, §9.1). Buffered bytes are capped by the largest message (65535).
 *
 * Each octet is copied at most twice whatever the chunk sizes: a message that lies whole in one chunk is
 * sliced out of it; one split over chunks is assembled in a buffer of its own Length (allocated once its
 * 4-octet header prefix is in), which is then handed out as it is. So 1-octet chunks cost linear time.
 */

export const IPFIX_VERSION = 10

/** Octets of the header that carry Version and Length. */
const PREFIX = 4

export class TcpFramer {
  /** The incomplete message: its first 4 octets until its Length is known, then a buffer of that Length. */
  private part: Uint8Array = new Uint8Array(PREFIX)
  /** Octets of `part` filled. */
  private filled = 0
  /** Set when the stream cannot be framed (counter name); nothing more is handed out. */
  fault: string | undefined

  /** Appends bytes and returns the complete messages now available (copies, not views of `chunk`). */
  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = []
    let p = 0
    while (this.fault === undefined && p < chunk.byteLength) {
      if (this.filled === 0) {
        // At a message boundary: take whole messages straight out of the chunk.
        const rest = chunk.byteLength - p
        if (rest >= PREFIX) {
          const length = this.check(chunk[p]!, chunk[p + 1]!, chunk[p + 2]!, chunk[p + 3]!)
          if (length === undefined) break
          if (rest >= length) {
            out.push(chunk.slice(p, p + length))
            p += length
            continue
          }
          this.part = new Uint8Array(length)
        } else this.part = new Uint8Array(PREFIX)
      }
      // Assembling: fill the prefix, then (its Length known) the message buffer.
      if (this.part.byteLength === PREFIX || this.filled < PREFIX) {
        const n = Math.min(PREFIX - this.filled, chunk.byteLength - p)
        this.copyIn(chunk, p, n)
        p += n
        if (this.filled < PREFIX) break
        if (this.part.byteLength === PREFIX) {
          const h = this.part
          const length = this.check(h[0]!, h[1]!, h[2]!, h[3]!)
          if (length === undefined) break
          this.part = new Uint8Array(length)
          this.part.set(h)
        }
      }
      const n = Math.min(this.part.byteLength - this.filled, chunk.byteLength - p)
      this.copyIn(chunk, p, n)
      p += n
      if (this.filled === this.part.byteLength) {
        out.push(this.part)
        this.part = new Uint8Array(PREFIX)
        this.filled = 0
      }
    }
    if (this.fault !== undefined) {
      this.part = new Uint8Array(PREFIX)
      this.filled = 0
    }
    return out
  }

  /** Octets of an incomplete message still waiting. */
  get buffered(): number {
    return this.filled
  }

  /** The message Length of a header prefix, or undefined (fault set) when the stream cannot be framed. */
  private check(v0: number, v1: number, l0: number, l1: number): number | undefined {
    if (((v0 << 8) | v1) !== IPFIX_VERSION) {
      this.fault = 'tcp_not_ipfix'
      return undefined
    }
    const length = (l0 << 8) | l1
    if (length < 16) {
      this.fault = 'tcp_bad_message_length'
      return undefined
    }
    return length
  }

  private copyIn(chunk: Uint8Array, p: number, n: number): void {
    this.part.set(chunk.subarray(p, p + n), this.filled)
    this.filled += n
  }
}
