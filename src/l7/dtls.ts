/**
 * @module l7/dtls
 * DTLS handshakes (DTLS 1.0/1.2: RFC 4347, RFC 6347; DTLS 1.3: RFC 9147), one transaction per handshake,
 * with the same fields as TLS (./tls.ts reads the hello and Certificate bodies): record and hello versions,
 * SNI, ALPN, cipher suites, extensions, groups, the server certificate (DTLS <= 1.2), and JA3/JA4 ('d').
 *
 * - Records (RFC 6347 §4.1): a 13-octet header (type, version, epoch, 48-bit sequence number, length);
 *   several per datagram. Records of epoch > 0, and DTLS 1.3 ciphertext records (unified header, first octet
 *   001xxxxx, RFC 9147 §4), are encrypted: the client's first one after the ServerHello ends the handshake
 *   and gives the setup time (ClientHello to that record).
 * - Handshake messages (RFC 6347 §4.2.2) carry message_seq, fragment_offset and fragment_length: fragments
 *   are reassembled per message (any order, duplicates and retransmissions ignored), each message bounded
 *   by MAX_MESSAGE octets and at most MAX_OPEN messages open per direction.
 * - The DTLS client is the side that sends the ClientHello, whichever side started the flow (WebRTC: either
 *   peer). A HelloVerifyRequest makes the client send its ClientHello again with a cookie: the first one is
 *   kept (RFC 6347 §4.2.1 has the second repeat it).
 * - WebRTC multiplexes STUN, DTLS and SRTP on one 5-tuple (RFC 7983 §7): the probe also accepts a STUN
 *   message, and datagrams whose first octet is not a DTLS content type are skipped; without a DTLS record
 *   in the first MAX_SKIPPED datagrams the parser gives up.
 * - Malformed input is counted (`dtls_*` anomalies), never thrown.
 */
import { L7Dir, OK, type L7Context, type L7Parser, type ParseResult } from './parser.js'
import { newTlsTx, parseCertificate, parseClientHello, parseServerHello, type TlsTx } from './tls.js'

const HANDSHAKE = 22
const CLIENT_HELLO = 1
const SERVER_HELLO = 2
const CERTIFICATE = 11
/** A reassembled handshake message is at most this long (certificate chains included). */
const MAX_MESSAGE = 64 * 1024
/** Handshake messages being reassembled per direction. */
const MAX_OPEN = 8
/** Records followed after the ServerHello before the transaction leaves without a setup time. */
const MAX_RECORDS_AFTER_HELLO = 64
/** Datagrams without a DTLS record (STUN, SRTP) before the parser gives up. */
const MAX_SKIPPED = 32

/** One handshake message being reassembled from fragments. */
interface Pending {
  seq: number
  type: number
  body: Uint8Array
  /** One flag per body octet: received. */
  have: Uint8Array
  missing: number
}

export interface DtlsState {
  tx: TlsTx | undefined
  done: boolean
  /** Direction of the ClientHello (-1 before it). */
  clientDir: number
  serverHello: boolean
  /** Messages being reassembled, and the message_seq values already delivered, per direction. */
  open: [Pending[], Pending[]]
  delivered: [Set<number>, Set<number>]
  recordsAfterHello: number
  skipped: number
}

const isDtlsVersion = (major: number, minor: number): boolean =>
  major === 0xfe && (minor === 0xff || minor === 0xfd || minor === 0xfc)

/** A STUN message (RFC 8489 §5): top bits 00, length a multiple of 4, the magic cookie. */
export function isStun(b: Uint8Array): boolean {
  return (
    b.byteLength >= 20 &&
    (b[0]! & 0xc0) === 0 &&
    b[4] === 0x21 &&
    b[5] === 0x12 &&
    b[6] === 0xa4 &&
    b[7] === 0x42 &&
    (((b[2]! << 8) | b[3]!) & 3) === 0 &&
    ((b[2]! << 8) | b[3]!) + 20 === b.byteLength
  )
}

/** A DTLS handshake record (13-octet header, epoch 0) holding a handshake message header. */
export function isDtlsHandshake(b: Uint8Array): boolean {
  if (b.byteLength < 13 + 12 || b[0] !== HANDSHAKE || !isDtlsVersion(b[1]!, b[2]!)) return false
  if (b[3] !== 0 || b[4] !== 0) return false // epoch 0: the handshake starts in clear
  const len = (b[11]! << 8) | b[12]!
  return len >= 12 && 13 + len <= b.byteLength && b[13]! >= 1 && b[13]! <= 24
}

function complete(s: DtlsState, ctx: L7Context<TlsTx>): void {
  if (s.tx !== undefined) ctx.emit(s.tx)
  s.tx = undefined
  s.done = true
}

/** A complete handshake message from direction `dir`; `recordVersion` of the record that completed it. */
function message(
  s: DtlsState,
  dir: L7Dir,
  type: number,
  body: Uint8Array,
  recordVersion: number,
  ctx: L7Context<TlsTx>,
): void {
  if (type === CLIENT_HELLO && s.clientDir === -1) {
    s.clientDir = dir
    const tx = (s.tx ??= newTlsTx('d'))
    tx.recordVersion = recordVersion
    tx.clientHelloUs = ctx.tsUs
    const r = parseClientHello(body, tx, true)
    if (r === undefined) ctx.anomaly('dtls_truncated_hello')
    else if (r > 0) ctx.anomaly('dtls_bad_extension')
    return
  }
  if ((dir as number) === s.clientDir || s.clientDir === -1) return
  const tx = s.tx
  if (tx === undefined) return
  if (type === SERVER_HELLO && !s.serverHello) {
    s.serverHello = true
    tx.serverHelloUs = ctx.tsUs
    const r = parseServerHello(body, tx)
    if (r === undefined) ctx.anomaly('dtls_truncated_hello')
    else if (r > 0) ctx.anomaly('dtls_bad_extension')
  } else if (
    type === CERTIFICATE &&
    s.serverHello &&
    tx.certificate === undefined &&
    tx.serverVersion !== 0xfefc
  ) {
    if (!parseCertificate(body, tx, ctx)) ctx.anomaly('dtls_bad_certificate')
  }
}

/** One handshake fragment (the record's fragment, possibly several). */
function fragments(
  s: DtlsState,
  dir: L7Dir,
  b: Uint8Array,
  recordVersion: number,
  ctx: L7Context<TlsTx>,
): void {
  let p = 0
  while (!s.done && b.byteLength - p >= 12) {
    const type = b[p]!
    const length = (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!
    const seq = (b[p + 4]! << 8) | b[p + 5]!
    const off = (b[p + 6]! << 16) | (b[p + 7]! << 8) | b[p + 8]!
    const flen = (b[p + 9]! << 16) | (b[p + 10]! << 8) | b[p + 11]!
    p += 12
    if (off + flen > length || p + flen > b.byteLength) return void ctx.anomaly('dtls_bad_fragment')
    const frag = b.subarray(p, p + flen)
    p += flen
    if (s.delivered[dir].has(seq)) continue // a retransmission
    if (length > MAX_MESSAGE) {
      ctx.anomaly('dtls_message_too_long')
      continue
    }
    if (off === 0 && flen === length) {
      s.delivered[dir].add(seq)
      message(s, dir, type, frag, recordVersion, ctx)
      continue
    }
    const open = s.open[dir]
    let m = open.find((x) => x.seq === seq)
    if (m === undefined) {
      if (open.length >= MAX_OPEN) {
        ctx.anomaly('dtls_too_many_fragments')
        continue
      }
      m = { seq, type, body: new Uint8Array(length), have: new Uint8Array(length), missing: length }
      open.push(m)
    }
    if (m.type !== type || m.body.byteLength !== length) {
      ctx.anomaly('dtls_bad_fragment')
      continue
    }
    for (let i = 0; i < flen; i++) {
      if (m.have[off + i] === 0) {
        m.have[off + i] = 1
        m.body[off + i] = frag[i]!
        m.missing--
      }
    }
    if (m.missing === 0) {
      open.splice(open.indexOf(m), 1)
      s.delivered[dir].add(seq)
      message(s, dir, m.type, m.body, recordVersion, ctx)
    }
  }
}

/** The client's first encrypted record after the ServerHello: the handshake is done. */
function encryptedRecord(s: DtlsState, dir: L7Dir, ctx: L7Context<TlsTx>): void {
  if ((dir as number) !== s.clientDir || !s.serverHello) return
  const tx = s.tx
  if (tx !== undefined && tx.clientHelloUs > 0) tx.setupUs = Math.max(0, ctx.tsUs - tx.clientHelloUs)
  complete(s, ctx)
}

export const dtlsParser: L7Parser<DtlsState, TlsTx> = {
  name: 'dtls',
  transports: ['udp'],
  // DTLS-SRTP (WebRTC) uses ephemeral ports; these are DTLS services: CAPWAP, OpenVPN-like VPNs, CoAP/DTLS.
  ports: [443, 4433, 5246, 5247, 5684, 3391],

  probe(b: Uint8Array, _dir: L7Dir, transport): boolean {
    return transport === 'udp' && (isDtlsHandshake(b) || isStun(b))
  },

  newState(): DtlsState {
    return {
      tx: undefined,
      done: false,
      clientDir: -1,
      serverHello: false,
      open: [[], []],
      delivered: [new Set(), new Set()],
      recordsAfterHello: 0,
      skipped: 0,
    }
  },

  parse(s: DtlsState, dir: L7Dir, b: Uint8Array, ctx: L7Context<TlsTx>): ParseResult {
    if (s.done) return OK
    const first = b[0] ?? 0
    // RFC 7983 §7: 20..63 is DTLS; STUN (0..3), ZRTP, TURN channels and RTP/RTCP (128..191) are not ours.
    if (first < 20 || first > 63) {
      if (s.tx === undefined && ++s.skipped > MAX_SKIPPED) complete(s, ctx)
      return OK
    }
    let p = 0
    while (p < b.byteLength && !s.done) {
      const type = b[p]!
      if ((type & 0xe0) === 0x20) {
        // DTLS 1.3 unified header (ciphertext); its length may be absent, so it ends the walk.
        encryptedRecord(s, dir, ctx)
        break
      }
      if (b.byteLength - p < 13) {
        ctx.anomaly('dtls_truncated_record')
        break
      }
      if (!isDtlsVersion(b[p + 1]!, b[p + 2]!)) {
        ctx.anomaly('dtls_bad_record')
        break
      }
      const epoch = (b[p + 3]! << 8) | b[p + 4]!
      const len = (b[p + 11]! << 8) | b[p + 12]!
      if (p + 13 + len > b.byteLength) {
        ctx.anomaly('dtls_truncated_record')
        break
      }
      const body = b.subarray(p + 13, p + 13 + len)
      if (s.serverHello && ++s.recordsAfterHello > MAX_RECORDS_AFTER_HELLO) {
        complete(s, ctx)
        break
      }
      if (epoch > 0 || type === 23) encryptedRecord(s, dir, ctx)
      else if (type === HANDSHAKE) fragments(s, dir, body, (b[p + 1]! << 8) | b[p + 2]!, ctx)
      else if (type === 21 && s.serverHello) complete(s, ctx) // alert: the handshake failed
      p += 13 + len
    }
    return OK
  },

  wantsMore(s: DtlsState): boolean {
    return !s.done
  },

  finish(s: DtlsState, ctx: L7Context<TlsTx>): void {
    if (s.tx !== undefined && s.tx.clientHelloUs > 0) ctx.emit(s.tx)
    s.tx = undefined
  },
}
