/**
 * @module l7/x509-der
 * Reads the fields ./x509.ts describes straight from a certificate's DER (RFC 5280 §4.1, X.690 DER), for
 * the certificates whose every part has one plain reading, so that OpenSSL (crypto.X509Certificate: 0.2-1 ms
 * a certificate with OpenSSL 3, most of it decoding the public key) is asked only about the others.
 *
 * The answer must be the one Node and OpenSSL give (./x509.ts's describe), so anything outside the plain
 * case returns undefined and the caller asks OpenSSL: a name attribute other than the usual ones, or whose
 * value is not printable ASCII free of the characters OpenSSL's RFC 2253 escaping touches (`+"\<>;#=`,
 * spaces at either end; `,` alone is taken, printed `\,`), a multi-valued RDN, a time other than UTCTime
 * YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ, a negative, zero or badly padded serial, a key other
 * than RSA or an uncompressed point on P-256, P-384 or P-521 (checked to lie on the curve, as OpenSSL
 * checks), a subjectAltName with other names than DNS names of host-name characters and IP addresses, an
 * extension twice, an extension value that is not well-formed DER (OpenSSL decodes some when it loads a
 * certificate and refuses the certificate when one does not decode), a malformed OID, non-minimal lengths,
 * a signature with unused bits, or any octet that does not fit the structure. The fingerprints are the
 * digests of the DER as it is (OpenSSL digests its re-encoding, the same octets for such certificates).
 * src/l7/x509-der.test.ts compares both readings on certificates and on damaged copies of them.
 */
import { createHash } from 'node:crypto'

/** A certificate's fields as OpenSSL gives them; ./x509.ts splits the names and adds the signature algorithm. */
export interface PlainCertFields {
  subject: string
  issuer: string
  serial: string
  notBefore: number
  notAfter: number
  /** Node's asymmetricKeyType: 'rsa' or 'ec'. */
  keyType: string
  keyLength: number
  sanDns: string[]
  sha1: Uint8Array
  sha256: Uint8Array
}

/** OpenSSL's short names of the name attributes taken here (OBJ_nid2sn), by OID content octets in hex. */
const ATTRIBUTE_NAMES: Record<string, string> = {
  '550403': 'CN',
  '550404': 'SN',
  '550405': 'serialNumber',
  '550406': 'C',
  '550407': 'L',
  '550408': 'ST',
  '550409': 'street',
  '55040a': 'O',
  '55040b': 'OU',
  '55040c': 'title',
  '55040f': 'businessCategory',
  '550411': 'postalCode',
  '55042a': 'GN',
  '2a864886f70d010901': 'emailAddress',
  '0992268993f22c640119': 'DC',
  '2b0601040182373c020101': 'jurisdictionL',
  '2b0601040182373c020102': 'jurisdictionST',
  '2b0601040182373c020103': 'jurisdictionC',
}

const OID_RSA = '2a864886f70d010101'
const OID_EC = '2a8648ce3d0201'
const OID_SAN = '551d11'

interface Curve {
  bits: number
  p: bigint
  b: bigint
}

/** The named curves taken (SEC 2 / FIPS 186-4 parameters; a = -3 for all three). */
const CURVES: Record<string, Curve> = {
  // prime256v1 (P-256)
  '2a8648ce3d030107': {
    bits: 256,
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
  },
  // secp384r1 (P-384)
  '2b81040022': {
    bits: 384,
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
  },
  // secp521r1 (P-521)
  '2b81040023': {
    bits: 521,
    p: (1n << 521n) - 1n,
    b: 0x0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00n,
  },
}

/** Thrown (and caught in plainCertFields) when the certificate is outside the plain case. */
const NOT_PLAIN = new Error('not plain')

/** A DER reader over one buffer: `p` is the position, `tag`/`start`/`end` describe the element just read. */
class Der {
  p = 0
  tag = 0
  start = 0
  end = 0

  constructor(readonly b: Uint8Array) {}

  /** Reads the header of the element at `p` (which must end by `limit`) and moves `p` to its content. */
  open(limit: number, tag: number): void {
    const b = this.b
    let p = this.p
    if (p + 2 > limit || b[p] !== tag) throw NOT_PLAIN
    let len = b[p + 1]!
    p += 2
    if (len & 0x80) {
      const n = len & 0x7f
      if (n === 0 || n > 3 || p + n > limit || b[p] === 0) throw NOT_PLAIN
      len = 0
      for (let i = 0; i < n; i++) len = len * 256 + b[p + i]!
      p += n
      if (len < 0x80) throw NOT_PLAIN // not the minimal length encoding
    }
    if (p + len > limit) throw NOT_PLAIN
    this.tag = tag
    this.start = p
    this.end = p + len
    this.p = p
  }

  /** Reads the element at `p` and moves `p` past it. */
  skip(limit: number, tag: number): void {
    this.open(limit, tag)
    this.p = this.end
  }

  /** The tag at `p`, or -1 at `limit`. */
  peek(limit: number): number {
    return this.p < limit ? this.b[this.p]! : -1
  }

  /** Octets [a, z) in lower-case hex. */
  hex(a: number, z: number): string {
    return hexSlice.call(this.b, a, z)
  }
}

/**
 * Buffer's native hex and latin1 decoders, applied to a plain Uint8Array (the code here runs a few times per
 * distinct certificate, mostly unoptimised: per-octet loops in JavaScript would cost what OpenSSL does).
 */
interface BufferNatives {
  hexSlice: (this: Uint8Array, a: number, z: number) => string
  latin1Slice: (this: Uint8Array, a: number, z: number) => string
}
const { hexSlice, latin1Slice } = Buffer.prototype as unknown as BufferNatives

/** Characters OpenSSL's RFC 2253 escaping leaves as they are (`,` aside): printable ASCII but `+"\<>;#=`. */
const PLAIN_VALUE =
  /^[\x21\x24-\x2a\x2c-\x3a\x3f-\x5b\x5d-\x7e](?:[\x20\x21\x24-\x2a\x2c-\x3a\x3f-\x5b\x5d-\x7e]*[\x21\x24-\x2a\x2c-\x3a\x3f-\x5b\x5d-\x7e])?$/

/** A name attribute's value as Node prints it (`,` escaped), when it is plain: PLAIN_VALUE, no space at the ends. */
function plainText(b: Uint8Array, a: number, z: number): string {
  const s = latin1Slice.call(b, a, z)
  if (!PLAIN_VALUE.test(s)) throw NOT_PLAIN
  return s.includes(',') ? s.replaceAll(',', '\\,') : s
}

/** Name ::= SEQUENCE OF RDN, as Node prints it (X509_NAME_print_ex, one `SN=value` line per RDN). */
function name(d: Der, limit: number): string {
  d.open(limit, 0x30)
  const end = d.end
  const lines: string[] = []
  while (d.p < end) {
    d.open(end, 0x31) // RelativeDistinguishedName: one AttributeTypeAndValue only
    const setEnd = d.end
    d.open(setEnd, 0x30)
    const atvEnd = d.end
    d.open(atvEnd, 0x06)
    const key = ATTRIBUTE_NAMES[d.hex(d.start, d.end)]
    if (key === undefined) throw NOT_PLAIN
    d.p = d.end
    const t = d.peek(atvEnd)
    // UTF8String, PrintableString, T61String, IA5String (ASCII content only, see plainText)
    if (t !== 0x0c && t !== 0x13 && t !== 0x14 && t !== 0x16) throw NOT_PLAIN
    d.open(atvEnd, t)
    lines.push(key + '=' + plainText(d.b, d.start, d.end))
    d.p = d.end
    if (d.p !== atvEnd || atvEnd !== setEnd) throw NOT_PLAIN
  }
  if (lines.length === 0) throw NOT_PLAIN
  return lines.join('\n')
}

function digits(b: Uint8Array, a: number, n: number): number {
  let v = 0
  for (let i = a; i < a + n; i++) {
    const c = b[i]! - 0x30
    if (c < 0 || c > 9) throw NOT_PLAIN
    v = v * 10 + c
  }
  return v
}

/** Time ::= UTCTime | GeneralizedTime, in seconds since the epoch (what Date.parse of Node's text gives). */
function time(d: Der, limit: number): number {
  const t = d.peek(limit)
  if (t !== 0x17 && t !== 0x18) throw NOT_PLAIN
  d.open(limit, t)
  const b = d.b
  let p = d.start
  const len = d.end - p
  let year: number
  if (t === 0x17) {
    if (len !== 13) throw NOT_PLAIN
    const yy = digits(b, p, 2)
    year = yy < 50 ? 2000 + yy : 1900 + yy
    p += 2
  } else {
    if (len !== 15) throw NOT_PLAIN
    year = digits(b, p, 4)
    if (year < 1000) throw NOT_PLAIN
    p += 4
  }
  const month = digits(b, p, 2)
  const day = digits(b, p + 2, 2)
  const hour = digits(b, p + 4, 2)
  const minute = digits(b, p + 6, 2)
  const second = digits(b, p + 8, 2)
  if (b[p + 10] !== 0x5a) throw NOT_PLAIN // Z
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate()
  if (month < 1 || month > 12 || day < 1 || day > days || hour > 23 || minute > 59 || second > 59)
    throw NOT_PLAIN
  d.p = d.end
  return Date.UTC(year, month - 1, day, hour, minute, second) / 1000
}

/** A positive INTEGER's content [a, z), minimally encoded; throws otherwise. */
function positive(b: Uint8Array, a: number, z: number): number {
  if (z <= a || b[a]! >= 0x80) throw NOT_PLAIN
  if (b[a] === 0) {
    if (z - a < 2 || b[a + 1]! < 0x80) throw NOT_PLAIN
    a++
  }
  return a
}

function bigAt(d: Der, a: number, z: number): bigint {
  return z > a ? BigInt('0x' + d.hex(a, z)) : 0n
}

/** SubjectPublicKeyInfo: [key type, key length in bits]. */
function publicKey(d: Der, limit: number): [string, number] {
  d.open(limit, 0x30)
  const end = d.end
  d.open(end, 0x30)
  const algEnd = d.end
  d.open(algEnd, 0x06)
  const alg = d.hex(d.start, d.end)
  d.p = d.end
  let curve: Curve | undefined
  if (alg === OID_RSA) {
    d.skip(algEnd, 0x05) // parameters NULL
    if (d.start !== d.end) throw NOT_PLAIN
  } else if (alg === OID_EC) {
    d.open(algEnd, 0x06)
    curve = CURVES[d.hex(d.start, d.end)]
    if (curve === undefined) throw NOT_PLAIN
    d.p = d.end
  } else throw NOT_PLAIN
  if (d.p !== algEnd) throw NOT_PLAIN
  d.open(end, 0x03)
  const bitsEnd = d.end
  if (bitsEnd !== end || d.b[d.start] !== 0) throw NOT_PLAIN
  d.p = d.start + 1
  const b = d.b
  if (curve === undefined) {
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    d.open(bitsEnd, 0x30)
    const keyEnd = d.end
    if (keyEnd !== bitsEnd) throw NOT_PLAIN
    d.open(keyEnd, 0x02)
    const n = positive(b, d.start, d.end)
    const nEnd = d.end
    d.p = d.end
    d.open(keyEnd, 0x02)
    positive(b, d.start, d.end)
    if (d.end !== keyEnd || nEnd - n > 2048) throw NOT_PLAIN // up to 16384-bit moduli
    d.p = keyEnd
    return ['rsa', (nEnd - n) * 8 - Math.clz32(b[n]!) + 24]
  }
  // An uncompressed point (SEC 1 §2.3.3) on the curve: y² = x³ - 3x + b (mod p), 0 <= x, y < p.
  const size = Math.ceil(curve.bits / 8)
  const a = d.p
  if (bitsEnd - a !== 1 + 2 * size || b[a] !== 0x04) throw NOT_PLAIN
  const x = bigAt(d, a + 1, a + 1 + size)
  const y = bigAt(d, a + 1 + size, bitsEnd)
  const p = curve.p
  if (x >= p || y >= p) throw NOT_PLAIN
  const rhs = (((((x * x) % p) * x - 3n * x + curve.b) % p) + p) % p
  if ((y * y) % p !== rhs) throw NOT_PLAIN
  d.p = bitsEnd
  return ['ec', curve.bits]
}

/** An OBJECT IDENTIFIER's content [a, z) as OpenSSL accepts it: no 0x80 lead octet, last octet ends a arc. */
function validOid(b: Uint8Array, a: number, z: number): void {
  if (z <= a || b[z - 1]! >= 0x80) throw NOT_PLAIN
  for (let i = a; i < z; i++) if (b[i] === 0x80 && (i === a || b[i - 1]! < 0x80)) throw NOT_PLAIN
}

/**
 * [a, z) is a sequence of well-formed DER elements (universal types checked as OpenSSL's decoder checks
 * them; constructed ones walked into), up to `depth` levels: extension values OpenSSL decodes when it
 * loads a certificate, which it refuses whole when one does not decode.
 */
function wellFormed(d: Der, a: number, z: number, depth: number): void {
  if (depth > 8) throw NOT_PLAIN
  d.p = a
  while (d.p < z) {
    const t = d.peek(z)
    if ((t & 0x1f) === 0x1f) throw NOT_PLAIN // high tag numbers
    d.open(z, t)
    const s = d.start
    const e = d.end
    const b = d.b
    if ((t & 0x20) !== 0) wellFormed(d, s, e, depth + 1)
    else if (t === 0x06) validOid(b, s, e)
    else if (t === 0x01) {
      if (e - s !== 1) throw NOT_PLAIN
    } else if (t === 0x02) positive(b, s, e)
    else if (t === 0x03) {
      if (e === s || b[s]! > 7 || (e - s === 1 && b[s] !== 0)) throw NOT_PLAIN
    } else if (t === 0x05) {
      if (e !== s) throw NOT_PLAIN
    } else if (t < 0x80 && t !== 0x04 && t !== 0x0c && t !== 0x13 && t !== 0x16 && t !== 0x17 && t !== 0x18)
      throw NOT_PLAIN
    d.p = e
  }
}

/** IPv4 or IPv6 iPAddress octets: nothing Node prints for them matters here but that they are one. */
const IP_LENGTHS = new Set([4, 16])

/** Host-name characters (letters, digits, `-`, `.`, `_`, `*`): nothing Node quotes in an alt name. */
const HOST_NAME = /^[A-Za-z0-9.*_-]+$/

function hostName(b: Uint8Array, a: number, z: number): string {
  const s = latin1Slice.call(b, a, z)
  if (!HOST_NAME.test(s)) throw NOT_PLAIN
  return s
}

/** Extensions ::= SEQUENCE OF Extension: the subjectAltName's DNS names ([] without one). */
function extensions(d: Der, limit: number): string[] {
  d.open(limit, 0xa3)
  const outer = d.end
  d.open(outer, 0x30)
  const end = d.end
  if (end !== outer) throw NOT_PLAIN
  let dns: string[] | undefined
  const seen = new Set<string>()
  while (d.p < end) {
    d.open(end, 0x30)
    const extEnd = d.end
    d.open(extEnd, 0x06)
    validOid(d.b, d.start, d.end)
    const oid = d.hex(d.start, d.end)
    if (seen.has(oid)) throw NOT_PLAIN // twice: OpenSSL refuses some, reads the first of others
    seen.add(oid)
    d.p = d.end
    if (d.peek(extEnd) === 0x01) {
      d.open(extEnd, 0x01)
      if (d.end - d.start !== 1 || d.b[d.start] !== 0xff) throw NOT_PLAIN // DER: TRUE only, FALSE absent
      d.p = d.end
    }
    d.open(extEnd, 0x04)
    if (d.end !== extEnd) throw NOT_PLAIN
    const value = d.start
    wellFormed(d, value, extEnd, 0)
    d.p = value
    if (oid === OID_SAN) {
      dns = []
      d.open(extEnd, 0x30)
      const namesEnd = d.end
      // (An empty list is left to OpenSSL, as is anything after the list.)
      if (namesEnd !== extEnd || d.p === namesEnd) throw NOT_PLAIN
      while (d.p < namesEnd) {
        const t = d.peek(namesEnd)
        if (t === 0x82) {
          d.open(namesEnd, 0x82)
          dns.push(hostName(d.b, d.start, d.end))
        } else if (t === 0x87) {
          d.open(namesEnd, 0x87)
          if (!IP_LENGTHS.has(d.end - d.start)) throw NOT_PLAIN
        } else throw NOT_PLAIN
        d.p = d.end
      }
    }
    d.p = extEnd
  }
  return dns ?? []
}

/** AlgorithmIdentifier: an OID and absent or NULL parameters. */
function algorithm(d: Der, limit: number): void {
  d.open(limit, 0x30)
  const end = d.end
  d.open(end, 0x06)
  validOid(d.b, d.start, d.end)
  d.p = d.end
  if (d.p < end) {
    d.skip(end, 0x05)
    if (d.start !== d.end) throw NOT_PLAIN
  }
  if (d.p !== end) throw NOT_PLAIN
}

/**
 * The fields of DER certificate `der` when it is in the plain case (see the file comment), else undefined
 * (ask OpenSSL).
 */
export function plainCertFields(der: Uint8Array): PlainCertFields | undefined {
  const d = new Der(der)
  try {
    const total = der.byteLength
    d.open(total, 0x30) // Certificate
    if (d.end !== total) return undefined
    d.open(total, 0x30) // TBSCertificate
    const tbs = d.end
    // version [0] EXPLICIT: absent (v1), v2 (1) or v3 (2); an explicit v1 (0) is not DER
    if (d.peek(tbs) === 0xa0) {
      d.open(tbs, 0xa0)
      const vEnd = d.end
      d.open(vEnd, 0x02)
      if (d.end !== vEnd || d.end - d.start !== 1 || (der[d.start] !== 1 && der[d.start] !== 2))
        return undefined
      d.p = vEnd
    }
    d.open(tbs, 0x02)
    const serialStart = positive(der, d.start, d.end)
    // BN_bn2hex: two digits an octet, without the sign octet (positive() skipped it)
    const serial = d.hex(serialStart, d.end).toUpperCase()
    d.p = d.end
    algorithm(d, tbs) // signature (read again from the outer one by ./x509.ts)
    const issuer = name(d, tbs)
    d.p = d.end
    d.open(tbs, 0x30) // Validity
    const validityEnd = d.end
    const notBefore = time(d, validityEnd)
    const notAfter = time(d, validityEnd)
    if (d.p !== validityEnd) return undefined
    const subject = name(d, tbs)
    d.p = d.end
    const [keyType, keyLength] = publicKey(d, tbs)
    // issuerUniqueID [1], subjectUniqueID [2]: not in the plain case
    const sanDns = d.peek(tbs) === 0xa3 ? extensions(d, tbs) : []
    if (d.p !== tbs) return undefined
    // signatureAlgorithm: OID and optional NULL; signatureValue: BIT STRING without unused bits
    algorithm(d, total)
    d.open(total, 0x03)
    if (d.end !== total || d.end === d.start || der[d.start] !== 0) return undefined
    return {
      subject,
      issuer,
      serial,
      notBefore,
      notAfter,
      keyType,
      keyLength,
      sanDns,
      sha1: createHash('sha1').update(der).digest(),
      sha256: createHash('sha256').update(der).digest(),
    }
  } catch (err) {
    if (err === NOT_PLAIN) return undefined
    throw err
  }
}
