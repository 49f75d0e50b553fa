// The probe summary's number format: thousands separators exactly as toLocaleString('en-US') writes them.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { fmt } from './summary.js'

describe('fmt', () => {
  it('groups digits like toLocaleString("en-US") for any number', () => {
    for (const n of [0, 7, 999, 1000, -1000, 123456, 1234567, -0, 2 ** 53 - 1, -(2 ** 53 - 1), 1.5, 1e21])
      expect(fmt(n)).toBe(n.toLocaleString('en-US'))
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
        (n) => fmt(n) === n.toLocaleString('en-US'),
      ),
    )
    fc.assert(fc.property(fc.double(), (n) => fmt(n) === n.toLocaleString('en-US')))
  })
})
