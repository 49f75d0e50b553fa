// Tests of the catalogue lookups and the DNS answer cache (src/appid/classifier.ts).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AppCatalogue, DnsAnswerCache, NO_APP } from './classifier.js'

/** The canonical dotted quad as the cache keys it: four octets 0-255 without leading zeros. */
function referenceIpv4(text: string): number | undefined {
  const m = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/.exec(text)
  if (m === null) return undefined
  let v = 0
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i])
    if (o > 255) return undefined
    v = v * 256 + o
  }
  return v
}

const octet = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map(String),
  fc.constantFrom('256', '999', '00', '01', '007', '1000', '', '-1', ' 1', '1 ', '+1'),
)
const addressText = fc.oneof(
  fc.tuple(octet, octet, octet, octet).map((o) => o.join('.')),
  fc.tuple(octet, octet, octet).map((o) => o.join('.')),
  fc.tuple(octet, octet, octet, octet, octet).map((o) => o.join('.')),
  fc
    .tuple(octet, octet, octet, octet, fc.constantFrom('\n', 'x', '.', ':'))
    .map(([a, b, c, d, e]) => `${a}.${b}.${c}.${d}${e}`),
  fc.string({ maxLength: 20 }),
)

describe('DnsAnswerCache', () => {
  it('finds an address by its number exactly when the text is a canonical dotted quad', () => {
    fc.assert(
      fc.property(addressText, (text) => {
        const cache = new DnsAnswerCache()
        cache.set(text, 7)
        const v = referenceIpv4(text)
        if (v === undefined) {
          // Kept as text: found by the text only.
          expect(cache.get(text)).toBe(7)
        } else {
          expect(cache.getIpv4(v)).toBe(7)
          expect(cache.get(text)).toBe(7)
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('keys IPv4 answers by number, so every spelling of the flow address meets them', () => {
    const cache = new DnsAnswerCache()
    cache.set('192.0.2.10', 3)
    expect(cache.getIpv4(0xc000020a)).toBe(3)
    expect(cache.getIpv4(0xc000020b)).toBe(NO_APP)
    cache.set('192.000.2.11', 4)
    expect(cache.getIpv4(0xc000020b)).toBe(NO_APP)
  })
})

describe('AppCatalogue.byTransportPort', () => {
  it('gives the first catalogue entry listing the port, per transport', () => {
    const c = new AppCatalogue()
    for (const proto of [6, 17]) {
      const t = proto === 6 ? 'tcp' : 'udp'
      for (const port of [0, 22, 53, 80, 443, 3389, 5353, 65535]) {
        const expected = c.entries.findIndex((e) => e.ports.includes(`${t}/${port}`))
        expect(c.byTransportPort(proto, port)).toBe(expected < 0 ? NO_APP : expected)
      }
    }
    expect(c.byTransportPort(1, 80)).toBe(NO_APP)
    expect(c.byTransportPort(6, 70000)).toBe(NO_APP)
  })
})

describe('AppCatalogue.portKnown', () => {
  it('has the bit of a port set exactly when byTransportPort names an entry for it', () => {
    const c = new AppCatalogue()
    let known = 0
    for (let k = 0; k < 2 * 65536; k++) {
      const bit = (c.portKnown[k >> 3]! >> (k & 7)) & 1
      const named = c.byTransportPort(k < 65536 ? 6 : 17, k & 0xffff) !== NO_APP
      if (bit !== (named ? 1 : 0)) expect.fail(`port key ${k}: bit ${bit}, named ${named}`)
      known += bit
    }
    expect(known).toBeGreaterThan(100)
  })
})

describe('DnsAnswerCache filter', () => {
  /** The cache without its filter: insertion order, oldest out at capacity, a set moves a key to the end. */
  class Reference {
    readonly map = new Map<string, number>()
    constructor(private readonly capacity: number) {}
    set(text: string, entry: number): void {
      const key = String(referenceIpv4(text) ?? text)
      if (this.map.has(key)) this.map.delete(key)
      else if (this.map.size >= this.capacity) this.map.delete(this.map.keys().next().value!)
      this.map.set(key, entry)
    }
  }
  // Few distinct addresses, so keys come back after they left; some share a filter bit by chance.
  const address = fc.oneof(
    fc
      .tuple(fc.constantFrom(10, 192), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 40 }))
      .map(([a, b, c]) => `${a}.0.${b}.${c}`),
    fc.constantFrom('2001:db8::1', '2001:db8::2', 'fe80::1', 'not an address'),
  )

  it('answers every lookup as the plain map does, through evictions and filter rebuilds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.tuple(address, fc.integer({ min: 0, max: 300 })), { maxLength: 3000 }),
        (capacity, sets) => {
          const cache = new DnsAnswerCache(capacity)
          const ref = new Reference(capacity)
          for (const [text, entry] of sets) {
            cache.set(text, entry)
            ref.set(text, entry)
          }
          for (const b of [0, 1, 2, 3])
            for (let c = 0; c <= 40; c++)
              for (const a of [10, 192]) {
                const text = `${a}.0.${b}.${c}`
                const v = referenceIpv4(text)!
                expect(cache.getIpv4(v)).toBe(ref.map.get(String(v)) ?? NO_APP)
                expect(cache.getIpv4(v | 0)).toBe(ref.map.get(String(v)) ?? NO_APP)
              }
          for (const t of ['2001:db8::1', '2001:db8::2', 'fe80::1', 'not an address'])
            expect(cache.get(t)).toBe(ref.map.get(t) ?? NO_APP)
          const texts = [...ref.map.keys()].filter((k) => !/^\d+$/.test(k)).length
          expect(cache.holdsText).toBe(texts > 0)
          expect(cache.size).toBe(ref.map.size)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('rebuilds its filter after many evictions and still finds what it holds', () => {
    const cache = new DnsAnswerCache(16)
    for (let i = 0; i < 5000; i++) cache.set(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, i)
    for (let i = 0; i < 5000; i++) {
      const v = (10 << 24) | i
      expect(cache.getIpv4(v)).toBe(i >= 5000 - 16 ? i : NO_APP)
    }
    expect(cache.holdsText).toBe(false)
  })

  it('keeps a key that stayed through a filter rebuild', () => {
    const cache = new DnsAnswerCache(4)
    const kept = 0xc0000201
    for (let i = 0; i < 3000; i++) {
      cache.set('192.0.2.1', 7)
      cache.set(`10.0.${(i >> 8) & 255}.${i & 255}`, 1)
    }
    expect(cache.getIpv4(kept)).toBe(7)
  })
})
