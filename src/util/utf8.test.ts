// utf8Length and writeAscii (./utf8.ts) against Buffer's own UTF-8 encoding, and BufferWriter.string, which
// uses them, against the RFC 7011 §7 encoding of Buffer.from(s, 'utf8').
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { BufferWriter } from '../ipfix/record-writer.js'
import { utf8Length, writeAscii } from './utf8.js'

const strings = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 400 }),
  fc.string({ unit: 'grapheme', maxLength: 400 }),
  fc.string({ maxLength: 400 }),
  fc.constantFrom('', 'a', '\ud800', '\udc00x', 'x\ud83d', '\ud83d\ude00', 'é'.repeat(200), 'a'.repeat(254)),
)

function expected(s: string): Uint8Array {
  const b = Buffer.from(s, 'utf8')
  const prefix = b.byteLength < 255 ? [b.byteLength] : [255, b.byteLength >> 8, b.byteLength & 0xff]
  return Uint8Array.from([...prefix, ...b])
}

describe('UTF-8 helpers', () => {
  it('utf8Length is Buffer.byteLength, lone surrogates included', () => {
    fc.assert(
      fc.property(strings, (s) => utf8Length(s) === Buffer.byteLength(s, 'utf8')),
      { numRuns: 2000 },
    )
  })

  it('writeAscii writes ASCII strings and refuses the others', () => {
    fc.assert(
      fc.property(strings, (s) => {
        const buf = new Uint8Array(s.length + 1)
        const n = writeAscii(buf, 1, s)
        if ([...s].every((ch) => ch.charCodeAt(0) < 0x80))
          return n === s.length && Buffer.from(buf.subarray(1)).toString('latin1') === s
        return n === -1
      }),
      { numRuns: 2000 },
    )
  })

  it('BufferWriter.string writes the length prefix and the UTF-8 octets, whatever it wrote before', () => {
    fc.assert(
      fc.property(fc.array(strings, { maxLength: 6 }), (list) => {
        const w = new BufferWriter(65535)
        w.buf.fill(0xaa)
        for (const s of list) w.string(s)
        const want = Buffer.concat(list.map(expected))
        return !w.overflow && w.pos === want.byteLength && w.buf.subarray(0, w.pos).equals(want)
      }),
      { numRuns: 1000 },
    )
  })

  it('BufferWriter.string sets overflow when the string does not fit, ASCII or not', () => {
    for (const s of ['abcdef', 'abcdé']) {
      const w = new BufferWriter(6)
      w.string(s)
      expect(w.overflow).toBe(true)
    }
    const w = new BufferWriter(7)
    w.string('abcdef')
    expect(w.overflow).toBe(false)
    expect(Buffer.from(w.buf.subarray(0, 7)).toString('latin1')).toBe('\x06abcdef')
  })
})
