/**
 * @module l7/quic-crypto
 * QUIC Initial packet protection, enough to read what the client and server send in clear-keyed Initial
 * packets: the initial secrets (RFC 9001 §5.2; RFC 9369 §3.3.1 for QUIC v2; the draft and Google T05x salts),
 * HKDF-Extract and HKDF-Expand-Label (RFC 5869, RFC 8446 §7.1), header protection removal with AES-ECB
 * (RFC 9001 §5.4.1, §5.4.3) and AEAD_AES_128_GCM payload decryption (RFC 9001 §5.3), all with node:crypto.
 *
 * Initial keys depend only on the version and the Destination Connection ID of the client's first Initial,
 * so any observer can derive them; that is the design (RFC 9001 §5.2: Initial protection is not
 * confidentiality). Nothing here throws on bad input: a packet that does not open gives undefined.
 */
import { createCipheriv, createDecipheriv, createHmac, type Cipher } from 'node:crypto'

/** How a QUIC version protects its Initial packets. */
export interface QuicVersionInfo {
  readonly salt: Buffer
  /** HKDF label prefix: 'quic ' (v1, drafts, Google) or 'quicv2 ' (RFC 9369 §3.3.2). */
  readonly labels: string
  /** Long-header packet type of Initial packets: 0 (v1), 1 (v2, RFC 9369 §3.2). */
  readonly initialType: number
  /** Long-header packet types of Handshake and Retry packets. */
  readonly handshakeType: number
  readonly retryType: number
  /** CRYPTO frames carry TLS 1.3 (IETF QUIC, Google T05x); Google Q050 carries its own CHLO. */
  readonly tls: boolean
  /** Google QUIC (Q050, T05x): the handshake travels in frame type 0x08 instead of CRYPTO (0x06). */
  readonly google: boolean
}

export const QUIC_V1 = 0x00000001
export const QUIC_V2 = 0x6b3343cf

const salt = (hex: string): Buffer => Buffer.from(hex, 'hex')
const SALT_V1 = salt('38762cf7f55934b34d179ae6a4c80cadccbb7f0a') // RFC 9001 §5.2
const SALT_V2 = salt('0dede3def700a6db819381be6e269dcbf9bd2ed9') // RFC 9369 §3.3.1
const SALT_D29 = salt('afbfec289993d24c9e9786f19c6111e04390a899') // draft-ietf-quic-tls-29..32
const SALT_D23 = salt('c3eef712c72ebb5a11a7d2432bb46365bef9f502') // drafts 23..28
const SALT_D22 = salt('7fbcdb0e7c66bbe9193a96cd21519ebd7a02644a') // drafts 21..22
const SALT_Q050 = salt('504574efd066fe2f9d945cfcdbd3a7f0d3b56b45') // Google QUIC Q050
const SALT_T050 = salt('7ff579e5acd072915580304c43a2367c60488310') // Google T050
const SALT_T051 = salt('7a4edef4e7ccee5fa4506c19124fc8ccda6e033d') // Google T051

const v1Like = (s: Buffer, tls = true, google = false): QuicVersionInfo => ({
  salt: s,
  labels: 'quic ',
  initialType: 0,
  handshakeType: 2,
  retryType: 3,
  tls,
  google,
})

const V1_INFO = v1Like(SALT_V1)
const V2_INFO: QuicVersionInfo = {
  salt: SALT_V2,
  labels: 'quicv2 ',
  initialType: 1,
  handshakeType: 3,
  retryType: 0,
  tls: true,
  google: false,
}
const D29 = v1Like(SALT_D29)
const D23 = v1Like(SALT_D23)
const D22 = v1Like(SALT_D22)
const Q050 = v1Like(SALT_Q050, false, true)
const T050 = v1Like(SALT_T050, true, true)
const T051 = v1Like(SALT_T051, true, true)

/** The Initial protection of version `v`, or undefined for versions whose Initial keys are unknown. */
export function quicVersionInfo(v: number): QuicVersionInfo | undefined {
  if (v === QUIC_V1) return V1_INFO
  if (v === QUIC_V2) return V2_INFO
  if (v >>> 8 === 0xff0000) {
    const draft = v & 0xff
    if (draft >= 29 && draft <= 34) return D29
    if (draft >= 23) return D23
    if (draft >= 21) return D22
    return undefined
  }
  if (v === 0x51303530) return Q050
  if (v === 0x54303530) return T050
  if (v === 0x54303531) return T051
  return undefined
}

/** A short version name: '1', '2', 'draft-29', 'T051', or the hex value (Zeek's quic.log spelling). */
export function quicVersionName(v: number): string {
  if (v === QUIC_V1) return '1'
  if (v === QUIC_V2) return 'quicv2'
  if (v >>> 8 === 0xff0000) return `draft-${v & 0xff}`
  const b = [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]
  if ((b[0] === 0x51 || b[0] === 0x54) && b.slice(1).every((c) => c >= 0x30 && c <= 0x39))
    return String.fromCharCode(...b)
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`
}

/** HKDF-Extract with SHA-256 (RFC 5869 §2.2). */
export function hkdfExtract(saltBytes: Uint8Array, ikm: Uint8Array): Buffer {
  return createHmac('sha256', saltBytes).update(ikm).digest()
}

/** HKDF-Expand-Label with SHA-256 and an empty context (RFC 8446 §7.1), length <= 255. */
export function hkdfExpandLabel(secret: Uint8Array, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1')
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, full.length]), full, Buffer.from([0])])
  const out: Buffer[] = []
  let prev = Buffer.alloc(0)
  for (let i = 1, n = 0; n < length; i++) {
    prev = createHmac('sha256', secret)
      .update(prev)
      .update(info)
      .update(Buffer.from([i]))
      .digest()
    out.push(prev)
    n += prev.length
  }
  return Buffer.concat(out).subarray(0, length)
}

/** AEAD_AES_128_GCM packet protection keys of one direction. */
export interface InitialKeys {
  readonly key: Buffer
  readonly iv: Buffer
  readonly hp: Buffer
  /**
   * AES-128-ECB under `hp`, made once and reused for every header protection mask of these keys: ECB keeps
   * no state between whole blocks, and making a cipher per packet cost ~30 us (cold), a third of opening one.
   */
  readonly hpCipher: Cipher
}

/**
 * Derived Initial keys of the last KEY_CACHE_SIZE (salt, DCID, side) triples. A connection's client Initials
 * (a ClientHello over several datagrams, resends) and a client's repeated attempts share one DCID; each
 * derivation costs eight HMACs.
 */
const KEY_CACHE_SIZE = 256
const keyCache = new Map<string, InitialKeys>()

/** The client's or the server's Initial keys for `dcid`, the DCID of the client's first Initial. */
export function initialKeys(info: QuicVersionInfo, dcid: Uint8Array, side: 'client' | 'server'): InitialKeys {
  // The salt names the derivation (each version family has its own; the labels follow from it).
  const key = `${side === 'client' ? 'c' : 's'}${info.salt.toString('latin1')}${info.labels}${Buffer.from(dcid.buffer, dcid.byteOffset, dcid.byteLength).toString('latin1')}`
  const hit = keyCache.get(key)
  if (hit !== undefined) return hit
  const keys = deriveInitialKeys(info, dcid, side)
  if (keyCache.size >= KEY_CACHE_SIZE) keyCache.delete(keyCache.keys().next().value!)
  keyCache.set(key, keys)
  return keys
}

function deriveInitialKeys(info: QuicVersionInfo, dcid: Uint8Array, side: 'client' | 'server'): InitialKeys {
  const initial = hkdfExtract(info.salt, dcid)
  const secret = hkdfExpandLabel(initial, side === 'client' ? 'client in' : 'server in', 32)
  const hp = hkdfExpandLabel(secret, `${info.labels}hp`, 16)
  return {
    key: hkdfExpandLabel(secret, `${info.labels}key`, 16),
    iv: hkdfExpandLabel(secret, `${info.labels}iv`, 12),
    hp,
    hpCipher: ecb(hp),
  }
}

/** An AES-128-ECB encryptor without padding: each 16-octet update gives that block's encryption. */
function ecb(key: Buffer): Cipher {
  const c = createCipheriv('aes-128-ecb', key, null)
  c.setAutoPadding(false)
  return c
}

/** The 5-octet header protection mask of a 16-octet sample (RFC 9001 §5.4.3, AES-ECB). */
export function headerMask(hp: Buffer, sample: Uint8Array): Buffer {
  return ecb(hp).update(sample).subarray(0, 5)
}

/** An opened (unprotected and decrypted) long-header packet. */
export interface OpenedPacket {
  readonly packetNumber: number
  readonly payload: Buffer
}

/**
 * Removes header protection from the long-header packet `pkt[0, end)` whose packet number starts at
 * `pnOffset`, then decrypts its payload. Undefined when the packet is too short or does not authenticate
 * (wrong keys, corruption).
 */
export function openLongHeader(
  pkt: Uint8Array,
  pnOffset: number,
  end: number,
  keys: InitialKeys,
): OpenedPacket | undefined {
  if (pnOffset + 4 + 16 > end || end > pkt.byteLength) return undefined
  const mask = keys.hpCipher.update(pkt.subarray(pnOffset + 4, pnOffset + 20))
  const first = pkt[0]! ^ (mask[0]! & 0x0f)
  const pnLen = (first & 0x03) + 1
  if (pnOffset + pnLen + 16 > end) return undefined
  const header = Buffer.from(pkt.subarray(0, pnOffset + pnLen))
  header[0] = first
  let pn = 0
  for (let i = 0; i < pnLen; i++) {
    const b = pkt[pnOffset + i]! ^ mask[1 + i]!
    header[pnOffset + i] = b
    pn = pn * 256 + b
  }
  // The nonce is the IV XORed with the packet number, left-padded to its length (RFC 9001 §5.3).
  const nonce = Buffer.from(keys.iv)
  for (let i = 0, v = pn; i < 4; i++, v = Math.floor(v / 256)) nonce[11 - i]! ^= v & 0xff
  const tagAt = end - 16
  try {
    const d = createDecipheriv('aes-128-gcm', keys.key, nonce)
    d.setAAD(header)
    d.setAuthTag(pkt.subarray(tagAt, end))
    const payload = Buffer.concat([d.update(pkt.subarray(pnOffset + pnLen, tagAt)), d.final()])
    return { packetNumber: pn, payload }
  } catch {
    return undefined // authentication failed
  }
}
