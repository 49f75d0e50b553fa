import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ipv4Text, ipv6Text } from './address-text.js'

/** RFC 5952 §4 spelled out with arrays: the rule ipv6Text renders by table lookups. */
function reference(b: Uint8Array): string {
  const g = Array.from({ length: 8 }, (_, i) => (b[2 * i]! << 8) | b[2 * i + 1]!)
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff)
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8; i++) {
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i]
  }
  const h = (a: number[]): string => a.map((x) => x.toString(16)).join(':')
  return bestStart < 0 ? h(g) : `${h(g.slice(0, bestStart))}::${h(g.slice(bestStart + bestLen))}`
}

const text6 = (b: Uint8Array, at = 0): string =>
  ipv6Text(new DataView(b.buffer, b.byteOffset, b.byteLength), at)
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'))

describe('address text', () => {
  it('renders IPv4 dotted', () => {
    expect(ipv4Text(0xc0a80001)).toBe('192.168.0.1')
    expect(ipv4Text(0xffffffff)).toBe('255.255.255.255')
  })

  it('renders the RFC 5952 examples', () => {
    expect(text6(hex('20010db8000000000000000000000001'))).toBe('2001:db8::1')
    expect(text6(hex('20010db8000000010001000100010001'))).toBe('2001:db8:0:1:1:1:1:1')
    expect(text6(hex('20010db8000000000001000000000001'))).toBe('2001:db8::1:0:0:1')
    expect(text6(hex('00000000000000000000000000000000'))).toBe('::')
    expect(text6(hex('00000000000000000000000000000001'))).toBe('::1')
    expect(text6(hex('fe800000000000000000000000000000'))).toBe('fe80::')
    expect(text6(hex('00000000000000000000ffffc0000201'))).toBe('::ffff:192.0.2.1')
    expect(text6(hex('abcd0fff00f0000f1000ffff0001a000'))).toBe('abcd:fff:f0:f:1000:ffff:1:a000')
    // Reads at an offset of the view.
    expect(text6(hex('ffff20010db8000000000000000000000001'), 2)).toBe('2001:db8::1')
  })

  it('agrees with the array-built rule on any address, zero runs favoured', () => {
    const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }))
    fc.assert(
      fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), fc.boolean(), (groups, mapped) => {
        const b = new Uint8Array(16)
        groups.forEach((x, i) => {
          b[2 * i] = x >> 8
          b[2 * i + 1] = x & 0xff
        })
        if (mapped) b.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff])
        expect(text6(b)).toBe(reference(b))
      }),
      { numRuns: 3000 },
    )
  })
})
