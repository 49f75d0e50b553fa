/**
 * Field group `tls`: TLS handshakes (RFC 8446, RFC 5246; parser in src/l7/tls.ts), one record per
 * handshake (template 276 IPv4 / 277 IPv6, see ./l7-transactions.ts), on any port (content decides).
 *
 * Elements: Flowmon (PEN 39499) tlsClientVersion (ClientHello legacy_version), tlsServerVersion (the
 * negotiated version: supported_versions of the ServerHello, else its legacy_version), tlsCipherSuite (the
 * server's choice), tlsSni, tlsAlpn (the server's choice), tlsCipherSuites, tlsExtensionTypes,
 * tlsEllipticCurves (supported groups) and tlsEcPointFormats (lists as 2-octet / 1-octet values in hello
 * order), tlsJa3Fingerprint (the 16-octet JA3 MD5), tlsSetupTime (ClientHello to the client's first
 * encrypted record, µs), tlsClientSessionId and tlsServerSessionId; Flowtel flowtelTlsRecordVersion,
 * flowtelTlsAlpnOffered, flowtelTlsSupportedVersions, flowtelTlsJa3s (MD5), flowtelTlsJa4 (text) and
 * flowtelTlsResumed; of the server certificate (TLS <= 1.2, src/l7/x509.ts): tlsSubjectCn, tlsSubjectOn,
 * tlsIssuerCn, tlsValidityNotBefore/After (seconds), tlsPublicKeyLength, and Flowtel's issuer O, serial, SAN
 * DNS names, SHA-1/SHA-256 fingerprints, signature and key algorithms, chain length, subject and issuer DN. The flow record gets
 * flowtelTlsTransactions. Off by default.
 */
import type { RecordWriter } from '../../ipfix/record-writer.js'
import type { TlsTx } from '../../l7/tls.js'
import { ja3, ja3s, ja4 } from '../../l7/tls-fingerprint.js'
import type { FieldList } from '../feature.js'
import { clipAll, TransactionGroup } from './l7-transactions.js'

const TX_FIELDS: FieldList = [
  ['tlsClientVersion'],
  ['tlsServerVersion'],
  ['tlsCipherSuite'],
  ['tlsSni'],
  ['tlsAlpn'],
  ['tlsCipherSuites'],
  ['tlsExtensionTypes'],
  ['tlsEllipticCurves'],
  ['tlsEcPointFormats'],
  ['flowtelTlsRecordVersion'],
  ['flowtelTlsAlpnOffered'],
  ['flowtelTlsSupportedVersions'],
  ['tlsJa3Fingerprint'],
  ['flowtelTlsJa3s'],
  ['flowtelTlsJa4'],
  ['tlsSetupTime'],
  ['flowtelTlsResumed'],
  ['tlsClientSessionId'],
  ['tlsServerSessionId'],
  ['tlsSubjectCn'],
  ['tlsSubjectOn'],
  ['tlsIssuerCn'],
  ['flowtelTlsIssuerO'],
  ['tlsValidityNotBefore'],
  ['tlsValidityNotAfter'],
  ['tlsPublicKeyLength'],
  ['flowtelTlsSerial'],
  ['flowtelTlsSanDns'],
  ['flowtelTlsCertSha1'],
  ['flowtelTlsCertSha256'],
  ['flowtelTlsSignatureAlg'],
  ['flowtelTlsPublicKeyAlg'],
  ['flowtelTlsChainLength'],
  ['flowtelTlsSubject'],
  ['flowtelTlsIssuer'],
]

const EMPTY = new Uint8Array(0)

/** At most this many list entries are exported per list (real hellos have far fewer). */
const MAX_LIST = 128

function u16s(list: readonly number[]): Uint8Array {
  const n = Math.min(list.length, MAX_LIST)
  const out = new Uint8Array(n * 2)
  for (let i = 0; i < n; i++) {
    out[2 * i] = list[i]! >> 8
    out[2 * i + 1] = list[i]! & 0xff
  }
  return out
}

export class TlsFields extends TransactionGroup<TlsTx> {
  readonly name = 'tls'
  protected readonly countField = 'flowtelTlsTransactions'
  protected readonly txFields = TX_FIELDS
  protected readonly templateIds = [276, 277] as const

  constructor() {
    super('tls')
  }

  protected txTimeUs(tx: TlsTx, tsUs: number): number {
    return tx.clientHelloUs > 0 ? tx.clientHelloUs : tx.serverHelloUs > 0 ? tx.serverHelloUs : tsUs
  }

  protected writeTx(tx: TlsTx, w: RecordWriter): void {
    const [sni, alpn, offered] = clipAll([tx.sni, tx.alpn, tx.alpnOffered.join(',')], 600)
    w.u16(tx.clientVersion)
    w.u16(tx.serverVersion)
    w.u16(tx.cipherSuite)
    w.string(sni!)
    w.string(alpn!)
    w.varlen(u16s(tx.cipherSuites))
    w.varlen(u16s(tx.extensionTypes))
    w.varlen(u16s(tx.supportedGroups))
    w.varlen(Uint8Array.from(tx.ecPointFormats.slice(0, MAX_LIST)))
    w.u16(tx.recordVersion)
    w.string(offered!)
    w.varlen(u16s(tx.supportedVersions))
    const j3 = ja3(tx).hash
    const j3s = ja3s(tx).hash
    w.varlen(j3 === '' ? EMPTY : Buffer.from(j3, 'hex'))
    w.varlen(j3s === '' ? EMPTY : Buffer.from(j3s, 'hex'))
    w.string(ja4(tx).text)
    w.u64(tx.setupUs)
    w.u8(tx.resumed)
    w.varlen(tx.clientSessionId.subarray(0, 32))
    w.varlen(tx.serverSessionId.subarray(0, 32))
    const c = tx.certificate
    const [subjectCn, subjectO, issuerCn, issuerO, serial, san, sigAlg, keyAlg, subject, issuer] = clipAll(
      c === undefined
        ? ['', '', '', '', '', '', '', '', '', '']
        : [
            c.subjectCn,
            c.subjectO,
            c.issuerCn,
            c.issuerO,
            c.serial,
            c.sanDns.join(','),
            c.sigAlg,
            c.keyAlg,
            c.subject,
            c.issuer,
          ],
      500,
    )
    w.string(subjectCn!)
    w.string(subjectO!)
    w.string(issuerCn!)
    w.string(issuerO!)
    w.u64(c?.notBefore ?? 0) // signed64 seconds; certificates before 1970 are not a concern here
    w.u64(c?.notAfter ?? 0)
    w.u32(c?.keyLength ?? 0)
    w.string(serial!)
    w.string(san!)
    w.varlen(c?.sha1 ?? EMPTY)
    w.varlen(c?.sha256 ?? EMPTY)
    w.string(sigAlg!)
    w.string(keyAlg!)
    w.u8(Math.min(tx.chainLength, 255))
    w.string(subject!)
    w.string(issuer!)
  }
}
