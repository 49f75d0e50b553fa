/**
 * @module l7/quic
 * QUIC handshakes (RFC 9000 §17.2 long headers, RFC 9001 Initial protection, RFC 9369 QUIC v2, drafts 21-34
 * and Google T050/T051/Q050: their handshake frame is 0x08, and Q050's hello is Google's CHLO tag map, of
 * which the SNI is read), one transaction per connection: the version, the connection IDs, and what the
 * TLS 1.3 ClientHello and ServerHello carried in the Initial packets' CRYPTO frames (SNI, ALPN, cipher
 * suites, extensions, groups, supported_versions; the JA4 'q' fingerprint is computed from them).
 *
 * - Detection by content: a long header with the fixed bit, a version whose Initial keys are known, and the
 *   Initial packet type (any UDP port).
 * - The client is the side whose Initial opens with the client keys of its own Destination Connection ID;
 *   the server's Initial packets open with the server keys of that same DCID (RFC 9001 §5.2). A Retry
 *   makes the client start again with a new DCID: keys follow the DCID of the client's latest Initial.
 * - Coalesced packets (RFC 9000 §12.2) are walked by their Length field; 0-RTT and Handshake packets are
 *   skipped (their keys are not derivable), except that the client's first Handshake or 1-RTT packet after
 *   both hellos ends the handshake and gives the setup time (ClientHello to that packet).
 * - Frames in Initial packets (RFC 9000 §17.2.2, §19): PADDING, PING, ACK, CRYPTO and CONNECTION_CLOSE; any
 *   other type is a protocol violation (counted; the packet's remaining frames are dropped).
 * - CRYPTO data is reassembled by offset per side (frames and packets may come out of order, a ClientHello
 *   may span several Initial packets), bounded by MAX_CRYPTO octets (contiguous, and again for the pieces
 *   that wait for a gap to fill) and MAX_CHUNKS pending pieces.
 * - Malformed or undecryptable packets are counted anomalies (`quic_*`); nothing throws.
 */
import { parseClientHello, parseServerHello, newTlsTx, type TlsTx } from './tls.js'
import { L7Dir, OK, type L7Context, type L7Parser, type ParseResult } from './parser.js'
import {
  initialKeys,
  openLongHeader,
  quicVersionInfo,
  type InitialKeys,
  type QuicVersionInfo,
} from './quic-crypto.js'

export interface QuicTx extends TlsTx {
  /** Version of the client's Initial packets (0x00000001, 0x6b3343cf, 0xff00001d, ...). */
  quicVersion: number
  /** Destination Connection ID of the client's first Initial (the Initial keys' input), its Source CID. */
  dcid: Uint8Array
  scid: Uint8Array
  /** Source Connection ID of the server's first Initial. */
  serverScid: Uint8Array
}

/** CRYPTO stream octets kept per side (a ClientHello with post-quantum key shares is ~2 KB). */
const MAX_CRYPTO = 64 * 1024
/** Out-of-order CRYPTO pieces kept per side until the gap before them is filled. */
const MAX_CHUNKS = 256
/** Datagrams (both directions) after the ClientHello before the transaction leaves without a setup time. */
const MAX_DATAGRAMS_AFTER_HELLO = 32
/** Datagrams without a readable ClientHello before the parser gives up. */
const MAX_DATAGRAMS_BEFORE_HELLO = 16

const CLIENT_HELLO = 1
const SERVER_HELLO = 2
const EMPTY = new Uint8Array(0)

/** CRYPTO frame data of one side, reassembled by offset. */
class CryptoStream {
  /** The contiguous data from offset 0. */
  data: Uint8Array = EMPTY
  /** Octets of `data` already parsed as handshake messages. */
  parsed = 0
  private pending: Array<{ at: number; bytes: Uint8Array }> = []
  /** Octets held in `pending` (bounded by MAX_CRYPTO, as the contiguous data is). */
  private pendingBytes = 0

  /** Adds `bytes` at stream offset `at`; returns an anomaly name when it is refused. */
  add(at: number, bytes: Uint8Array): string | undefined {
    const end = at + bytes.byteLength
    if (end > MAX_CRYPTO) return 'quic_crypto_too_long'
    if (end <= this.data.byteLength || bytes.byteLength === 0) return undefined // already have it
    if (at > this.data.byteLength) {
      if (this.pending.length >= MAX_CHUNKS || this.pendingBytes + bytes.byteLength > MAX_CRYPTO)
        return 'quic_crypto_too_fragmented'
      this.pending.push({ at, bytes: bytes.slice() })
      this.pendingBytes += bytes.byteLength
      return undefined
    }
    this.append(at, bytes)
    // Pieces that arrived early and now touch the contiguous data join it.
    for (let joined = true; joined;) {
      joined = false
      for (let i = 0; i < this.pending.length; i++) {
        const c = this.pending[i]!
        if (c.at > this.data.byteLength) continue
        this.pending.splice(i, 1)
        this.pendingBytes -= c.bytes.byteLength
        this.append(c.at, c.bytes)
        joined = true
        break
      }
    }
    return undefined
  }

  private append(at: number, bytes: Uint8Array): void {
    const have = this.data.byteLength
    const fresh = bytes.subarray(have - at)
    if (fresh.byteLength === 0) return
    const out = new Uint8Array(have + fresh.byteLength)
    out.set(this.data)
    out.set(fresh, have)
    this.data = out
  }

  /** The next complete handshake message (type and body), or undefined. */
  next(): { type: number; body: Uint8Array } | undefined {
    const d = this.data
    const p = this.parsed
    if (d.byteLength - p < 4) return undefined
    const len = (d[p + 1]! << 16) | (d[p + 2]! << 8) | d[p + 3]!
    if (p + 4 + len > d.byteLength) return undefined
    this.parsed = p + 4 + len
    return { type: d[p]!, body: d.subarray(p + 4, p + 4 + len) }
  }
}

export interface QuicState {
  tx: QuicTx | undefined
  done: boolean
  /** Direction the client's Initial packets travel (-1 until one opened). */
  clientDir: number
  /** The DCID the Initial keys derive from, and those keys. */
  keyDcid: Uint8Array | undefined
  keys: [InitialKeys | undefined, InitialKeys | undefined]
  /** CRYPTO streams: [client, server]. */
  crypto: [CryptoStream, CryptoStream]
  clientHello: boolean
  serverHello: boolean
  datagrams: number
  afterHello: number
}

/** A QUIC variable-length integer (RFC 9000 §16) at `p`: [value, next position], or undefined past `end`. */
function varint(b: Uint8Array, p: number, end: number): [number, number] | undefined {
  if (p >= end) return undefined
  const n = 1 << (b[p]! >> 6)
  if (p + n > end) return undefined
  let v = b[p]! & 0x3f
  for (let i = 1; i < n; i++) v = v * 256 + b[p + i]!
  return [v, p + n]
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.byteLength === b.byteLength && a.every((v, i) => v === b[i])

function newQuicTx(version: number, dcid: Uint8Array, scid: Uint8Array): QuicTx {
  return { ...newTlsTx('q'), quicVersion: version, dcid: dcid.slice(), scid: scid.slice(), serverScid: EMPTY }
}

/**
 * Walks the frames of an opened Initial payload, feeding CRYPTO data to `stream`. Returns false when a
 * CONNECTION_CLOSE ends the connection.
 */
function frames(payload: Uint8Array, stream: CryptoStream, google: boolean, ctx: L7Context<QuicTx>): boolean {
  const end = payload.byteLength
  let p = 0
  while (p < end) {
    const t = varint(payload, p, end)
    if (t === undefined) break
    const type = t[0]
    p = t[1]
    if (type === 0x00) {
      while (p < end && payload[p] === 0) p++ // PADDING runs
    } else if (type === 0x01) {
      // PING
    } else if (type === 0x02 || type === 0x03) {
      // ACK: largest, delay, range count, first range, then count (gap, length) pairs; ECN counts (0x03).
      let fields = 4
      let count = -1
      for (let i = 0; i < fields; i++) {
        const v = varint(payload, p, end)
        if (v === undefined) return bad(ctx, 'quic_bad_frame')
        p = v[1]
        if (i === 2) {
          count = v[0]
          if (count > end) return bad(ctx, 'quic_bad_frame')
          fields += 2 * count
        }
      }
      if (type === 0x03)
        for (let i = 0; i < 3; i++) {
          const v = varint(payload, p, end)
          if (v === undefined) return bad(ctx, 'quic_bad_frame')
          p = v[1]
        }
    } else if (type === 0x06 || (google && type === 0x08)) {
      const off = varint(payload, p, end)
      const len = off && varint(payload, off[1], end)
      if (off === undefined || len === undefined || len[1] + len[0] > end) return bad(ctx, 'quic_bad_frame')
      const refused = stream.add(off[0], payload.subarray(len[1], len[1] + len[0]))
      if (refused !== undefined) ctx.anomaly(refused)
      p = len[1] + len[0]
    } else if (type === 0x1c || type === 0x1d) {
      return false // CONNECTION_CLOSE: the handshake ends here
    } else {
      return bad(ctx, 'quic_bad_frame')
    }
  }
  return true
}

function bad(ctx: L7Context<QuicTx>, name: string): boolean {
  ctx.anomaly(name)
  return true
}

function complete(s: QuicState, ctx: L7Context<QuicTx>): void {
  if (s.tx !== undefined) ctx.emit(s.tx)
  s.tx = undefined
  s.done = true
}

/** Parses the complete handshake messages of side `role` (0 client, 1 server). */
function handshakes(s: QuicState, role: number, info: QuicVersionInfo, ctx: L7Context<QuicTx>): void {
  const tx = s.tx
  if (tx === undefined) return
  if (!info.tls) {
    if (role === 0 && !s.clientHello) chlo(s, tx, ctx)
    return
  }
  for (let m = s.crypto[role]!.next(); m !== undefined; m = s.crypto[role]!.next()) {
    if (role === 0 && m.type === CLIENT_HELLO && !s.clientHello) {
      s.clientHello = true
      tx.clientHelloUs = ctx.tsUs
      const r = parseClientHello(m.body, tx)
      if (r === undefined) ctx.anomaly('quic_truncated_hello')
      else if (r > 0) ctx.anomaly('quic_bad_extension')
    } else if (role === 1 && m.type === SERVER_HELLO && !s.serverHello) {
      s.serverHello = true
      tx.serverHelloUs = ctx.tsUs
      const r = parseServerHello(m.body, tx)
      if (r === undefined) ctx.anomaly('quic_truncated_hello')
      else if (r > 0) ctx.anomaly('quic_bad_extension')
    }
  }
}

/**
 * Google QUIC Q050's client hello: a tag/value map ("CHLO", u16 tag count, u16 padding, then per tag its
 * name and the end offset of its value, little-endian u32, then the values). The SNI tag names the server;
 * there is no TLS, so no cipher suites or fingerprints. Parsed once the whole map is in the stream.
 */
function chlo(s: QuicState, tx: QuicTx, ctx: L7Context<QuicTx>): void {
  const d = s.crypto[0].data
  if (d.byteLength < 8) return
  if (d[0] !== 0x43 || d[1] !== 0x48 || d[2] !== 0x4c || d[3] !== 0x4f) {
    s.clientHello = true
    return void ctx.anomaly('quic_bad_chlo')
  }
  const n = d[4]! | (d[5]! << 8)
  const values = 8 + 8 * n
  if (d.byteLength < values) return
  const end = (i: number): number =>
    (d[12 + 8 * i]! | (d[13 + 8 * i]! << 8) | (d[14 + 8 * i]! << 16) | (d[15 + 8 * i]! << 24)) >>> 0
  if (n > 0 && d.byteLength < values + end(n - 1)) return // wait for the rest (bounded by MAX_CRYPTO)
  s.clientHello = true
  tx.clientHelloUs = ctx.tsUs
  let prev = 0
  for (let i = 0; i < n; i++) {
    const e = end(i)
    if (e < prev || values + e > d.byteLength) return void ctx.anomaly('quic_bad_chlo')
    const tag = String.fromCharCode(d[8 + 8 * i]!, d[9 + 8 * i]!, d[10 + 8 * i]!, d[11 + 8 * i]!)
    if (tag === 'SNI\0') tx.sni = Buffer.from(d.subarray(values + prev, values + e)).toString('latin1')
    prev = e
  }
}

/** One Initial packet `pkt` (its first octet at 0, its end at `end`) from direction `dir`. */
function initial(
  s: QuicState,
  dir: L7Dir,
  pkt: Uint8Array,
  pnOffset: number,
  end: number,
  h: { version: number; info: QuicVersionInfo; dcid: Uint8Array; scid: Uint8Array },
  ctx: L7Context<QuicTx>,
): boolean {
  const role = s.clientDir === -1 || (dir as number) === s.clientDir ? 0 : 1
  let opened = s.keys[role] === undefined ? undefined : openLongHeader(pkt, pnOffset, end, s.keys[role])
  if (opened === undefined && role === 0 && (s.keyDcid === undefined || !sameBytes(s.keyDcid, h.dcid))) {
    // The client's first Initial, or its first after a Retry (RFC 9001 §5.2): keys from its own DCID. (After
    // the server's first Initial the client addresses the server's SCID, but the keys stay: tried first.)
    const keys = initialKeys(h.info, h.dcid, 'client')
    opened = openLongHeader(pkt, pnOffset, end, keys)
    if (opened !== undefined) {
      s.keyDcid = h.dcid.slice()
      s.keys = [keys, initialKeys(h.info, h.dcid, 'server')]
      s.clientDir = dir
    }
  }
  if (opened === undefined) {
    ctx.anomaly(s.clientDir === -1 ? 'quic_undecryptable' : 'quic_bad_initial')
    return true
  }
  if (s.tx === undefined) s.tx = newQuicTx(h.version, h.dcid, h.scid)
  if (role === 1 && s.tx.serverScid.byteLength === 0) s.tx.serverScid = h.scid.slice()
  const open = frames(opened.payload, s.crypto[role], h.info.google, ctx)
  handshakes(s, role, h.info, ctx)
  return open
}

/** Walks the packets of one datagram; returns false when the connection closed. */
function datagram(s: QuicState, dir: L7Dir, b: Uint8Array, ctx: L7Context<QuicTx>): boolean {
  let p = 0
  while (p < b.byteLength) {
    const first = b[p]!
    if ((first & 0x80) === 0) {
      // A short header (1-RTT) packet runs to the end of the datagram. Without the fixed bit it is padding
      // after the last packet (zeros some clients append), not a packet.
      if ((first & 0x40) === 0) return true
      if ((dir as number) === s.clientDir && s.clientHello && s.serverHello) return handshakeDone(s, ctx)
      return true
    }
    if (b.byteLength - p < 7) return bad(ctx, 'quic_bad_header')
    const version = ((b[p + 1]! << 24) | (b[p + 2]! << 16) | (b[p + 3]! << 8) | b[p + 4]!) >>> 0
    if (version === 0) return true // Version Negotiation
    const dl = b[p + 5]!
    const sl = p + 6 + dl < b.byteLength ? b[p + 6 + dl]! : -1
    if (dl > 20 || sl < 0 || sl > 20 || p + 7 + dl + sl > b.byteLength) return bad(ctx, 'quic_bad_header')
    const dcid = b.subarray(p + 6, p + 6 + dl)
    const scid = b.subarray(p + 7 + dl, p + 7 + dl + sl)
    const info = quicVersionInfo(version)
    if (info === undefined) return bad(ctx, 'quic_unknown_version')
    const type = (first >> 4) & 3
    if (type === info.retryType) return true // a Retry fills the datagram; the client's next Initial tells
    let q = p + 7 + dl + sl
    if (type === info.initialType) {
      const tok = varint(b, q, b.byteLength)
      if (tok === undefined || tok[1] + tok[0] > b.byteLength) return bad(ctx, 'quic_bad_header')
      q = tok[1] + tok[0]
    }
    const len = varint(b, q, b.byteLength)
    if (len === undefined || len[1] + len[0] > b.byteLength) return bad(ctx, 'quic_truncated_packet')
    const end = len[1] + len[0]
    if (type === info.initialType) {
      const pkt = b.subarray(p, end)
      if (!initial(s, dir, pkt, len[1] - p, end - p, { version, info, dcid, scid }, ctx)) return false
    } else if (
      type === info.handshakeType &&
      (dir as number) === s.clientDir &&
      s.clientHello &&
      s.serverHello
    ) {
      return handshakeDone(s, ctx)
    }
    p = end
  }
  return true
}

/** The client's first packet after the Initial exchange: the handshake is done (setup time). */
function handshakeDone(s: QuicState, ctx: L7Context<QuicTx>): boolean {
  const tx = s.tx
  if (tx !== undefined && tx.clientHelloUs > 0) tx.setupUs = Math.max(0, ctx.tsUs - tx.clientHelloUs)
  complete(s, ctx)
  return true
}

/** True for a QUIC long-header Initial packet of a version whose Initial keys are known. */
export function isQuicInitial(b: Uint8Array): boolean {
  if (b.byteLength < 7 || (b[0]! & 0xc0) !== 0xc0) return false
  const version = ((b[1]! << 24) | (b[2]! << 16) | (b[3]! << 8) | b[4]!) >>> 0
  const info = quicVersionInfo(version)
  return info !== undefined && ((b[0]! >> 4) & 3) === info.initialType && b[5]! <= 20
}

export const quicParser: L7Parser<QuicState, QuicTx> = {
  name: 'quic',
  transports: ['udp'],
  ports: [443, 8443, 784, 853],

  probe(b: Uint8Array, _dir: L7Dir, transport): boolean {
    return transport === 'udp' && isQuicInitial(b)
  },

  newState(): QuicState {
    return {
      tx: undefined,
      done: false,
      clientDir: -1,
      keyDcid: undefined,
      keys: [undefined, undefined],
      crypto: [new CryptoStream(), new CryptoStream()],
      clientHello: false,
      serverHello: false,
      datagrams: 0,
      afterHello: 0,
    }
  },

  parse(s: QuicState, dir: L7Dir, b: Uint8Array, ctx: L7Context<QuicTx>): ParseResult {
    if (s.done) return OK
    s.datagrams++
    if (!datagram(s, dir, b, ctx)) complete(s, ctx)
    else if (!s.done) {
      if (s.clientHello && ++s.afterHello > MAX_DATAGRAMS_AFTER_HELLO) complete(s, ctx)
      else if (!s.clientHello && s.datagrams > MAX_DATAGRAMS_BEFORE_HELLO) complete(s, ctx)
    }
    return OK
  },

  wantsMore(s: QuicState): boolean {
    return !s.done
  },

  finish(s: QuicState, ctx: L7Context<QuicTx>): void {
    if (s.tx !== undefined) ctx.emit(s.tx)
    s.tx = undefined
  },
}
