/**
 * @module l7/x509
 * What a troubleshooter needs of an X.509 certificate (RFC 5280) seen in a TLS <= 1.2 handshake: subject
 * and issuer (RFC 4514 order, as Zeek's x509.log prints them) with their CN and O, serial, validity,
 * public-key and signature algorithms (OpenSSL names), key length, SAN DNS names, SHA-1 and SHA-256
 * fingerprints. Parsing is Node's own (crypto.X509Certificate, OpenSSL), but for certificates whose every
 * part has one plain reading (./x509-der.ts: printable names, RSA or P-256/384/521 keys, DNS and IP alt
 * names...), which are read straight from the DER to the same description: OpenSSL 3 takes 0.2-1 ms per
 * certificate, most of it decoding the public key. The signature algorithm OID is always read from the DER
 * here, through a bounded walk. Anything unparsable returns undefined.
 *
 * Servers send the same certificate to every client, so the descriptions of the last CACHE_SIZE distinct
 * certificates are kept (keyed by a sample of the DER, confirmed by comparing all of it): a repeated
 * certificate costs a hash of 64 bytes and one memcmp instead of an OpenSSL parse and two digests.
 */
import { X509Certificate } from 'node:crypto'
import { plainCertFields, type PlainCertFields } from './x509-der.js'

export interface CertInfo {
  subject: string
  issuer: string
  subjectCn: string
  subjectO: string
  issuerCn: string
  issuerO: string
  /** Upper-case hex, as OpenSSL and Zeek print it. */
  serial: string
  /** Seconds since the epoch. */
  notBefore: number
  notAfter: number
  keyAlg: string
  keyLength: number
  sigAlg: string
  sanDns: string[]
  sha1: Uint8Array
  sha256: Uint8Array
}

const SIG_ALGS: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.113549.1.1.10': 'rsassaPss',
  '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption',
  '1.2.840.113549.1.1.12': 'sha384WithRSAEncryption',
  '1.2.840.113549.1.1.13': 'sha512WithRSAEncryption',
  '1.2.840.113549.1.1.14': 'sha224WithRSAEncryption',
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1',
  '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
  '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384',
  '1.2.840.10045.4.3.4': 'ecdsa-with-SHA512',
  '1.2.840.10040.4.3': 'dsaWithSHA1',
  '2.16.840.1.101.3.4.3.2': 'dsa_with_SHA256',
  '1.3.101.112': 'ED25519',
  '1.3.101.113': 'ED448',
}

const KEY_ALGS: Record<string, string> = {
  rsa: 'rsaEncryption',
  'rsa-pss': 'rsassaPss',
  ec: 'id-ecPublicKey',
  dsa: 'dsaEncryption',
  ed25519: 'ED25519',
  ed448: 'ED448',
  dh: 'dhKeyAgreement',
}

const CURVE_BITS: Record<string, number> = {
  prime256v1: 256,
  secp256k1: 256,
  secp384r1: 384,
  secp521r1: 521,
  secp224r1: 224,
  prime192v1: 192,
}

/** Header of the DER element at `o`: [content start, content end], or undefined when it does not fit. */
function element(b: Uint8Array, o: number, end: number): [number, number] | undefined {
  if (o + 2 > end) return undefined
  let len = b[o + 1]!
  let p = o + 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n === 0 || n > 4 || p + n > end) return undefined
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + b[p + i]!
    p += n
  }
  return p + len <= end ? [p, p + len] : undefined
}

/** signatureAlgorithm of Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }. */
function signatureOid(der: Uint8Array): string {
  const cert = element(der, 0, der.byteLength)
  if (cert === undefined || der[0] !== 0x30) return ''
  const tbs = element(der, cert[0], cert[1])
  if (tbs === undefined) return ''
  const alg = element(der, tbs[1], cert[1])
  if (alg === undefined || der[tbs[1]] !== 0x30) return ''
  const oid = element(der, alg[0], alg[1])
  if (oid === undefined || der[alg[0]] !== 0x06) return ''
  const [a, z] = oid
  const parts: number[] = []
  let v = 0
  for (let i = a; i < z; i++) {
    v = v * 128 + (der[i]! & 0x7f)
    if ((der[i]! & 0x80) === 0) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80)
      else parts.push(v)
      v = 0
    }
  }
  return parts.join('.')
}

/** `C=US\nO=Example\nCN=host` (Node's order) → `CN=host,O=Example,C=US` and its CN and O. */
function name(text: string): { dn: string; cn: string; o: string } {
  const rdns = text.split('\n').filter((l) => l !== '')
  const value = (k: string): string => rdns.find((l) => l.startsWith(k + '='))?.slice(k.length + 1) ?? ''
  return { dn: rdns.reverse().join(','), cn: value('CN'), o: value('O') }
}

const hexBytes = (fp: string): Uint8Array => Buffer.from(fp.replace(/:/g, ''), 'hex')

const CACHE_SIZE = 1024
const cache = new Map<number, { der: Buffer; info: CertInfo | undefined }>()

/** FNV-1a over the length and 64 bytes spread over the DER (the cache key; equality is checked in full). */
function sampleHash(der: Uint8Array): number {
  const n = der.byteLength
  let h = (0x811c9dc5 ^ n) >>> 0
  const step = n > 64 ? Math.floor(n / 64) : 1
  for (let i = 0; i < n; i += step) h = Math.imul(h ^ der[i]!, 0x01000193)
  return h >>> 0
}

/**
 * The description of the DER certificate `der` (undefined when it does not parse). The result may be shared
 * with earlier calls for the same certificate: treat it as read-only.
 */
export function describeCertificate(der: Uint8Array): CertInfo | undefined {
  const key = sampleHash(der)
  const bytes = Buffer.from(der.buffer, der.byteOffset, der.byteLength)
  const hit = cache.get(key)
  if (hit !== undefined && hit.der.equals(bytes)) return hit.info
  const info = describeUncached(der)
  cache.delete(key)
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!)
  cache.set(key, { der: Buffer.from(bytes), info })
  return info
}

/** The description of `der`, read directly when it is plain (./x509-der.ts), else by OpenSSL. */
export function describeUncached(der: Uint8Array): CertInfo | undefined {
  const plain = plainCertFields(der)
  return plain !== undefined ? certInfo(plain, der) : describeWithOpenSsl(der)
}

/** The description of `der` through Node's X509Certificate (OpenSSL); undefined when it does not parse. */
export function describeWithOpenSsl(der: Uint8Array): CertInfo | undefined {
  try {
    return certInfo(opensslFields(new X509Certificate(der)), der)
  } catch {
    return undefined
  }
}

/** The fields OpenSSL reads of `x`, as ./x509-der.ts reads them of a plain certificate. */
function opensslFields(x: X509Certificate): PlainCertFields {
  // OpenSSL refuses some keys (unknown algorithms, broken encodings): the rest of the certificate still counts.
  let keyType = ''
  let keyLength = 0
  try {
    const key = x.publicKey
    keyType = key.asymmetricKeyType ?? ''
    const d = key.asymmetricKeyDetails
    keyLength = d?.modulusLength ?? (d?.namedCurve !== undefined ? (CURVE_BITS[d.namedCurve] ?? 0) : 0)
  } catch {
    keyType = ''
  }
  return {
    subject: x.subject,
    issuer: x.issuer,
    serial: x.serialNumber.toUpperCase(),
    notBefore: Math.floor(Date.parse(x.validFrom) / 1000),
    notAfter: Math.floor(Date.parse(x.validTo) / 1000),
    keyType,
    keyLength,
    sanDns: (x.subjectAltName ?? '')
      .split(', ')
      .filter((s) => s.startsWith('DNS:'))
      .map((s) => s.slice(4)),
    sha1: hexBytes(x.fingerprint),
    sha256: hexBytes(x.fingerprint256),
  }
}

/** The description of certificate `der` from its fields (the signature algorithm is read from the DER). */
function certInfo(f: PlainCertFields, der: Uint8Array): CertInfo {
  const subject = name(f.subject)
  const issuer = name(f.issuer)
  const oid = signatureOid(der)
  return {
    subject: subject.dn,
    issuer: issuer.dn,
    subjectCn: subject.cn,
    subjectO: subject.o,
    issuerCn: issuer.cn,
    issuerO: issuer.o,
    serial: f.serial,
    notBefore: f.notBefore,
    notAfter: f.notAfter,
    keyAlg: KEY_ALGS[f.keyType] ?? f.keyType,
    keyLength: f.keyLength,
    sigAlg: SIG_ALGS[oid] ?? oid,
    sanDns: f.sanDns,
    sha1: f.sha1,
    sha256: f.sha256,
  }
}
