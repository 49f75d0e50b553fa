/**
 * Field group `tls`: TLS and DTLS handshakes (RFC 8446, RFC 5246; DTLS RFC 6347 / RFC 9147; parsers in
 * src/l7/tls.ts and src/l7/dtls.ts), one record per handshake (template 276 IPv4 / 277 IPv6, see
 * ./l7-transactions.ts), on any port (content decides). A DTLS record has a DTLS version (0xfeff, 0xfefd,
 * 0xfefc) and a JA4 starting with 'd'. QUIC handshakes have their own group (./quic.ts) that writes these
 * same fields after the QUIC ones (TLS_TX_FIELDS, tlsRecordParts, writeTlsTx).
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
import { BufferWriter, type RecordWriter } from '../../ipfix/record-writer.js'
import type { TlsTx } from '../../l7/tls.js'
import type { CertInfo } from '../../l7/x509.js'
import { handshakeFingerprints } from '../../l7/tls-fingerprint.js'
import type { FieldList } from '../feature.js'
import { utf8Length } from '../../util/utf8.js'
import { clipAll, TransactionGroup } from './l7-transactions.js'

/** The fields of a TLS handshake, in record order. */
export const TLS_TX_FIELDS: FieldList = [
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

/**
 * At most this many list entries are exported per list (real hellos have far fewer); a record with a list
 * cut, here or for lack of room (TlsRecordParts.listCap), counts `tls_record_list_cut` in the group's summary.
 */
const MAX_LIST = 128

/** The first `cap` entries of `list` as a variable-length value of 2-octet (`size` 2) or 1-octet values. */
function writeList(w: RecordWriter, list: readonly number[], size: 1 | 2, cap: number): void {
  const n = Math.min(list.length, cap)
  const octets = n * size
  // Into the message buffer at once when it has the room (the prefix is one octet: at most 256 octets).
  if (w instanceof BufferWriter && octets < 255 && w.pos + 1 + octets <= w.limit) {
    const b = w.buf
    let p = w.pos
    b[p++] = octets
    if (size === 2)
      for (let i = 0; i < n; i++) {
        const v = list[i]!
        b[p++] = (v >> 8) & 0xff
        b[p++] = v & 0xff
      }
    else for (let i = 0; i < n; i++) b[p++] = list[i]! & 0xff
    w.pos = p
    return
  }
  // The RFC 7011 §7 length prefix, as RecordWriter.varlen writes it.
  if (octets < 255) w.u8(octets)
  else {
    w.u8(255)
    w.u16(octets)
  }
  if (size === 2) for (let i = 0; i < n; i++) w.u16(list[i]! & 0xffff)
  else for (let i = 0; i < n; i++) w.u8(list[i]! & 0xff)
}

/** Encoded size of a variable-length value of n octets (RFC 7011 §7). */
const varlenSize = (n: number): number => (n < 255 ? 1 + n : 3 + n)

/** Octets of the ClientHello strings (SNI, ALPN chosen and offered) together, as before the certificate. */
const HELLO_STRING_BUDGET = 600

/** The variable-length values of one TLS record, strings already fitted to the record's room. */
export interface TlsRecordParts {
  sni: string
  alpn: string
  offered: string
  ja3: Uint8Array
  ja3s: Uint8Array
  ja4: string
  /**
   * Entries kept of each hello list (cipher suites, extension types, groups, point formats, versions):
   * MAX_LIST, or fewer when a hostile hello's lists would not leave the record room.
   */
  listCap: number
  /** subjectCn, subjectO, issuerCn, issuerO, serial, SAN DNS names, sigAlg, keyAlg, subject, issuer. */
  cert: readonly string[]
  /**
   * The certificate fields with `cert` as their strings, encoded as writeTlsTx writes them: tlsSubjectCn to
   * flowtelTlsPublicKeyAlg, and flowtelTlsSubject and flowtelTlsIssuer (flowtelTlsChainLength between).
   */
  certFields: CertFields
}

/** A certificate's record fields before and after flowtelTlsChainLength, encoded (see certFields). */
type CertFields = readonly [Uint8Array, Uint8Array]

/** Fields no message can hold (more than 65535 octets): writing them sets the writer's overflow. */
const UNWRITABLE: CertFields = [new Uint8Array(65536), EMPTY]

/** Encodes the certificate fields of `c` with the strings `cert` (TlsRecordParts.cert order). */
function encodeCertFields(c: CertInfo | undefined, cert: readonly string[]): CertFields {
  let size = 8 + 8 + 4 + 2 * 3 + (c?.sha1.length ?? 0) + (c?.sha256.length ?? 0)
  for (const x of cert) size += 3 + utf8Length(x)
  const w = new BufferWriter(size)
  w.string(cert[0]!)
  w.string(cert[1]!)
  w.string(cert[2]!)
  w.string(cert[3]!)
  w.u64(c?.notBefore ?? 0) // signed64 seconds; certificates before 1970 are not a concern here
  w.u64(c?.notAfter ?? 0)
  w.u32(c?.keyLength ?? 0)
  w.string(cert[4]!)
  w.string(cert[5]!)
  w.varlen(c?.sha1 ?? EMPTY)
  w.varlen(c?.sha256 ?? EMPTY)
  w.string(cert[6]!)
  w.string(cert[7]!)
  const split = w.pos
  w.string(cert[8]!)
  w.string(cert[9]!)
  // A string past 65535 octets cannot be a variable-length value: the record cannot be written either way.
  if (w.overflow) return UNWRITABLE
  return [w.buf.subarray(0, split), w.buf.subarray(split, w.pos)]
}

/** A certificate's strings in record order (TlsRecordParts.cert), their UTF-8 size and their encoding. */
interface CertStrings {
  full: readonly string[]
  /** UTF-8 octets of all the strings. */
  octets: number
  fields: CertFields
  /** The strings and fields of the certificate cut to a budget of string octets, by budget (a few). */
  cuts: Map<number, { cert: readonly string[]; fields: CertFields }>
}

/** Budgets of cut certificate strings kept per certificate. */
const CUTS_KEPT = 8

/**
 * Kept with the certificate description: x509's cache hands out the same CertInfo for a certificate seen
 * before, so a repeated certificate's strings are joined, measured and encoded once.
 */
const certStringsOf = new WeakMap<CertInfo, CertStrings>()

function certStrings(c: CertInfo): CertStrings {
  let cs = certStringsOf.get(c)
  if (cs === undefined) {
    const full = [
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
    ]
    let octets = 0
    for (const x of full) octets += utf8Length(x)
    cs = { full, octets, fields: encodeCertFields(c, full), cuts: new Map() }
    certStringsOf.set(c, cs)
  }
  return cs
}

/** The certificate strings cut to `budget` octets (clipAll; the SAN list after its last whole name). */
function cutCert(
  c: CertInfo,
  cs: CertStrings,
  budget: number,
): { cert: readonly string[]; fields: CertFields } {
  let cut = cs.cuts.get(budget)
  if (cut === undefined) {
    const full = cs.full
    const cert = clipAll([...full], budget)
    const san = cert[5]!
    // Whole names only: a cut name would read as another (wrong) name.
    if (san.length < full[5]!.length && full[5]![san.length] !== ',')
      cert[5] = san.slice(0, Math.max(0, san.lastIndexOf(',')))
    cut = { cert, fields: encodeCertFields(c, cert) }
    if (cs.cuts.size >= CUTS_KEPT) cs.cuts.clear()
    cs.cuts.set(budget, cut)
  }
  return cut
}

/** The certificate strings of a handshake without a certificate, and its fields. */
const NO_CERT: readonly string[] = ['', '', '', '', '', '', '', '', '', '']
const NO_CERT_FIELDS = encodeCertFields(undefined, NO_CERT)

/** The offered ALPN protocols, comma separated. */
const offeredText = (list: readonly string[]): string =>
  list.length === 0 ? '' : list.length === 1 ? list[0]! : list.join(',')

/**
 * Fits the record's strings into `room` octets of variable-length fields (one message's worth after the
 * fixed fields): the ClientHello strings share HELLO_STRING_BUDGET, and the certificate strings share all
 * that is left, so a long SAN list takes the room the rest does not need instead of a fixed share. A SAN
 * list that still does not fit is cut after its last whole name. A hostile hello whose lists (up to
 * MAX_LIST entries each) and strings alone pass the room has its lists cut to fewer entries, then its
 * strings. The variable-length fields written with the parts (writeTlsTx) then take at most `room` octets
 * (when the digests and the fixed fields alone fit it), so such a record is cut, not dropped.
 */
export function tlsRecordParts(tx: TlsTx, room: number): TlsRecordParts {
  let sni = tx.sni
  let alpn = tx.alpn
  let offered = offeredText(tx.alpnOffered)
  // clipAll's own test (a UTF-16 code unit takes at most 3 UTF-8 octets), without building its array.
  if ((sni.length + alpn.length + offered.length) * 3 > HELLO_STRING_BUDGET)
    [sni = '', alpn = '', offered = ''] = clipAll([sni, alpn, offered], HELLO_STRING_BUDGET)
  const fp = handshakeFingerprints(tx, tx, tx.transport ?? 't')
  const ja3 = fp.ja3Octets
  const ja3s = fp.ja3sOctets
  const ja4 = fp.ja4
  const c = tx.certificate
  // The digests and session IDs, never cut.
  const digests =
    varlenSize(ja3.length) +
    varlenSize(ja3s.length) +
    varlenSize(Math.min(tx.clientSessionId.length, 32)) +
    varlenSize(Math.min(tx.serverSessionId.length, 32)) +
    varlenSize(c?.sha1.length ?? 0) +
    varlenSize(c?.sha256.length ?? 0)
  const known = c === undefined ? undefined : certStrings(c)
  // The certificate strings' length prefixes (at most 3 octets each; an empty string's is 1).
  const prefixes = known === undefined ? NO_CERT.length : 3 * known.full.length
  const certRoom = room - listsSize(tx, MAX_LIST) - digests - prefixes
  // Common case: everything fits even with the strings' largest UTF-8 sizes (3 octets a unit).
  const helloBound =
    varlenSize(sni.length * 3) +
    varlenSize(alpn.length * 3) +
    varlenSize(offered.length * 3) +
    varlenSize(ja4.length * 3)
  if (certRoom - helloBound >= (known?.octets ?? 0)) return parts(MAX_LIST)
  const str = (x: string): number => varlenSize(utf8Length(x))
  let used = str(sni) + str(alpn) + str(offered) + str(ja4)
  let cap = MAX_LIST
  let budget = certRoom - used
  if (budget < 0) {
    // A hostile hello: its lists (and, past them, its strings) are cut until the record has room for the
    // certificate strings' prefixes; the certificate strings then get what is left, if anything.
    const forLists = room - digests - prefixes - used
    while (cap > 0 && listsSize(tx, cap) > forLists) cap--
    const rest = room - listsSize(tx, cap) - digests - prefixes
    if (rest < used) {
      // Three prefixes of up to 3 octets for the three hello strings.
      ;[sni = '', alpn = '', offered = ''] = clipAll([sni, alpn, offered], Math.max(0, rest - str(ja4) - 9))
      used = str(sni) + str(alpn) + str(offered) + str(ja4)
    }
    budget = rest - used
  }
  if (c === undefined || known === undefined || known.octets <= budget) return parts(cap)
  const cut = cutCert(c, known, Math.max(0, budget))
  return parts(cap, cut.cert, cut.fields)

  /** The parts with the strings as fitted so far (the whole certificate unless told otherwise). */
  function parts(
    listCap: number,
    cert: readonly string[] = known?.full ?? NO_CERT,
    certFields: CertFields = known?.fields ?? NO_CERT_FIELDS,
  ): TlsRecordParts {
    return { sni, alpn, offered, ja3, ja3s, ja4, listCap, cert, certFields }
  }
}

/**
 * True when a hello list of `tx` has more entries than its record keeps (`listCap`, TlsRecordParts): the
 * record's list is incomplete, and the group counts `tls_record_list_cut`.
 */
export function helloListsCut(tx: TlsTx, listCap: number): boolean {
  return (
    tx.cipherSuites.length > listCap ||
    tx.extensionTypes.length > listCap ||
    tx.supportedGroups.length > listCap ||
    tx.ecPointFormats.length > listCap ||
    tx.supportedVersions.length > listCap
  )
}

/** Encoded size of the hello lists, each cut to its first `cap` entries. */
function listsSize(tx: TlsTx, cap: number): number {
  return (
    varlenSize(Math.min(tx.cipherSuites.length, cap) * 2) +
    varlenSize(Math.min(tx.extensionTypes.length, cap) * 2) +
    varlenSize(Math.min(tx.supportedGroups.length, cap) * 2) +
    varlenSize(Math.min(tx.ecPointFormats.length, cap)) +
    varlenSize(Math.min(tx.supportedVersions.length, cap) * 2)
  )
}

export class TlsFields extends TransactionGroup<TlsTx> {
  readonly name = 'tls'
  protected readonly countField = 'flowtelTlsTransactions'
  protected readonly txFields = TLS_TX_FIELDS
  protected readonly templateIds = [276, 277] as const

  constructor() {
    super(['tls', 'dtls'])
  }

  protected txTimeUs(tx: TlsTx, tsUs: number): number {
    return tx.clientHelloUs > 0 ? tx.clientHelloUs : tx.serverHelloUs > 0 ? tx.serverHelloUs : tsUs
  }

  /** The transaction being written and its parts (fitTx fits them to the room; writeTx writes them). */
  private partsTx: TlsTx | undefined
  private parts: TlsRecordParts | undefined

  protected override fitTx(tx: TlsTx, room: number): void {
    const parts = tlsRecordParts(tx, room)
    this.partsTx = tx
    this.parts = parts
    if (helloListsCut(tx, parts.listCap)) this.countAnomaly('tls_record_list_cut')
  }

  protected override doneTx(): void {
    this.partsTx = undefined
    this.parts = undefined
  }

  protected writeTx(tx: TlsTx, w: RecordWriter): void {
    const p = this.partsTx === tx && this.parts !== undefined ? this.parts : tlsRecordParts(tx, Infinity)
    writeTlsTx(tx, w, p)
  }
}

/** The first 32 octets of a session ID (all of a valid one, without a view made for it). */
const atMost32 = (b: Uint8Array): Uint8Array => (b.byteLength <= 32 ? b : b.subarray(0, 32))

/** Writes the TLS_TX_FIELDS of `tx`, with its variable-length parts `p` (tlsRecordParts). */
export function writeTlsTx(tx: TlsTx, w: RecordWriter, p: TlsRecordParts): void {
  w.u16(tx.clientVersion)
  w.u16(tx.serverVersion)
  w.u16(tx.cipherSuite)
  w.string(p.sni)
  w.string(p.alpn)
  writeList(w, tx.cipherSuites, 2, p.listCap)
  writeList(w, tx.extensionTypes, 2, p.listCap)
  writeList(w, tx.supportedGroups, 2, p.listCap)
  writeList(w, tx.ecPointFormats, 1, p.listCap)
  w.u16(tx.recordVersion)
  w.string(p.offered)
  writeList(w, tx.supportedVersions, 2, p.listCap)
  w.varlen(p.ja3)
  w.varlen(p.ja3s)
  w.string(p.ja4)
  w.u64(tx.setupUs)
  w.u8(tx.resumed)
  w.varlen(atMost32(tx.clientSessionId))
  w.varlen(atMost32(tx.serverSessionId))
  // subjectCn, subjectO, issuerCn, issuerO, validity, key length, serial, SAN, SHA-1, SHA-256, sigAlg,
  // keyAlg; chain length; subject, issuer.
  w.bytes(p.certFields[0])
  w.u8(Math.min(tx.chainLength, 255))
  w.bytes(p.certFields[1])
}
