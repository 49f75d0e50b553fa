/**
 * @module l7/text
 * Small helpers for text-based protocols (RFC 9110/9112 field syntax): bounded searches and latin1 views
 * over a byte range without copying it.
 */

/**
 * Buffer's native latin1 decoder and byte search, applied to a plain Uint8Array: no Buffer object is made
 * per call (Buffer.from over the same bytes costs as much as the decoding of a header block).
 */
interface BufferNatives {
  latin1Slice: (this: Uint8Array, a: number, b: number) => string
  indexOf: (this: Uint8Array, needle: Uint8Array, from: number) => number
}
const { latin1Slice, indexOf: bufferIndexOf } = Buffer.prototype as unknown as BufferNatives

/** Bytes [a, b) of `m` as latin1 text (one char per octet, as RFC 9110 §5.5 treats obs-text); clamped to `m`. */
export function latin1(m: Uint8Array, a: number, b: number): string {
  const start = a < 0 ? 0 : a
  const end = b > m.byteLength ? m.byteLength : b
  return end <= start ? '' : latin1Slice.call(m, start, end)
}

/** Index of the first occurrence of `needle` in `m` at or after `from`, or -1 (a native search). */
export function indexOfBytes(m: Uint8Array, needle: Uint8Array, from: number): number {
  return bufferIndexOf.call(m, needle, from)
}

/** Index of the first "\n" at or after `from` and before `to`, or -1 (a native search, not a loop per octet). */
export function lineEnd(m: Uint8Array, from: number, to = m.byteLength): number {
  if (from >= to) return -1
  const i = m.indexOf(0x0a, from)
  return i >= 0 && i < to ? i : -1
}

/** True when `m` at `o` starts with the ASCII string `s`. */
export function startsWith(m: Uint8Array, o: number, s: string): boolean {
  if (o + s.length > m.byteLength) return false
  for (let i = 0; i < s.length; i++) if (m[o + i] !== s.charCodeAt(i)) return false
  return true
}
