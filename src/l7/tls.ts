/**
 * @module l7/tls
 * TLS handshake hellos (RFC 8446 §4.1.2-4.1.3 for TLS 1.3, RFC 5246 §7.4.1 for TLS 1.2 and earlier):
 * record and hello versions, SNI (RFC 6066 §3), ALPN (RFC 7301), cipher suites, extension types,
 * supported groups (RFC 8422 §5.1.1 / RFC 8446 §4.2.7), EC point formats and supported_versions
 * (RFC 8446 §4.2.1, which gives the negotiated version of TLS 1.3).
 *
 * Records (§5.1) are framed from the reassembled stream; handshake messages may span records, so the
 * handshake bytes of each direction are gathered (bounded by MAX_HANDSHAKE) and parsed when a message is
 * complete. One transaction per handshake: it leaves at the ServerHello (or at the end of the flow with the
 * ClientHello alone), after which the parser needs no more bytes. Certificates, JA3/JA4 and DTLS come later.
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
}

const MAX_HANDSHAKE = 64 * 1024
const HANDSHAKE = 22
const CLIENT_HELLO = 1
const SERVER_HELLO = 2

export interface TlsState {
  /** Handshake bytes gathered per direction (across records). */
  hs: [Uint8Array, Uint8Array]
  tx: TlsTx | undefined
  done: boolean
}

function newTx(): TlsTx {
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

function clientHello(body: Reader, tx: TlsTx): void {
  tx.clientVersion = body.u16()
  body.skip(32)
  const sid = body.u8()
  tx.sessionIdLength = sid
  body.skip(sid)
  tx.cipherSuites = u16List(body.sub(body.u16()))
  body.skip(body.u8()) // compression methods
  if (body.left < 2) return
  const exts = body.sub(body.u16())
  while (exts.left >= 4) {
    const type = exts.u16()
    const e = exts.sub(exts.u16())
    tx.extensionTypes.push(type)
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
  }
}

function serverHello(body: Reader, tx: TlsTx): void {
  tx.serverVersion = body.u16()
  body.skip(32)
  body.skip(body.u8())
  tx.cipherSuite = body.u16()
  body.u8()
  if (body.left < 2) return
  const exts = body.sub(body.u16())
  while (exts.left >= 4) {
    const type = exts.u16()
    const e = exts.sub(exts.u16())
    if (type === 43 && e.left >= 2) tx.serverVersion = e.u16()
    else if (type === 16) tx.alpn = alpnList(e)[0] ?? ''
  }
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
    const tx = (s.tx ??= newTx())
    try {
      if (type === CLIENT_HELLO && dir === L7Dir.ToServer) {
        tx.clientHelloUs = ctx.tsUs
        clientHello(body, tx)
      } else if (type === SERVER_HELLO && dir === L7Dir.ToClient) {
        tx.serverHelloUs = ctx.tsUs
        serverHello(body, tx)
        ctx.emit(tx)
        s.tx = undefined
        s.done = true
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
    return { hs: [EMPTY, EMPTY], tx: undefined, done: false }
  },

  parse(s: TlsState, dir: L7Dir, b: Uint8Array, ctx: L7Context<TlsTx>): ParseResult {
    let p = 0
    while (p < b.byteLength && !s.done) {
      if (b.byteLength - p < 5) return incomplete(p, 5)
      const type = b[p]!
      const len = (b[p + 3]! << 8) | b[p + 4]!
      if (b[p + 1] !== 3 || len > 16384 + 2048) return parseError('tls_bad_record')
      if (b.byteLength - p < 5 + len) return incomplete(p, 5 + len)
      if (type === HANDSHAKE) {
        if (s.tx === undefined && dir === L7Dir.ToServer) {
          s.tx = newTx()
          s.tx.recordVersion = (b[p + 1]! << 8) | b[p + 2]!
        }
        if (s.hs[dir].byteLength + len > MAX_HANDSHAKE) return parseError('tls_handshake_too_long')
        s.hs[dir] = concat(s.hs[dir], b.subarray(p + 5, p + 5 + len))
        handshakes(s, dir, ctx)
      } else if (type !== 20 && type !== 21 && type !== 23 && type !== 24) {
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
