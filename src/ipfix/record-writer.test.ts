// BufferWriter.string: the ASCII fast paths (1- and 3-octet length prefix) give the bytes of the RFC 7011 §7
// variable-length encoding of the string's UTF-8 (as Buffer encodes it), and a string that does not fit the
// limit sets `overflow` without writing past it.
import { describe, expect, it } from 'vitest'
import { BufferWriter } from './record-writer.js'

/** The RFC 7011 §7 encoding of `s`, from Buffer's UTF-8. */
function reference(s: string): Buffer {
  const b = Buffer.from(s, 'utf8')
  const prefix = b.length < 255 ? Buffer.from([b.length]) : Buffer.from([255, b.length >> 8, b.length & 0xff])
  return Buffer.concat([prefix, b])
}

const STRINGS = [
  '',
  'a',
  'x'.repeat(63),
  'x'.repeat(64),
  'x'.repeat(254),
  'x'.repeat(255),
  'y'.repeat(256),
  'z'.repeat(1000),
  'é',
  'h\u00e9llo',
  'e'.repeat(250) + '\u00e9', // 251 characters, 252 octets
  'e'.repeat(254) + '\u00e9', // 255 characters, 256 octets
  'a'.repeat(300) + '\u20ac',
  '\ud83d\ude00 emoji',
  'lone \ud800 surrogate',
  '\u007f\u0080',
]

describe('BufferWriter.string', () => {
  it('writes the variable-length UTF-8 encoding of ASCII and other strings, short and long', () => {
    for (const s of STRINGS) {
      const w = new BufferWriter(4096)
      w.u8(0xaa) // not at the buffer's start
      w.string(s)
      w.u8(0xbb)
      expect(w.overflow).toBe(false)
      const want = Buffer.concat([Buffer.from([0xaa]), reference(s), Buffer.from([0xbb])])
      expect(w.buf.subarray(0, w.pos).toString('hex')).toBe(want.toString('hex'))
    }
  })

  it('sets overflow and writes nothing past the limit when the string does not fit', () => {
    for (const s of STRINGS) {
      const need = reference(s).length
      if (need < 2) continue
      const w = new BufferWriter(8192)
      w.pos = 100
      w.limit = 100 + need - 1
      w.buf.fill(0x55, w.limit)
      w.string(s)
      expect(w.overflow).toBe(true)
      expect(w.pos).toBe(100)
      expect(w.buf.subarray(w.limit).every((b) => b === 0x55)).toBe(true)
      // Exactly enough room: written.
      const ok = new BufferWriter(8192)
      ok.pos = 100
      ok.limit = 100 + need
      ok.string(s)
      expect(ok.overflow).toBe(false)
      expect(ok.pos).toBe(100 + need)
    }
  })

  it('refuses a string longer than 65535 octets', () => {
    const w = new BufferWriter(70000)
    w.string('q'.repeat(65536))
    expect(w.overflow).toBe(true)
    expect(w.pos).toBe(0)
  })
})
