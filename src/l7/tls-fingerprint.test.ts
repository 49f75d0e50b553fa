// JA3, JA3S and JA4 of a real handshake, checked against Arkime's values for the same capture
// (arkime tests/pcap/tls13.pcap: ja3 4826a90e…, ja3s b8a8031b…, ja4 t00d1815h2_…), plus GREASE handling
// and the edge cases of the JA4 specification (no SNI, no ALPN, non-alphanumeric ALPN, empty lists).
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { probeRecords } from '../../test/helpers/probe-run.js'
import fc from 'fast-check'
import {
  fingerprintCacheFootprint,
  handshakeFingerprints,
  isGrease,
  ja3,
  ja3s,
  ja4,
  type ClientHelloFacts,
  type ServerHelloFacts,
} from './tls-fingerprint.js'

const hello: ClientHelloFacts = {
  clientVersion: 0x0303,
  cipherSuites: [0x0a0a, 0x1301, 0x1302, 0xc02f],
  extensionTypes: [0x1a1a, 0, 16, 10, 13, 43],
  supportedGroups: [0x2a2a, 29, 23],
  ecPointFormats: [0],
  supportedVersions: [0x3a3a, 0x0304, 0x0303],
  signatureAlgorithms: [0x0403, 0x0804],
  sni: 'example.com',
  alpnOffered: ['h2', 'http/1.1'],
}

describe('tls fingerprints', () => {
  it('agree with Arkime on a real TLS 1.3 (draft 18) handshake', async () => {
    const file = join(import.meta.dirname, '../../test/fixtures/pcap/app/arkime-tls13.pcap')
    const { records } = await probeRecords([file], { fields: ['tls'] })
    const tx = records.find((r) => 'tlsSni' in r)
    expect(tx).toMatchObject({
      tlsJa3Fingerprint: '4826a90ec2daf4f7b4b64cc1c8bd343b',
      flowtelTlsJa3s: 'b8a8031b301aef7618403061e9f33065',
      flowtelTlsJa4: 't00d1815h2_a30347de7a75_2a77702ff8e0',
    })
  })

  it('leave GREASE values out (RFC 8701)', () => {
    expect([0x0a0a, 0xfafa, 0x1a1a].every(isGrease)).toBe(true)
    expect([0x0a0b, 0x1301, 0x0a1a].some(isGrease)).toBe(false)
    expect(ja3(hello).text).toBe('771,4865-4866-49199,0-16-10-13-43,29-23,0')
    expect(ja4(hello).raw).toBe('t13d0305h2_1301,1302,c02f_000a,000d,002b_0403,0804')
  })

  it('follow the JA4 rules for missing SNI and ALPN, odd ALPN and empty lists', () => {
    const bare = { ...hello, sni: '', alpnOffered: [], signatureAlgorithms: [], extensionTypes: [0, 16] }
    // Only SNI and ALPN: nothing left to hash in the third part.
    expect(ja4(bare).text).toMatch(/^t13i030200_[0-9a-f]{12}_000000000000$/)
    expect(ja4({ ...hello, alpnOffered: ['\u00ffx\u00fe'] }).text.slice(0, 10)).toBe('t13d0305fe')
    expect(ja4({ ...hello, cipherSuites: [] }).text.split('_')[1]).toBe('000000000000')
    expect(
      ja3s({ serverLegacyVersion: 0x0303, cipherSuite: 0xc02f, serverExtensionTypes: [65281, 0x0a0a, 11] })
        .text,
    ).toBe('771,49199,65281-11')
    expect(ja3({ ...hello, clientVersion: 0 }).hash).toBe('')
  })

  it('memoised per handshake: the same as ja3, ja3s and ja4 for any hello, repeated or not', () => {
    // Small value ranges so that hellos repeat and differ in one element only (what the memo must tell apart).
    const list = fc.array(fc.constantFrom(0, 10, 16, 0x0a0a, 0xfafa, 0x1301, 0x0304, 0xc02f), {
      maxLength: 6,
    })
    const facts = fc.record({
      clientVersion: fc.constantFrom(0, 0x0303, 0xfefd),
      cipherSuites: list,
      extensionTypes: list,
      supportedGroups: list,
      ecPointFormats: fc.array(fc.constantFrom(0, 1), { maxLength: 2 }),
      supportedVersions: list,
      signatureAlgorithms: list,
      sni: fc.constantFrom('', 'a.example'),
      alpnOffered: fc.array(fc.constantFrom('h2', 'h3', '', 'http/1.1'), { maxLength: 2 }),
      serverLegacyVersion: fc.constantFrom(0, 0x0303),
      cipherSuite: fc.constantFrom(0x1301, 0xc02f),
      serverExtensionTypes: list,
      transport: fc.constantFrom('t' as const, 'q' as const, 'd' as const),
    })
    fc.assert(
      // A hello, and hellos that differ from it in one field each: all asked twice, interleaved.
      fc.property(facts, facts, (a, b) => {
        const variants = [a, ...Object.keys(a).map((k) => ({ ...a, [k]: b[k as keyof typeof b] }))]
        for (const h of [...variants, ...variants]) {
          const c: ClientHelloFacts & ServerHelloFacts = h
          const fp = handshakeFingerprints(c, c, h.transport)
          expect(fp).toEqual({
            ja3: ja3(c).hash,
            ja3s: ja3s(c).hash,
            ja4: ja4(c, h.transport).text,
            ja3Octets: new Uint8Array(Buffer.from(ja3(c).hash, 'hex')),
            ja3sOctets: new Uint8Array(Buffer.from(ja3s(c).hash, 'hex')),
          })
        }
      }),
      { numRuns: 200 },
    )
  })

  it('hands out the memoised fingerprints again for handshakes that alternate, GREASE values aside', () => {
    const server: ServerHelloFacts = {
      serverLegacyVersion: 0x0303,
      cipherSuite: 0x1301,
      serverExtensionTypes: [43],
    }
    // Pairs of stacks that differ in one cipher suite, asked in turn, with fresh GREASE values each time.
    for (let i = 0; i < 300; i++) {
      const stacks = [0, 1].map((j) => ({ ...hello, cipherSuites: [0x1301, 0x1000 + 2 * i + j] }))
      const first = stacks.map((c) => handshakeFingerprints(c, server))
      expect(first[0]).not.toEqual(first[1])
      for (let round = 0; round < 3; round++)
        stacks.forEach((c, j) => {
          const grease = 0x0a0a + 0x1010 * ((round + j) % 16)
          const again = {
            ...c,
            cipherSuites: [grease, ...c.cipherSuites],
            extensionTypes: [...c.extensionTypes, grease],
          }
          expect(handshakeFingerprints(again, server)).toBe(first[j])
        })
    }
  })

  it('keep the fingerprint and digest caches small for hellos of thousands of values, same results', () => {
    // Found by the probe fuzz campaign (a crafted capture of 1500 connections, each a 64 KiB ClientHello of
    // 32000 distinct cipher suites): the caches kept each hello's key and JA3/JA4 strings, 350 000
    // characters and 32 000 values a hello, and the probe grew to 930 MB (4096 such hellos: 1.3 GB).
    const server: ServerHelloFacts = {
      serverLegacyVersion: 0x0303,
      cipherSuite: 0x1301,
      serverExtensionTypes: [],
    }
    const before = fingerprintCacheFootprint()
    for (let i = 0; i < 20; i++) {
      const c = {
        ...hello,
        cipherSuites: Array.from({ length: 32000 }, (_, j) => ((i + j) * 7 + 1) & 0xfeff),
      }
      const fp = handshakeFingerprints(c, server)
      expect([fp.ja3, fp.ja3s, fp.ja4]).toEqual([ja3(c).hash, ja3s(server).hash, ja4(c).text])
    }
    const after = fingerprintCacheFootprint()
    expect(after.memoValues - before.memoValues).toBe(0)
    expect(after.digestChars - before.digestChars).toBeLessThan(20 * 1000)
  })
})
