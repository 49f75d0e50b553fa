// Address keys and their text: what top-N by address shows for a group key (keyText) is the decoder's text
// for IPv4 elements and RFC 5952 text for IPv6 ones.
import { describe, expect, it } from 'vitest'
import { cidrRange, ipKey, keyText } from './ip-key.js'

describe('address keys', () => {
  it('formats keys back to the decoder text', () => {
    for (const t of ['0.0.0.0', '10.1.2.3', '255.255.255.255', '::', '::1', '2001:db8::53', 'fe80::1:0:0:1'])
      expect(keyText(ipKey(t)!), t).toBe(t)
    // An IPv4-mapped IPv6 address has the IPv4 address's key: top-N lists it in the IPv4 form.
    expect(keyText(ipKey('::ffff:10.1.2.3')!)).toBe('10.1.2.3')
    expect(keyText((1n << 128n) - 1n)).toBe('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')
  })

  it('turns prefixes into key ranges', () => {
    expect(cidrRange('10.0.0.0/8')).toEqual({ lo: ipKey('10.0.0.0'), hi: ipKey('10.255.255.255') })
    expect(cidrRange('2001:db8::/127')).toEqual({ lo: ipKey('2001:db8::'), hi: ipKey('2001:db8::1') })
    expect(cidrRange('10.0.0.0/33')).toBeUndefined()
  })
})
