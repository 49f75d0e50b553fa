// The `tls` group's record budget: the certificate strings take the room one IPFIX message leaves after
// the rest of the record, so a long SAN list (Google's 60 names) is exported whole when it fits, and
// otherwise cut after its last whole name; the computed length is exactly what writeTx writes, so the
// exporter never drops the record for being longer than announced.
import { describe, expect, it } from 'vitest'
import { BufferWriter } from '../../ipfix/record-writer.js'
import type { TlsTx } from '../../l7/tls.js'
import type { CertInfo } from '../../l7/x509.js'
import { TlsFields, tlsRecordParts, writeTlsTx, type TlsRecordParts } from './tls.js'

const SAN = Array.from({ length: 120 }, (_, i) => `host-${i}.cdn.example.com`)

function cert(san: string[]): CertInfo {
  return {
    subjectCn: '*.example.com',
    subjectO: 'Example Inc',
    issuerCn: 'Example CA G2',
    issuerO: 'Example Trust',
    serial: '325D8297987D50B0',
    notBefore: 1378726355,
    notAfter: 1410262355,
    keyAlg: 'rsaEncryption',
    keyLength: 2048,
    sigAlg: 'sha256WithRSAEncryption',
    sanDns: san,
    sha1: new Uint8Array(20).fill(1),
    sha256: new Uint8Array(32).fill(2),
    subject: 'CN=*.example.com,O=Example Inc,L=Mountain View,ST=California,C=US',
    issuer: 'CN=Example CA G2,O=Example Trust,C=US',
  }
}

function tx(san: string[], suites = 30): TlsTx {
  return {
    recordVersion: 0x0301,
    clientVersion: 0x0303,
    serverVersion: 0x0303,
    sni: 'www.example.com',
    alpnOffered: ['h2', 'http/1.1'],
    alpn: 'h2',
    cipherSuites: Array.from({ length: suites }, (_, i) => 0xc000 + i),
    cipherSuite: 0xc02f,
    extensionTypes: [0, 10, 11, 13, 16, 23, 35, 65281],
    supportedGroups: [29, 23, 24],
    ecPointFormats: [0],
    supportedVersions: [],
    sessionIdLength: 32,
    clientHelloUs: 1,
    serverHelloUs: 2,
    signatureAlgorithms: [0x0403, 0x0804],
    serverLegacyVersion: 0x0303,
    serverExtensionTypes: [65281, 16],
    clientSessionId: new Uint8Array(32).fill(3),
    serverSessionId: new Uint8Array(32).fill(4),
    ticketOffered: false,
    pskOffered: false,
    resumed: 0,
    setupUs: 1234,
    certificate: cert(san),
    chainLength: 3,
  }
}

const varlenSize = (n: number): number => (n < 255 ? 1 + n : 3 + n)
const utf8 = (s: string): number => varlenSize(Buffer.byteLength(s, 'utf8'))

/** The variable-length part of the record of `t` with these parts, measured with Buffer. */
function varLength(t: TlsTx, p: TlsRecordParts): number {
  const lists = [t.cipherSuites, t.extensionTypes, t.supportedGroups, t.supportedVersions]
  return (
    [p.sni, p.alpn, p.offered, p.ja4, ...p.cert].reduce((n, s) => n + utf8(s), 0) +
    lists.reduce((n, l) => n + varlenSize(2 * Math.min(l.length, p.listCap)), 0) +
    varlenSize(Math.min(t.ecPointFormats.length, p.listCap)) +
    varlenSize(p.ja3.length) +
    varlenSize(p.ja3s.length) +
    varlenSize(Math.min(t.clientSessionId.length, 32)) +
    varlenSize(Math.min(t.serverSessionId.length, 32)) +
    varlenSize(t.certificate?.sha1.length ?? 0) +
    varlenSize(t.certificate?.sha256.length ?? 0)
  )
}

/** Exposes the group's protected record hooks. */
class Writer extends TlsFields {
  /** Octets writeTx writes for the variable-length part, after fitTx fitted it to `room`. */
  written(t: TlsTx, room: number): { announced: number; varPart: number } {
    const announced = varLength(t, tlsRecordParts(t, room))
    this.fitTx(t, room)
    const w = new BufferWriter(65535)
    this.writeTx(t, w)
    this.doneTx()
    // The fixed-length fields of the TLS part: 3 u16, recordVersion u16, setup u64, resumed u8, validity
    // 2 u64, key length u32, chain length u8.
    return { announced, varPart: w.pos - (4 * 2 + 8 + 1 + 16 + 4 + 1) }
  }
}

describe('tls record budget', () => {
  it('exports the whole SAN list when the message has room for it', () => {
    const p = tlsRecordParts(tx(SAN), 65535 - 100)
    expect(p.cert[5]).toBe(SAN.join(','))
    expect(p.cert[8]).toBe(cert(SAN).subject)
  })

  it('cuts a SAN list that does not fit after its last whole name, keeping the other strings whole', () => {
    for (const room of [1300, 1000, 700]) {
      const p = tlsRecordParts(tx(SAN), room)
      expect(varLength(tx(SAN), p)).toBeLessThanOrEqual(room)
      const names = p.cert[5]!.split(',')
      expect(names.length).toBeGreaterThan(5)
      expect(names.length).toBeLessThan(SAN.length)
      expect(names).toEqual(SAN.slice(0, names.length))
      expect([p.cert[0], p.cert[8], p.cert[9], p.sni]).toEqual([
        '*.example.com',
        cert(SAN).subject,
        cert(SAN).issuer,
        'www.example.com',
      ])
    }
    // More room, more names.
    const n = (room: number): number => tlsRecordParts(tx(SAN), room).cert[5]!.split(',').length
    expect(n(1300)).toBeGreaterThan(n(1000))
  })

  it('writes what the parts measure, within the room when the fixed parts leave any', () => {
    const g = new Writer()
    const nonAscii = { ...tx(SAN), sni: 'b\u00fccher.example', alpnOffered: ['h2', '\u00e9'.repeat(150)] }
    for (const room of [0, 200, 700, 1000, 1432, 1452, 8952, 65515]) {
      for (const t of [tx(SAN), tx([]), tx(SAN, 128), { ...tx(SAN), certificate: undefined }, nonAscii]) {
        const { announced, varPart } = g.written(t, room)
        expect(varPart).toBe(announced)
        if (room >= 700) expect(varPart).toBeLessThanOrEqual(room)
      }
    }
  })

  it("cuts a hostile hello's lists, then its strings, so that its record still fits the message", () => {
    const g = new Writer()
    const many = (n: number): number[] => Array.from({ length: n }, (_, i) => 0x0a0a + i)
    const hostile = (withCert: boolean): TlsTx => ({
      ...tx(SAN),
      cipherSuites: many(2000),
      extensionTypes: many(1200),
      supportedGroups: many(300),
      ecPointFormats: many(300).map((v) => v & 0xff),
      supportedVersions: many(300),
      sni: 's'.repeat(2000),
      alpnOffered: Array.from({ length: 300 }, (_, i) => `proto-${i}`),
      ...(withCert ? {} : { certificate: undefined }),
    })
    for (const withCert of [true, false])
      for (const room of [1432, 1000, 700]) {
        const t = hostile(withCert)
        const p = tlsRecordParts(t, room)
        expect(varLength(t, p)).toBeLessThanOrEqual(room)
        expect(p.listCap).toBeLessThan(128)
        // The server name keeps a share of what is left (the lists go first).
        expect(p.sni.length).toBeGreaterThan(0)
        const { announced, varPart } = g.written(t, room)
        expect(varPart).toBe(announced)
        expect(varPart).toBeLessThanOrEqual(room)
      }
    // An ordinary hello keeps its whole lists.
    expect(tlsRecordParts(tx(SAN), 1432).listCap).toBe(128)
  })

  it('keeps every string whole when the record fits, whatever the strings are made of', () => {
    for (const sni of ['www.example.com', '\u00e9'.repeat(100), 'x'.repeat(190)]) {
      const t = { ...tx(SAN.slice(0, 10)), sni }
      const p = tlsRecordParts(t, 1400)
      expect([p.sni, p.alpn, p.offered, p.cert[5]]).toEqual([
        sni,
        'h2',
        'h2,http/1.1',
        SAN.slice(0, 10).join(','),
      ])
      expect(p.cert).toEqual([
        '*.example.com',
        'Example Inc',
        'Example CA G2',
        'Example Trust',
        '325D8297987D50B0',
        SAN.slice(0, 10).join(','),
        'sha256WithRSAEncryption',
        'rsaEncryption',
        cert(SAN).subject,
        cert(SAN).issuer,
      ])
    }
  })

  it('writes the certificate fields as the field-by-field encoding of the fitted strings', () => {
    // The certificate part of the record, field by field (TLS_TX_FIELDS from tlsSubjectCn on).
    const reference = (t: TlsTx, p: TlsRecordParts): Uint8Array => {
      const w = new BufferWriter(65535)
      const c = t.certificate
      const s = p.cert
      for (const x of s.slice(0, 4)) w.string(x)
      w.u64(c?.notBefore ?? 0)
      w.u64(c?.notAfter ?? 0)
      w.u32(c?.keyLength ?? 0)
      w.string(s[4]!)
      w.string(s[5]!)
      w.varlen(c?.sha1 ?? new Uint8Array(0))
      w.varlen(c?.sha256 ?? new Uint8Array(0))
      w.string(s[6]!)
      w.string(s[7]!)
      w.u8(Math.min(t.chainLength, 255))
      w.string(s[8]!)
      w.string(s[9]!)
      return w.buf.subarray(0, w.pos)
    }
    const odd = {
      ...cert(SAN),
      subjectO: 'M\u00fcller & S\u00f6hne \u{1f600}',
      issuer: 'CN=\ud800x',
      serial: '',
    }
    const cases: TlsTx[] = [
      tx(SAN),
      tx([]),
      { ...tx(SAN), certificate: undefined },
      { ...tx(SAN), certificate: odd, chainLength: 300 },
    ]
    for (const t of cases)
      for (const room of [400, 1000, 1385, 65515]) {
        const p = tlsRecordParts(t, room)
        const w = new BufferWriter(65535)
        writeTlsTx(t, w, p)
        const want = reference(t, p)
        expect(Buffer.from(w.buf.subarray(w.pos - want.byteLength, w.pos))).toEqual(Buffer.from(want))
      }
  })
})
