// The direct DER reading of certificates (./x509-der.ts) against Node's X509Certificate (./x509.ts's OpenSSL
// path): whenever the direct reading answers, the description is the same; the certificates it declines go
// to OpenSSL. The fixtures are self-signed certificates made for this test (test/fixtures/x509/SOURCES.md);
// mutated copies (seeded random octet changes) check that a damaged certificate is either declined or read
// the way OpenSSL reads it (OpenSSL refuses some that a structure check alone would take: bad OIDs, broken
// extension contents).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { describeCertificate, describeUncached, describeWithOpenSsl, type CertInfo } from './x509.js'
import { plainCertFields } from './x509-der.js'

const FIXTURES = join(import.meta.dirname, '../../test/fixtures/x509')
const certs = new Map(
  readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.der'))
    .map((f) => [f, new Uint8Array(readFileSync(join(FIXTURES, f)))] as const),
)

/** Comparable form of a description (the fingerprints as hex). */
const comparable = (c: CertInfo | undefined): unknown =>
  c === undefined
    ? undefined
    : { ...c, sha1: Buffer.from(c.sha1).toString('hex'), sha256: Buffer.from(c.sha256).toString('hex') }

/** A small seeded generator (the mutations are the same on every run). */
function random(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    return s / 2 ** 32
  }
}

describe('x509 direct DER reading', () => {
  it('reads the plain fixtures as OpenSSL does', () => {
    const plain = ['rsa-san', 'ec256', 'ec384', 'ec521', 'rsa-far', 'rsa-serial-pad', 'rsa-serial-small']
    for (const name of plain) {
      const der = certs.get(`${name}.der`)!
      expect(plainCertFields(der), name).toBeDefined()
      expect(comparable(describeUncached(der)), name).toEqual(comparable(describeWithOpenSsl(der)))
    }
    const san = describeUncached(certs.get('rsa-san.der')!)!
    expect(san.subjectO).toBe('Example\\, Inc.')
    expect(san.sanDns).toEqual(['www.example.com', '*.example.com'])
    expect(describeUncached(certs.get('ec521.der')!)!.keyLength).toBe(521)
    expect(describeUncached(certs.get('rsa-serial-pad.der')!)!.serial).toBe('80FF')
    expect(describeUncached(certs.get('rsa-serial-small.der')!)!.serial).toBe('05')
  })

  it('declines what only OpenSSL prints (non-ASCII or escaped names, other SAN names, other keys)', () => {
    for (const name of ['rsa-utf8', 'rsa-escape', 'rsa-dirname', 'ed25519']) {
      const der = certs.get(`${name}.der`)!
      expect(plainCertFields(der), name).toBeUndefined()
      // The caller then asks OpenSSL, whose answer stands.
      expect(comparable(describeUncached(der)), name).toEqual(comparable(describeWithOpenSsl(der)))
    }
  })

  it('reads a damaged certificate as OpenSSL does, or declines it', () => {
    const next = random(20261127)
    let read = 0
    for (const [name, der] of certs) {
      for (let k = 0; k < 400; k++) {
        const m = der.slice()
        const changes = 1 + Math.floor(next() * 3)
        for (let j = 0; j < changes; j++) {
          const i = Math.floor(next() * m.length)
          m[i] = next() < 0.5 ? m[i]! ^ (1 << Math.floor(next() * 8)) : Math.floor(next() * 256)
        }
        if (plainCertFields(m) === undefined) continue
        read++
        expect(comparable(describeUncached(m)), `${name} mutation ${k}`).toEqual(
          comparable(describeWithOpenSsl(m)),
        )
      }
    }
    // Most single changes land in signatures, keys and names the direct reading still takes.
    expect(read).toBeGreaterThan(1000)
  })

  it('gives the same description from the cache as on first sight', () => {
    for (const [name, der] of certs) {
      const first = comparable(describeCertificate(der.slice()))
      expect(comparable(describeCertificate(der.slice())), name).toEqual(first)
      expect(first, name).toEqual(comparable(describeWithOpenSsl(der)))
    }
  })
})
