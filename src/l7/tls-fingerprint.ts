/**
 * @module l7/tls-fingerprint
 * TLS client and server fingerprints from parsed hellos:
 * - JA3 (Salesforce): MD5 of "version,ciphers,extensions,groups,point formats" (decimal, '-' joined) of
 *   the ClientHello; JA3S: MD5 of "version,cipher,extensions" of the ServerHello. GREASE values
 *   (RFC 8701: 0x?A?A) are left out of JA3 as the reference implementation does.
 * - JA4 (FoxIO, JA4+ specification): `<t|q|d><version><d|i><ciphers:2><extensions:2><alpn:2>_<12 hex of
 *   SHA-256 of the sorted ciphers>_<12 hex of SHA-256 of the sorted extensions minus SNI/ALPN, "_", the
 *   signature algorithms in hello order> (zeros when that input is empty)`; GREASE ignored everywhere. The
 *   version is the highest in supported_versions, else the hello's; for DTLS the highest is the lowest
 *   number (0xfefc, DTLS 1.3, is above 0xfefd, DTLS 1.2).
 */
import { createHash } from 'node:crypto'

export interface ClientHelloFacts {
  clientVersion: number
  cipherSuites: readonly number[]
  extensionTypes: readonly number[]
  supportedGroups: readonly number[]
  ecPointFormats: readonly number[]
  supportedVersions: readonly number[]
  signatureAlgorithms: readonly number[]
  sni: string
  alpnOffered: readonly string[]
}

export interface ServerHelloFacts {
  serverLegacyVersion: number
  cipherSuite: number
  serverExtensionTypes: readonly number[]
}

export const isGrease = (v: number): boolean => (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff)

const noGrease = (l: readonly number[]): number[] => l.filter((v) => !isGrease(v))

/** Digests of recent fingerprint strings: a handful of client stacks send most hellos, so most repeat. */
const DIGEST_CACHE = 4096
/**
 * Longest string whose digest is kept. Real stacks' JA3 strings run to a few hundred characters; a hello
 * of 32000 cipher suites (64 KiB) makes one of 190000, and 4096 of those would hold 780 MB.
 */
const MAX_CACHED_STRING = 2048
const digests = new Map<string, string>()
function cachedDigest(alg: 'md5' | 'sha256', s: string): string {
  if (s.length > MAX_CACHED_STRING) return createHash(alg).update(s).digest('hex')
  const key = alg + s
  let d = digests.get(key)
  if (d === undefined) {
    d = createHash(alg).update(s).digest('hex')
    if (digests.size >= DIGEST_CACHE) digests.clear()
    digests.set(key, d)
  }
  return d
}
const md5 = (s: string): string => cachedDigest('md5', s)
const sha12 = (s: string): string => cachedDigest('sha256', s).slice(0, 12)
const hex4 = (v: number): string => v.toString(16).padStart(4, '0')

/** JA3 string and hash ('' without a ClientHello). */
export function ja3(c: ClientHelloFacts): { text: string; hash: string } {
  if (c.clientVersion === 0) return { text: '', hash: '' }
  const text = [
    c.clientVersion,
    noGrease(c.cipherSuites).join('-'),
    noGrease(c.extensionTypes).join('-'),
    noGrease(c.supportedGroups).join('-'),
    c.ecPointFormats.join('-'),
  ].join(',')
  return { text, hash: md5(text) }
}

/** JA3S string and hash ('' without a ServerHello). */
export function ja3s(s: ServerHelloFacts): { text: string; hash: string } {
  if (s.serverLegacyVersion === 0) return { text: '', hash: '' }
  const text = [s.serverLegacyVersion, s.cipherSuite, noGrease(s.serverExtensionTypes).join('-')].join(',')
  return { text, hash: md5(text) }
}

const VERSIONS: Record<number, string> = {
  0x0304: '13',
  0x0303: '12',
  0x0302: '11',
  0x0301: '10',
  0x0300: 's3',
  0x0002: 's2',
  0xfeff: 'd1',
  0xfefd: 'd2',
  0xfefc: 'd3',
}

const alnum = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)

function alpnPart(alpn: readonly string[]): string {
  const first = alpn[0]
  if (first === undefined || first === '') return '00'
  const a = first.charCodeAt(0)
  const z = first.charCodeAt(first.length - 1)
  if (alnum(a) && alnum(z)) return first[0]! + first[first.length - 1]!
  const h = Buffer.from(first, 'latin1').toString('hex')
  return h[0]! + h[h.length - 1]!
}

/** JA4 fingerprint and its raw (unhashed) form; `transport` 't' TCP, 'q' QUIC, 'd' DTLS. */
export function ja4(c: ClientHelloFacts, transport: 't' | 'q' | 'd' = 't'): { text: string; raw: string } {
  if (c.clientVersion === 0) return { text: '', raw: '' }
  const versions = noGrease(c.supportedVersions)
  // The highest version offered; DTLS numbers its versions downwards (1.2 is 0xfefd, 1.3 0xfefc).
  const dtls = versions.filter((v) => v >> 8 === 0xfe)
  const top =
    transport === 'd' && dtls.length > 0
      ? Math.min(...dtls)
      : versions.length > 0
        ? Math.max(...versions)
        : c.clientVersion
  const version = VERSIONS[top] ?? '00'
  const ciphers = noGrease(c.cipherSuites)
  const exts = noGrease(c.extensionTypes)
  const count = (n: number): string => String(Math.min(n, 99)).padStart(2, '0')
  const a = `${transport}${version}${c.sni !== '' ? 'd' : 'i'}${count(ciphers.length)}${count(exts.length)}${alpnPart(c.alpnOffered)}`
  const cipherList = ciphers.map(hex4).sort().join(',')
  const extList = exts
    .filter((e) => e !== 0x0000 && e !== 0x0010)
    .map(hex4)
    .sort()
    .join(',')
  const sigs = c.signatureAlgorithms.map(hex4).join(',')
  const cInput = sigs === '' ? extList : `${extList}_${sigs}`
  const b = ciphers.length === 0 ? '000000000000' : sha12(cipherList)
  const cc = cInput === '' ? '000000000000' : sha12(cInput)
  return { text: `${a}_${b}_${cc}`, raw: `${a}_${cipherList}_${cInput}` }
}

/** The fingerprints a TLS record carries: JA3 and JA3S MD5 (hex, '' without the hello) and the JA4 text. */
export interface HandshakeFingerprints {
  ja3: string
  ja3s: string
  ja4: string
  /** The JA3 and JA3S MD5 digests as 16 octets (empty without the hello). */
  ja3Octets: Uint8Array
  ja3sOctets: Uint8Array
}

/**
 * Memo of handshake fingerprints by everything they are computed from. A handful of client stacks send
 * most hellos, so most handshakes repeat one seen before (once their GREASE values, random per connection and
 * ignored by the fingerprints, are left out): the key is written into a reused scratch array and hashed
 * (FNV-1a) in one pass, looked up by its hash and compared in full with the cached one, so a repeated
 * handshake costs a pass over its lists and no string building, digest or allocation. Handshakes whose keys
 * share a hash are chained: any number of them that alternate all stay (with a direct-mapped table, three
 * stacks of one capture that fell into one slot missed on every handshake). At MEMO_SIZE hashes the memo
 * starts over; a chain longer than MAX_CHAIN starts over too.
 */
interface MemoEntry {
  key: Uint32Array
  value: HandshakeFingerprints
  next: MemoEntry | undefined
}
const MEMO_SIZE = 4096
const MAX_CHAIN = 8
/** Longest key memoised (values): under 100 for real stacks; 32000 for a 64 KiB hello, 4096 of them 520 MB. */
const MAX_MEMO_KEY = 512
const memo = new Map<number, MemoEntry>()
let scratch = new Uint32Array(512)

/** Scratch room for a key of `n` values at least. */
function scratchFor(n: number): Uint32Array {
  if (scratch.length < n) scratch = new Uint32Array(Math.max(n, 2 * scratch.length))
  return scratch
}

const NO_ALPN = 0xffffffff

/**
 * Writes the fingerprint inputs of a handshake into `k` from `at` (each list preceded by its length; GREASE
 * left out of the lists the fingerprints read without it); returns the end.
 */
function writeKey(k: Uint32Array, c: ClientHelloFacts, s: ServerHelloFacts, transport: string): number {
  let n = 0
  k[n++] = transport.charCodeAt(0)
  k[n++] = c.clientVersion
  k[n++] = c.sni !== '' ? 1 : 0
  n = putNoGrease(k, n, c.cipherSuites)
  n = putNoGrease(k, n, c.extensionTypes)
  n = putNoGrease(k, n, c.supportedGroups)
  n = putAll(k, n, c.ecPointFormats)
  n = putNoGrease(k, n, c.supportedVersions)
  n = putAll(k, n, c.signatureAlgorithms)
  const alpn = c.alpnOffered[0]
  if (alpn === undefined) k[n++] = NO_ALPN
  else {
    k[n++] = alpn.length
    for (let i = 0; i < alpn.length; i++) k[n++] = alpn.charCodeAt(i)
  }
  k[n++] = s.serverLegacyVersion
  k[n++] = s.cipherSuite
  return putNoGrease(k, n, s.serverExtensionTypes)
}

function putAll(k: Uint32Array, n: number, l: readonly number[]): number {
  k[n++] = l.length
  for (let i = 0; i < l.length; i++) k[n++] = l[i]!
  return n
}

function putNoGrease(k: Uint32Array, n: number, l: readonly number[]): number {
  const at = n++
  for (let i = 0; i < l.length; i++) {
    const v = l[i]!
    if (!isGrease(v)) k[n++] = v
  }
  k[at] = n - at - 1
  return n
}

/** Values a handshake's key may take (an upper bound: its lists whole, and the fixed values). */
function keyBound(c: ClientHelloFacts, s: ServerHelloFacts): number {
  return (
    16 +
    c.cipherSuites.length +
    c.extensionTypes.length +
    c.supportedGroups.length +
    c.ecPointFormats.length +
    c.supportedVersions.length +
    c.signatureAlgorithms.length +
    (c.alpnOffered[0]?.length ?? 0) +
    s.serverExtensionTypes.length
  )
}

function sameKey(a: Uint32Array, b: Uint32Array, n: number): boolean {
  if (a.length !== n) return false
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false
  return true
}

const EMPTY = new Uint8Array(0)
const octets = (hex: string): Uint8Array => (hex === '' ? EMPTY : new Uint8Array(Buffer.from(hex, 'hex')))

function fingerprintsOf(
  c: ClientHelloFacts,
  s: ServerHelloFacts,
  transport: 't' | 'q' | 'd',
): HandshakeFingerprints {
  const ja3Hash = ja3(c).hash
  const ja3sHash = ja3s(s).hash
  return {
    ja3: ja3Hash,
    ja3s: ja3sHash,
    ja4: ja4(c, transport).text,
    ja3Octets: octets(ja3Hash),
    ja3sOctets: octets(ja3sHash),
  }
}

/** Exposed for tests: what the digest and fingerprint caches hold (string characters, key values). */
export function fingerprintCacheFootprint(): { digestChars: number; memoValues: number } {
  let digestChars = 0
  for (const [k, v] of digests) digestChars += k.length + v.length
  let memoValues = 0
  for (const first of memo.values())
    for (let e: MemoEntry | undefined = first; e !== undefined; e = e.next) memoValues += e.key.length
  return { digestChars, memoValues }
}

/**
 * JA3, JA3S and JA4 of one handshake (`transport` as ja4's), the same as ja3(c).hash, ja3s(s).hash and
 * ja4(c, transport).text. The result may be shared with other calls: treat it as read-only.
 */
export function handshakeFingerprints(
  c: ClientHelloFacts,
  s: ServerHelloFacts,
  transport: 't' | 'q' | 'd' = 't',
): HandshakeFingerprints {
  const k = scratchFor(keyBound(c, s))
  const n = writeKey(k, c, s, transport)
  if (n > MAX_MEMO_KEY) return fingerprintsOf(c, s, transport)
  let h = 0x811c9dc5
  for (let i = 0; i < n; i++) h = Math.imul(h ^ k[i]!, 0x01000193)
  h &= 0x3fffffff // a small integer (no heap number as the Map's key)
  let first = memo.get(h)
  let chain = 0
  for (let e = first; e !== undefined; e = e.next, chain++) if (sameKey(e.key, k, n)) return e.value
  const value = fingerprintsOf(c, s, transport)
  if (first === undefined && memo.size >= MEMO_SIZE) memo.clear()
  if (chain >= MAX_CHAIN) first = undefined // keys made to collide cannot grow a chain without bound
  memo.set(h, { key: k.slice(0, n), value, next: first })
  return value
}
