/**
 * @module l7/text
 * Small helpers for text-based protocols (RFC 9110/9112 field syntax): bounded searches and latin1 views
 * over a byte range without copying it.
 */

/** Bytes [a, b) of `m` as latin1 text (one char per octet, as RFC 9110 §5.5 treats obs-text). */
export function latin1(m: Uint8Array, a: number, b: number): string {
  return Buffer.from(m.buffer, m.byteOffset, m.byteLength).toString('latin1', a, b)
}

/** Index of the first "\n" at or after `from` and before `to`, or -1 (a native search, not a loop per octet). */
export function lineEnd(m: Uint8Array, from: number, to = m.byteLength): number {
  if (from >= to) return -1
  const i = m.indexOf(0x0a, from)
  return i >= 0 && i < to ? i : -1
}

/** End (exclusive, after the blank line) of a header block starting at `from`, or -1 when not yet complete. */
export function headerBlockEnd(m: Uint8Array, from: number): number {
  let p = from
  for (;;) {
    const e = lineEnd(m, p)
    if (e < 0) return -1
    // An empty line ("\n" or "\r\n") ends the block.
    if (e === p || (e === p + 1 && m[p] === 0x0d)) return e + 1
    p = e + 1
  }
}

/** True when `m` at `o` starts with the ASCII string `s`. */
export function startsWith(m: Uint8Array, o: number, s: string): boolean {
  if (o + s.length > m.byteLength) return false
  for (let i = 0; i < s.length; i++) if (m[o + i] !== s.charCodeAt(i)) return false
  return true
}
