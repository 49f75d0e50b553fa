/**
 * @module l7/tls
 * TLS handshake hellos (RFC 8446 §4.1.2-4.1.3 for TLS 1.3, RFC 5246 §7.4.1 for TLS 1.2 and earlier):
 * record and hello versions, SNI (RFC 6066 §3), ALPN (RFC 7301), cipher suites, extension types,
 * supported groups (RFC 8422 §5.1.1 / RFC 8446 §4.2.7), EC point formats and supported_versions
 * (RFC 8446 §4.2.1, which gives the negotiated version of TLS 1.3).
 *
 * Records (§5.1) are framed from the reassembled stream; handshake messages may span records, so the
 * handshake bytes of each direction are gathered (bounded by MAX_HANDSHAKE) and parsed when a message is
 * complete. One transaction per handshake: after the ServerHello, records are followed (not decrypted) until
 * the client's first encrypted record, which gives the setup time and ends the transaction (or an alert,
 * the end of the flow, or MAX_RECORDS_AFTER_HELLO records); the parser then needs no more bytes.
 * Resumption: a TLS 1.3 pre_shared_key in the ServerHello, or (TLS <= 1.2) an abbreviated handshake, the
 * server's ChangeCipherSpec right after its ServerHello, by session ID or ticket (RFC 5077).
 * Fingerprints (JA3, JA3S, JA4) are in ./tls-fingerprint.ts. The hello and Certificate bodies are read by
 * exported functions (parseClientHello, parseServerHello, parseCertificate) that DTLS (./dtls.ts) and QUIC
 * (./quic.ts) share.
 */
import {
  incomplete,
  L7Dir,
  OK,
  parseError,
  type L7Context,
  type L7Parser,
  type ParseResult,
} from './parser.js'
import { describeCertificate, type CertInfo } from './x509.js'

export interface TlsTx {
  /** Record-layer version of the first record (0x0301...). */
  recordVersion: number
  clientVersion: number
  /** ServerHello legacy_version, or supported_versions' choice (TLS 1.3); 0 without a ServerHello. */
  serverVersion: number
  sni: string
  /** ALPN protocols offered by the client, and the one the server chose. */
  alpnOffered: string[]
  alpn: string
  cipherSuites: number[]
  cipherSuite: number
  extensionTypes: number[]
  supportedGroups: number[]
  ecPointFormats: number[]
  supportedVersions: number[]
  sessionIdLength: number
  clientHelloUs: number
  serverHelloUs: number
  /** signature_algorithms (13) of the ClientHello, in hello order (for JA4). */
  signatureAlgorithms: number[]
  /** ServerHello legacy_version (before supported_versions), its extension types (for JA3S). */
  serverLegacyVersion: number
  serverExtensionTypes: number[]
  clientSessionId: Uint8Array
  serverSessionId: Uint8Array
  /** The client offered a non-empty session ticket (RFC 5077) / a pre_shared_key (RFC 8446 §4.2.11). */
  ticketOffered: boolean
  pskOffered: boolean
  /** How the session was set up: 0 full handshake, 1 resumed by session ID, 2 by session ticket, 3 TLS 1.3 PSK. */
  resumed: number
  /** ClientHello to the client's first encrypted record (handshake done), µs; 0 when not seen. */
  setupUs: number
  /** The server's certificate (TLS <= 1.2, where it travels in clear) and the length of its chain. */
  certificate: CertInfo | undefined
  chainLength: number
  /** What carried the handshake, as JA4's first letter: 't' TLS over TCP (also when absent), 'q' QUIC, 'd' DTLS. */
  transport?: 't' | 'q' | 'd'
}

/** Where a reader counts what it finds malformed (an L7Context of any transaction type). */
type Anomalies = Pick<L7Context<unknown>, 'anomaly'>

export const RESUMED_NONE = 0
export const RESUMED_SESSION_ID = 1
export const RESUMED_TICKET = 2
export const RESUMED_PSK = 3

const MAX_HANDSHAKE = 64 * 1024
const HANDSHAKE = 22
const CLIENT_HELLO = 1
const SERVER_HELLO = 2
const CERTIFICATE = 11

export interface TlsState {
  /** Handshake bytes gathered per direction (across records). */
  hs: [Uint8Array, Uint8Array]
  tx: TlsTx | undefined
  done: boolean
  /** The ServerHello was seen: records are followed (not parsed) until the handshake completes. */
  afterHello: boolean
  /** ChangeCipherSpec seen per direction: later handshake records are encrypted. */
  ccs: [boolean, boolean]
  /** Server handshake messages after the ServerHello and before its ChangeCipherSpec. */
  serverMessages: number
  /** Records followed since the ServerHello (bounded by MAX_RECORDS_AFTER_HELLO). */
  records: number
}

/** Records followed after the ServerHello before giving up on the setup time. */
const MAX_RECORDS_AFTER_HELLO = 64

/** An empty transaction (no hello seen yet). */
export function newTlsTx(transport: 't' | 'q' | 'd' = 't'): TlsTx {
  return {
    recordVersion: 0,
    clientVersion: 0,
    serverVersion: 0,
    sni: '',
    alpnOffered: [],
    alpn: '',
    cipherSuites: [],
    cipherSuite: 0,
    extensionTypes: [],
    supportedGroups: [],
    ecPointFormats: [],
    supportedVersions: [],
    sessionIdLength: 0,
    clientHelloUs: 0,
    serverHelloUs: 0,
    signatureAlgorithms: [],
    serverLegacyVersion: 0,
    serverExtensionTypes: [],
    clientSessionId: EMPTY,
    serverSessionId: EMPTY,
    ticketOffered: false,
    pskOffered: false,
    resumed: RESUMED_NONE,
    setupUs: 0,
    certificate: undefined,
    chainLength: 0,
    transport,
  }
}

class Truncated extends Error {}
const TRUNCATED = new Truncated('truncated')

/** Bounded reader over one handshake message body. */
class Reader {
  pos = 0
  constructor(
    readonly b: Uint8Array,
    readonly end = b.byteLength,
  ) {}
  u8(): number {
    if (this.pos + 1 > this.end) throw TRUNCATED
    return this.b[this.pos++]!
  }
  u16(): number {
    if (this.pos + 2 > this.end) throw TRUNCATED
    const v = (this.b[this.pos]! << 8) | this.b[this.pos + 1]!
    this.pos += 2
    return v
  }
  skip(n: number): void {
    if (this.pos + n > this.end) throw TRUNCATED
    this.pos += n
  }
  /** A child reader over the next `n` bytes. */
  sub(n: number): Reader {
    if (this.pos + n > this.end) throw TRUNCATED
    const r = new Reader(this.b, this.pos + n)
    r.pos = this.pos
    this.pos += n
    return r
  }
  get left(): number {
    return this.end - this.pos
  }
}

const ascii = (b: Uint8Array, a: number, e: number): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1', a, e)

function u16List(r: Reader): number[] {
  const out: number[] = []
  while (r.left >= 2) out.push(r.u16())
  return out
}

function alpnList(r: Reader): string[] {
  const out: string[] = []
  const list = r.sub(r.u16())
  while (list.left > 0) {
    const n = list.u8()
    const start = list.pos
    list.skip(n)
    out.push(ascii(r.b, start, start + n))
  }
  return out
}

/** One ClientHello extension; a malformed one throws Truncated (its neighbours are still read). */
function clientExtension(type: number, e: Reader, tx: TlsTx): void {
  if (type === 0) {
    // server_name: list of (type, name); host_name is type 0.
    const list = e.sub(e.u16())
    while (list.left >= 3) {
      const nt = list.u8()
      const n = list.u16()
      const start = list.pos
      list.skip(n)
      if (nt === 0 && tx.sni === '') tx.sni = ascii(e.b, start, start + n)
    }
  } else if (type === 10) tx.supportedGroups = u16List(e.sub(e.u16()))
  else if (type === 11) {
    const l = e.sub(e.u8())
    while (l.left > 0) tx.ecPointFormats.push(l.u8())
  } else if (type === 16) tx.alpnOffered = alpnList(e)
  else if (type === 43) tx.supportedVersions = u16List(e.sub(e.u8()))
  else if (type === 13) tx.signatureAlgorithms = u16List(e.sub(e.u16()))
  else if (type === 35) tx.ticketOffered = e.left > 0
  else if (type === 41) tx.pskOffered = true
}

/** Walks an extension block, calling `each` per extension; returns how many were malformed. */
function extensions(exts: Reader, each: (type: number, e: Reader) => void): number {
  let bad = 0
  while (exts.left >= 4) {
    const type = exts.u16()
    const e = exts.sub(exts.u16())
    try {
      each(type, e)
    } catch (err) {
      if (!(err instanceof Truncated)) throw err
      bad++
    }
  }
  return bad
}

/** Returns the number of malformed extensions. DTLS (RFC 6347 §4.2.1) adds a cookie after the session ID. */
function clientHello(body: Reader, tx: TlsTx, dtls = false): number {
  tx.clientVersion = body.u16()
  body.skip(32)
  const sid = body.u8()
  tx.sessionIdLength = sid
  tx.clientSessionId = body.b.slice(body.pos, body.pos + sid)
  body.skip(sid)
  if (dtls) body.skip(body.u8())
  tx.cipherSuites = u16List(body.sub(body.u16()))
  body.skip(body.u8()) // compression methods
  if (body.left < 2) return 0
  return extensions(body.sub(body.u16()), (type, e) => {
    tx.extensionTypes.push(type)
    clientExtension(type, e, tx)
  })
}

/** Returns the number of malformed extensions. */
function serverHello(body: Reader, tx: TlsTx): number {
  tx.serverVersion = body.u16()
  tx.serverLegacyVersion = tx.serverVersion
  body.skip(32)
  // TLS 1.3 drafts before 22 (0x7f01-0x7f15) had no legacy_session_id_echo and no compression method.
  const v = tx.serverVersion
  const draft = v >> 8 === 0x7f && (v & 0xff) < 22
  if (!draft) {
    const sid = body.u8()
    tx.serverSessionId = body.b.slice(body.pos, body.pos + sid)
    body.skip(sid)
  }
  tx.cipherSuite = body.u16()
  if (!draft) body.u8()
  if (body.left < 2) return 0
  return extensions(body.sub(body.u16()), (type, e) => {
    tx.serverExtensionTypes.push(type)
    if (type === 43 && e.left >= 2) tx.serverVersion = e.u16()
    else if (type === 16) tx.alpn = alpnList(e)[0] ?? ''
    else if (type === 41) tx.resumed = RESUMED_PSK
  })
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * The server's ChangeCipherSpec came with no handshake message after its ServerHello: an abbreviated
 * handshake (RFC 5246 §7.3), i.e. a resumed session; by session ID when the server echoed the client's,
 * else by ticket.
 */
function abbreviated(tx: TlsTx): void {
  if (tx.resumed !== RESUMED_NONE || tx.serverVersion >= 0x0304) return
  const echoed = tx.clientSessionId.byteLength > 0 && sameBytes(tx.clientSessionId, tx.serverSessionId)
  tx.resumed = tx.ticketOffered && !echoed ? RESUMED_TICKET : echoed ? RESUMED_SESSION_ID : RESUMED_TICKET
}

/** Certificate (RFC 5246 §7.4.2): a u24 list of u24-length DER certificates, the server's first. */
function certificates(body: Reader, tx: TlsTx, ctx: Anomalies): void {
  const list = body.sub(u24(body))
  let n = 0
  while (list.left >= 3) {
    const len = u24(list)
    const start = list.pos
    list.skip(len)
    if (n++ === 0) {
      tx.certificate = describeCertificate(list.b.subarray(start, start + len))
      if (tx.certificate === undefined) ctx.anomaly('tls_bad_certificate')
    }
  }
  tx.chainLength = n
}

function u24(r: Reader): number {
  return (r.u8() << 16) | r.u16()
}

/** Runs `read` over `body`; undefined when the body is truncated, else what `read` returned. */
function guarded<T>(body: Uint8Array, read: (r: Reader) => T): T | undefined {
  try {
    return read(new Reader(body))
  } catch (e) {
    if (!(e instanceof Truncated)) throw e
    return undefined
  }
}

/**
 * Reads a ClientHello body (the handshake message without its type and length) into `tx`. Returns the number
 * of malformed extensions (their neighbours are still read), or undefined when the body is truncated (what
 * came before the cut is in `tx`). `dtls`: the body has DTLS's cookie field (RFC 6347 §4.2.1).
 */
export function parseClientHello(body: Uint8Array, tx: TlsTx, dtls = false): number | undefined {
  return guarded(body, (r) => clientHello(r, tx, dtls))
}

/** Reads a ServerHello body into `tx` (DTLS's is the same); as parseClientHello. */
export function parseServerHello(body: Uint8Array, tx: TlsTx): number | undefined {
  return guarded(body, (r) => serverHello(r, tx))
}

/** Reads a Certificate body (TLS <= 1.2, DTLS): the server's certificate and the chain length. */
export function parseCertificate(body: Uint8Array, tx: TlsTx, ctx: Anomalies): boolean {
  return guarded(body, (r) => (certificates(r, tx, ctx), true)) === true
}

/** The handshake is over (or followed far enough): the transaction leaves and the parser is done. */
function complete(s: TlsState, ctx: L7Context<TlsTx>): void {
  if (s.tx !== undefined) ctx.emit(s.tx)
  s.tx = undefined
  s.done = true
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.byteLength === 0) return b.slice()
  const out = new Uint8Array(a.byteLength + b.byteLength)
  out.set(a)
  out.set(b, a.byteLength)
  return out
}

/** Parses the complete handshake messages gathered for `dir`; returns false when the parser is done. */
function handshakes(s: TlsState, dir: L7Dir, ctx: L7Context<TlsTx>): void {
  let hs = s.hs[dir]
  let p = 0
  while (!s.done && hs.byteLength - p >= 4) {
    const type = hs[p]!
    const len = (hs[p + 1]! << 16) | (hs[p + 2]! << 8) | hs[p + 3]!
    if (p + 4 + len > hs.byteLength) break
    const body = new Reader(hs.subarray(p + 4, p + 4 + len))
    const tx = (s.tx ??= newTlsTx())
    try {
      if (type === CLIENT_HELLO && dir === L7Dir.ToServer) {
        tx.clientHelloUs = ctx.tsUs
        if (clientHello(body, tx) > 0) ctx.anomaly('tls_bad_extension')
      } else if (type === SERVER_HELLO && dir === L7Dir.ToClient && !s.afterHello) {
        tx.serverHelloUs = ctx.tsUs
        if (serverHello(body, tx) > 0) ctx.anomaly('tls_bad_extension')
        s.afterHello = true
      } else if (dir === L7Dir.ToClient && s.afterHello) {
        s.serverMessages++
        if (type === CERTIFICATE && tx.serverVersion < 0x0304 && tx.certificate === undefined)
          certificates(body, tx, ctx)
      }
    } catch (e) {
      if (!(e instanceof Truncated)) throw e
      ctx.anomaly('tls_truncated_hello')
    }
    p += 4 + len
  }
  hs = hs.subarray(p)
  s.hs[dir] = hs.byteLength === 0 ? EMPTY : hs
}

const EMPTY = new Uint8Array(0)

export const tlsParser: L7Parser<TlsState, TlsTx> = {
  name: 'tls',
  transports: ['tcp'],
  ports: [443, 8443, 993, 995, 465, 636, 853, 5061],

  probe(b: Uint8Array, dir: L7Dir): boolean {
    // A handshake record (type 22, version 3.x) whose first message is a hello of the right direction.
    if (b.byteLength < 6 || b[0] !== HANDSHAKE || b[1] !== 3 || b[2]! > 4) return false
    const len = (b[3]! << 8) | b[4]!
    if (len < 4 || len > 16384 + 2048) return false
    return b[5] === (dir === L7Dir.ToServer ? CLIENT_HELLO : SERVER_HELLO)
  },

  newState(): TlsState {
    return {
      hs: [EMPTY, EMPTY],
      tx: undefined,
      done: false,
      afterHello: false,
      ccs: [false, false],
      serverMessages: 0,
      records: 0,
    }
  },

  parse(s: TlsState, dir: L7Dir, b: Uint8Array, ctx: L7Context<TlsTx>): ParseResult {
    let p = 0
    while (p < b.byteLength && !s.done) {
      if (b.byteLength - p < 5) return incomplete(p, 5)
      const type = b[p]!
      const len = (b[p + 3]! << 8) | b[p + 4]!
      if (b[p + 1] !== 3 || len > 16384 + 2048) return parseError('tls_bad_record')
      if (b.byteLength - p < 5 + len) return incomplete(p, 5 + len)
      if (s.afterHello && ++s.records > MAX_RECORDS_AFTER_HELLO) {
        complete(s, ctx)
        break
      }
      if (type === HANDSHAKE && !s.ccs[dir]) {
        if (s.tx === undefined && dir === L7Dir.ToServer) {
          s.tx = newTlsTx()
          s.tx.recordVersion = (b[p + 1]! << 8) | b[p + 2]!
        }
        if (s.hs[dir].byteLength + len > MAX_HANDSHAKE) return parseError('tls_handshake_too_long')
        const record = b.subarray(p + 5, p + 5 + len)
        if (s.hs[dir].byteLength === 0) {
          // Parsed in place; only what a message cut across records leaves is kept, as a copy (`b` is the
          // caller's buffer).
          s.hs[dir] = record
          handshakes(s, dir, ctx)
          if (s.hs[dir].byteLength > 0) s.hs[dir] = s.hs[dir].slice()
        } else {
          s.hs[dir] = concat(s.hs[dir], record)
          handshakes(s, dir, ctx)
        }
      } else if (type === 20) {
        // ChangeCipherSpec: what follows in this direction is encrypted.
        s.ccs[dir] = true
        if (dir === L7Dir.ToClient && s.afterHello && s.serverMessages === 0 && s.tx !== undefined)
          abbreviated(s.tx)
      } else if (type === 23 || (type === HANDSHAKE && s.ccs[dir])) {
        // The client's first encrypted record (its Finished, or application data) ends its handshake.
        if (dir === L7Dir.ToServer && s.afterHello) {
          const tx = s.tx
          if (tx !== undefined && tx.clientHelloUs > 0) tx.setupUs = Math.max(0, ctx.tsUs - tx.clientHelloUs)
          complete(s, ctx)
        }
      } else if (type === 21) {
        if (s.afterHello) complete(s, ctx) // an alert: the handshake failed or the session ends
      } else if (type !== 24) {
        return parseError('tls_bad_record')
      }
      p += 5 + len
    }
    return OK
  },

  gap(s: TlsState, _dir: L7Dir, _size: number, ctx: L7Context<TlsTx>): void {
    // Record framing is lost: emit what the ClientHello gave and stop.
    ctx.anomaly('tls_gap')
    if (s.tx !== undefined) ctx.emit(s.tx)
    s.tx = undefined
    s.done = true
  },

  wantsMore(s: TlsState): boolean {
    return !s.done
  },

  finish(s: TlsState, ctx: L7Context<TlsTx>): void {
    if (s.tx !== undefined && s.tx.clientHelloUs > 0) ctx.emit(s.tx)
    s.tx = undefined
  },
}
