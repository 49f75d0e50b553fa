// Text helpers of the text-based parsers (./text.ts).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { lineEnd } from './text.js'

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
