/**
 * Test helpers for the IPFIX library: an in-memory Transport and a splitter for RFC 5655 message streams
 * (RFC 7011 §3.1 header Length framing). Not used by production code.
 */
import type { Transport, TransportStats } from './transport.js'

export class MemoryTransport implements Transport {
  readonly stats: TransportStats = { messages: 0, octets: 0, errors: 0, dropped: 0 }
  readonly messages: Uint8Array[] = []
  private readonly cbs: (() => void)[] = []
  closed = false

  constructor(
    readonly name = 'memory',
    readonly periodicTemplates = false,
  ) {}

  open(): Promise<void> {
    return Promise.resolve()
  }
  send(message: Uint8Array[]): void {
    this.messages.push(Buffer.concat(message))
    this.stats.messages++
  }
  onNewSession(cb: () => void): void {
    this.cbs.push(cb)
  }
  /** Simulates the start of a new transport session. */
  newSession(): void {
    for (const cb of this.cbs) cb()
  }
  close(): Promise<void> {
    this.closed = true
    return Promise.resolve()
  }
}

export interface HeaderInfo {
  length: number
  exportTime: number
  sequence: number
  odid: number
  /** Set IDs in order. */
  sets: number[]
}

/** Header fields and Set IDs of one message. */
export function headerOf(m: Uint8Array): HeaderInfo {
  const v = new DataView(m.buffer, m.byteOffset, m.byteLength)
  const sets: number[] = []
  const length = v.getUint16(2)
  for (let p = 16; p + 4 <= length; p += v.getUint16(p + 2) || length) sets.push(v.getUint16(p))
  return { length, exportTime: v.getUint32(4), sequence: v.getUint32(8), odid: v.getUint32(12), sets }
}

/** Splits concatenated messages (an RFC 5655 file or a TCP stream) by their header Length. */
export function splitMessages(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  for (let p = 0; p + 16 <= b.byteLength;) {
    const len = v.getUint16(p + 2)
    if (len < 16) break
    out.push(b.subarray(p, p + len))
    p += len
  }
  return out
}

/** Hex string (whitespace and '#' comments allowed) to bytes. */
export function hex(s: string): Uint8Array {
  const clean = s.replace(/#.*$/gm, '').replace(/\s+/g, '')
  return Uint8Array.from(Buffer.from(clean, 'hex'))
}
