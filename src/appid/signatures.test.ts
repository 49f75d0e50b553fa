// The content signatures' prefilter (src/appid/signatures.ts SIGNATURE_GATES, the lists of
// src/appid/classifier.ts AppCatalogue.gated) and their string search (Needle): a gate must never exclude a
// payload its signature matches, and the gated lists must give the same first match as trying every
// signature of the transport in catalogue order.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AppCatalogue, gateAdmits, gatedIndex, NO_APP, WAYS } from './classifier.js'
import {
  Needle,
  SIGNATURE_FIRST_OCTETS,
  SIGNATURE_GATES,
  SIGNATURE_TRANSPORTS,
  SIGNATURES,
  type Transport,
} from './signatures.js'
import { extended, SIGNATURE_OPENINGS } from '../../test/helpers/signature-openings.js'

const bytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))

/** Ports the gated signatures name, a few ordinary ones and high ports (RTP wants both above 1023). */
const PORTS = [21, 53, 69, 88, 123, 137, 138, 139, 161, 162, 389, 443, 500, 514, 601, 1194, 1521, 3268]
const port = fc.constantFrom(...PORTS, 4500, 6379, 6667, 11211, 40000, 50000)

/** Openings as they are, cut short, extended, or with one octet changed; and random payloads. */
const payload = fc.oneof(
  fc.constantFrom(...SIGNATURE_OPENINGS),
  fc.tuple(fc.constantFrom(...SIGNATURE_OPENINGS), fc.uint8Array({ maxLength: 40 })).map(extended),
  fc.tuple(fc.constantFrom(...SIGNATURE_OPENINGS), fc.nat(), fc.nat(255)).map(([b, i, v]) => {
    const c = b.slice()
    if (c.length > 0) c[i % c.length] = v
    return c
  }),
  fc
    .tuple(fc.constantFrom(...SIGNATURE_OPENINGS), fc.nat())
    .map(([b, n]) => b.subarray(0, n % (b.length + 1))),
  fc.uint8Array({ minLength: 1, maxLength: 200 }),
)

const TRANSPORTS: readonly Transport[] = ['tcp', 'udp']

describe('Needle', () => {
  /** The search it replaces: every start from 0 to the last at which the string ends within `limit`. */
  function naive(b: Uint8Array, s: string, limit: number): boolean {
    const end = Math.min(b.byteLength, limit) - s.length
    for (let i = 0; i <= end; i++) {
      let j = 0
      while (j < s.length && b[i + j] === s.charCodeAt(j)) j++
      if (j === s.length) return true
    }
    return false
  }

  it('finds a string within the limit exactly when a plain search does', () => {
    const text = fc.oneof(
      fc.constantFrom('<stream:stream', 'BitTorrent', ' NOTICE ', 'FTP', 'aab', 'abab', 'a', 'ssss'),
      fc.string({ minLength: 1, maxLength: 12, unit: fc.constantFrom('a', 'b', 's', ':', '<') }),
    )
    const hay = (s: string): fc.Arbitrary<Uint8Array> =>
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc
          .tuple(fc.array(fc.constantFrom(0x61, 0x62, 0x73, 0x3a, 0x3c), { maxLength: 80 }), fc.nat(90))
          .map(([a, at]) => {
            const out = Uint8Array.from(a)
            const planted = bytes(s)
            const i = Math.min(at, out.length)
            const joined = new Uint8Array(out.length + planted.length)
            joined.set(out.subarray(0, i))
            joined.set(planted, i)
            joined.set(out.subarray(i), i + planted.length)
            return joined
          }),
      )
    fc.assert(
      fc.property(
        text.chain((s) => fc.tuple(fc.constant(s), hay(s), fc.nat(320))),
        ([s, b, limit]) => {
          expect(new Needle(s).in(b, limit)).toBe(naive(b, s, limit))
        },
      ),
      { numRuns: 5000 },
    )
  })

  it('honours the limit and the end of the payload', () => {
    const n = new Needle('<stream:stream')
    const b = bytes('xxxxx<stream:stream')
    expect(n.in(b, 19)).toBe(true)
    expect(n.in(b, 18)).toBe(false)
    expect(n.in(b.subarray(0, 18), 256)).toBe(false)
    expect(n.in(new Uint8Array(0), 256)).toBe(false)
    expect(() => new Needle('')).toThrow()
  })
})

describe('signature gates', () => {
  it('every signature has a gate; a length field lies within the shortest payload', () => {
    expect(Object.keys(SIGNATURE_GATES).sort()).toEqual(Object.keys(SIGNATURES).sort())
    for (const [name, g] of Object.entries(SIGNATURE_GATES)) {
      if (g.length !== undefined) expect(g.length.at + g.length.size, name).toBeLessThanOrEqual(g.minLength)
      if (g.anchor !== undefined) expect(g.anchor.needle.length, name).toBeGreaterThan(0)
    }
  })

  it('admits by length field and anchor as the gate says', () => {
    const c = new AppCatalogue()
    const gated = (name: string, way: number, octet: number) =>
      c.gatedList(gatedIndex(way, 0, octet)).find((s) => c.entries[s.entry]!.signature === name)!
    const mongo = gated('mongodb', 0, 0x20)
    const m = new Uint8Array(0x20)
    m[0] = 0x20
    expect(gateAdmits(mongo, m, 0, 0x20)).toBe(true)
    m[0] = 0x21
    expect(gateAdmits(mongo, m, 0, 0x20)).toBe(false)
    // OpenVPN's length field is a TCP framing: not tested over UDP.
    const tcpVpn = gated('openvpn', 0, 0x00)
    expect(tcpVpn.lengthAt).toBe(0)
    expect(gated('openvpn', 2, 0x38).lengthAt).toBe(-1)
    const xmpp = gated('xmpp', 0, 0x3c)
    const text = (s: string): Uint8Array => bytes(s)
    expect(gateAdmits(xmpp, text('<?xml version'), 0, 13)).toBe(true)
    expect(gateAdmits(xmpp, text('  <stream:stream to'), 0, 19)).toBe(true)
    expect(gateAdmits(xmpp, text('  <stream:strea'), 0, 15)).toBe(false)
    expect(gateAdmits(xmpp, text('<?xm'), 0, 4)).toBe(false)
    // Within the payload only: the buffer beyond it does not count.
    expect(gateAdmits(xmpp, text('xx<stream:stream'), 0, 15)).toBe(false)
  })

  it('every opening matches some signature (the gates are checked against real matches)', () => {
    const unmatched = SIGNATURE_OPENINGS.filter(
      (b) =>
        !Object.values(SIGNATURES).some((sig) =>
          TRANSPORTS.some((t) =>
            PORTS.concat([4500, 6379, 6667, 11211, 40001]).some(
              (p) => sig(b, t, true, 40000, p) || sig(b, t, false, p, 40000),
            ),
          ),
        ),
    )
    expect(unmatched.map((b) => Buffer.from(b).toString('latin1'))).toEqual([])
  })

  it('a gate never excludes a payload its signature matches', () => {
    let matched = 0
    fc.assert(
      fc.property(payload, fc.boolean(), port, port, (b, toServer, sport, dport) => {
        for (const [name, sig] of Object.entries(SIGNATURES))
          for (const t of TRANSPORTS) {
            if (!sig(b, t, toServer, sport, dport)) continue
            matched++
            const g = SIGNATURE_GATES[name]!
            const way = `${t}-${toServer ? 'toServer' : 'toClient'}` as const
            expect(b.byteLength, `${name}: length`).toBeGreaterThanOrEqual(g.minLength)
            if (g.dir !== undefined)
              expect(toServer ? 'toServer' : 'toClient', `${name}: direction`).toBe(g.dir)
            if (g.ports !== undefined)
              expect(g.ports.includes(sport) || g.ports.includes(dport), `${name}: ports`).toBe(true)
            const first = g.first?.[way]
            if (first !== undefined) expect(first, `${name}: first octet on ${way}`).toContain(b[0])
            const l = g.length
            if (l !== undefined && (l.on === undefined || l.on === t)) {
              let v = 0
              for (let k = 0; k < l.size; k++) {
                const octet = b[l.at + (l.little === true ? l.size - 1 - k : k)]!
                v = v * 256 + octet
              }
              expect(v + l.add, `${name}: length field`).toBe(b.byteLength)
            }
            const a = g.anchor
            if (a !== undefined) {
              const text = Buffer.from(b).toString('latin1')
              expect(
                text.startsWith(a.prefix) || text.slice(0, a.limit).includes(a.needle),
                `${name}: anchor`,
              ).toBe(true)
            }
          }
      }),
      { numRuns: 4000 },
    )
    // The property was exercised by matches, not only by payloads that match nothing.
    expect(matched).toBeGreaterThan(1000)
  })

  it('the gated lists give the same first match as every signature of the transport in catalogue order', () => {
    const c = new AppCatalogue()
    const gp = c.gatePort
    fc.assert(
      fc.property(payload, fc.boolean(), port, port, (b, toServer, sport, dport) => {
        if (b.byteLength === 0) return
        for (const [t, full] of [
          ['tcp', c.tcpSignatures],
          ['udp', c.udpSignatures],
        ] as const) {
          const expected = full.find((s) => s.test(b, t, toServer, sport, dport))?.entry ?? NO_APP
          const way = (t === 'tcp' ? 0 : 2) | (toServer ? 0 : 1)
          const list = c.gatedList(gatedIndex(way, gp[sport]! | gp[dport]!, b[0]!))
          // At an offset in a larger buffer, as the packet buffer holds the payload.
          const buf = new Uint8Array(b.byteLength + 7)
          buf.set(b, 5)
          const got =
            list.find(
              (s) =>
                b.byteLength >= s.minLength &&
                gateAdmits(s, buf, 5, b.byteLength) &&
                s.test(b, t, toServer, sport, dport),
            )?.entry ?? NO_APP
          expect(got).toBe(expected)
        }
      }),
      { numRuns: 4000 },
    )
  })

  it('builds each list from the transports, first octets, directions and port gates', () => {
    const c = new AppCatalogue()
    for (const p of [69, 88, 123, 500, 4500, 1521, 11211]) expect(c.gatePort[p]).toBe(1)
    for (const p of [22, 53, 80, 443, 40000]) expect(c.gatePort[p]).toBe(0)
    const names = (way: number, gated: number, octet: number): string[] =>
      c.gatedList(gatedIndex(way, gated, octet)).map((s) => c.entries[s.entry]!.signature)
    WAYS.forEach((way, w) => {
      const t = way.startsWith('tcp') ? 'tcp' : 'udp'
      for (let octet = 0; octet < 256; octet++) {
        const open = names(w, 0, octet)
        const all = names(w, 1, octet)
        // Lists keep catalogue order and only add the port-gated signatures when a port is gated.
        expect(all.filter((n) => SIGNATURE_GATES[n]!.ports === undefined)).toEqual(open)
        for (const n of all) {
          expect(SIGNATURE_TRANSPORTS[n]).toContain(t)
          expect(SIGNATURE_FIRST_OCTETS[n]?.includes(octet) ?? true).toBe(true)
        }
      }
    })
    // A TLS record (0x16) over TCP to the server no longer tries MySQL's greeting nor BitTorrent's handshake.
    expect(names(0, 0, 0x16)).not.toContain('mysql')
    expect(names(0, 0, 0x16)).not.toContain('bittorrent')
    expect(names(1, 0, 19)).toContain('bittorrent')
  })
})
