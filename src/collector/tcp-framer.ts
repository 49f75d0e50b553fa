/**
 * IPFIX over TCP framing (RFC 7011 §10.4.3): messages are delimited by the header's Length field. Bytes are
 * appended as they arrive; complete messages are handed out. A stream that does not start with version 10,
 * or a Length below 16, cannot be resynchronised: the framer stops and reports the fault (the caller closes
 * the session, §9.1). Buffered bytes are capped by the largest message (65535) plus one read.
 */

export const IPFIX_VERSION = 10

export class TcpFramer {
  private buf = new Uint8Array(0)
  /** Set when the stream cannot be framed (counter name); nothing more is handed out. */
  fault: string | undefined

  /** Appends bytes and returns the complete messages now available (copies). */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.fault !== undefined) return []
    const joined = new Uint8Array(this.buf.byteLength + chunk.byteLength)
    joined.set(this.buf, 0)
    joined.set(chunk, this.buf.byteLength)
    const out: Uint8Array[] = []
    let p = 0
    while (joined.byteLength - p >= 4) {
      const version = (joined[p]! << 8) | joined[p + 1]!
      const length = (joined[p + 2]! << 8) | joined[p + 3]!
      if (version !== IPFIX_VERSION) {
        this.fault = 'tcp_not_ipfix'
        break
      }
      if (length < 16) {
        this.fault = 'tcp_bad_message_length'
        break
      }
      if (joined.byteLength - p < length) break
      out.push(joined.slice(p, p + length))
      p += length
    }
    this.buf = this.fault === undefined ? joined.slice(p) : new Uint8Array(0)
    return out
  }

  /** Bytes of an incomplete message still waiting. */
  get buffered(): number {
    return this.buf.byteLength
  }
}
