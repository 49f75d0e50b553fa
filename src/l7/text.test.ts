// Text helpers of the text-based parsers (./text.ts).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { indexOfBytes, latin1, lineEnd } from './text.js'

describe('lineEnd', () => {
  it('finds the first line feed in [from, to), as a test per octet does', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(70), fc.nat(70), (b, from, to) => {
        let expected = -1
        for (let i = from; i < Math.min(to, b.length); i++)
          if (b[i] === 0x0a) {
            expected = i
            break
          }
        const m = b.map((v) => (v % 4 === 0 ? 0x0a : v))
        let expectedM = -1
        for (let i = from; i < Math.min(to, m.length); i++)
          if (m[i] === 0x0a) {
            expectedM = i
            break
          }
        expect(lineEnd(b, from, to)).toBe(expected)
        expect(lineEnd(m, from, to)).toBe(expectedM)
      }),
      { numRuns: 1000 },
    )
  })
})

describe('latin1 and indexOfBytes on plain Uint8Arrays', () => {
  it('decode and search like Buffer does, clamped to the array, on views at any offset', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 48 }),
        fc.nat(8),
        fc.integer({ min: -4, max: 60 }),
        fc.integer({ min: -4, max: 60 }),
        fc.uint8Array({ minLength: 1, maxLength: 3 }),
        (bytes, skip, a, b, needle) => {
          // A view that does not start at its ArrayBuffer's start, as a packet payload does.
          const whole = new Uint8Array(bytes.length + skip)
          whole.set(bytes, skip)
          const m = whole.subarray(skip)
          const buf = Buffer.from(bytes)
          expect(latin1(m, a, b)).toBe(buf.toString('latin1', Math.max(a, 0), Math.max(b, 0)))
          const small = needle.map((v) => v % 3) // a small alphabet, so that matches happen
          const hay = m.map((v) => v % 3)
          const from = Math.max(a, 0)
          expect(indexOfBytes(hay, small, from)).toBe(Buffer.from(hay).indexOf(Buffer.from(small), from))
        },
      ),
      { numRuns: 1000 },
    )
  })

  it('decodes every octet as the code point of the same value', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i)
    const s = latin1(all, 0, 256)
    expect([...s].map((c) => c.charCodeAt(0))).toEqual([...all])
  })
})
