// The `dhcp` field group's address fields: the address text of a DhcpTx as the IPv4 number the record
// carries, for the parser's dotted quads (read digit by digit) and any other text (the general rule).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ipv4Number } from './dhcp.js'

/** The rule: four parts split at dots, each Number() & 0xff; 0 for anything else. */
const rule = (s: string): number =>
  s === '' || s.split('.').length !== 4 ? 0 : s.split('.').reduce((v, o) => v * 256 + (Number(o) & 0xff), 0)

describe('dhcp fields: ipv4Number', () => {
  it('reads dotted quads and follows the rule for other text', () => {
    expect(ipv4Number('192.0.2.1')).toBe(0xc0000201)
    expect(ipv4Number('255.255.255.255')).toBe(0xffffffff)
    expect(ipv4Number('')).toBe(0)
    for (const s of [
      '1.2.3',
      '1.2.3.4.5',
      '1..2.3',
      '300.1.1.1',
      '1234.1.1.1',
      '01.2.3.4',
      ' 1.2.3.4',
      '1.2.3.x',
    ])
      expect(ipv4Number(s), s).toBe(rule(s))
  })

  it('agrees with the rule for any address and for text made of digits and dots', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.')),
          fc.string({ unit: fc.constantFrom('0', '1', '9', '.', ' ', 'x'), maxLength: 20 }),
        ),
        (s) => {
          expect(ipv4Number(s)).toBe(rule(s))
        },
      ),
      { numRuns: 2000 },
    )
  })
})
