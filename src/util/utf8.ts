/**
 * UTF-8 (RFC 3629) length of a JavaScript string and an ASCII fast path for writing one, for the record
 * writers' many short strings: a loop over the code units costs less than a call into Buffer's C++ for a
 * string of a few dozen characters (not for longer ones: utf8Length hands those to Buffer). Lengths are
 * those Buffer.byteLength gives: a lone surrogate counts as the 3 octets of U+FFFD, which is what
 * Buffer#write puts in its place.
 */

/** Octets of `s` in UTF-8 (Buffer.byteLength(s, 'utf8')). */
export function utf8Length(s: string): number {
  const n = s.length
  // Long strings: Buffer's C++ is faster once past its call cost.
  if (n >= 64) return Buffer.byteLength(s, 'utf8')
  let len = n
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) len += 1
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        len += 2 // 4 octets for 2 code units
        i++
      } else len += 2
    } else len += 2
  }
  return len
}

/**
 * Writes `s` at `buf[at..]` when every code unit is ASCII and returns its length; returns -1 (having
 * written garbage at most) at the first code unit that is not. The caller checks the room for s.length.
 */
export function writeAscii(buf: Uint8Array, at: number, s: string): number {
  const n = s.length
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80) return -1
    buf[at + i] = c
  }
  return n
}
