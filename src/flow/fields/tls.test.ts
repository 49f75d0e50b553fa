// The `tls` group's record budget: the certificate strings take the room one IPFIX message leaves after
// the rest of the record, so a long SAN list (Google's 60 names) is exported whole when it fits, and
// otherwise cut after its last whole name; the computed length is exactly what writeTx writes, so the
// exporter never drops the record for being longer than announced.
import { describe, expect, it } from 'vitest'
import { BufferWriter } from '../../ipfix/record-writer.js'
import type { TlsTx } from '../../l7/tls.js'
import type { CertInfo } from '../../l7/x509.js'
import { TlsFields, tlsRecordParts } from './tls.js'

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

/** Exposes the group's protected record hooks. */
class Writer extends TlsFields {
  /** Octets writeTx writes for the variable-length part, after fitTx fitted it to `room`. */
  written(t: TlsTx, room: number): { announced: number; varPart: number } {
    const announced = tlsRecordParts(t, room).length
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
      expect(p.length).toBeLessThanOrEqual(room)
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

  it('announces exactly what it writes, at every room size', () => {
    const g = new Writer()
    for (const room of [0, 200, 700, 1000, 1432, 1452, 8952, 65515]) {
      for (const t of [tx(SAN), tx([]), tx(SAN, 128), { ...tx(SAN), certificate: undefined }]) {
        const { announced, varPart } = g.written(t, room)
        expect(varPart).toBe(announced)
      }
    }
  })
})
