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
 * Memory: what the state keeps between calls (gathered handshake bytes, the open transaction's lists,
 * strings and certificate data; a hostile hello or chain makes it hundreds of kB) is charged to the flow's
 * L7 byte budget (ctx.budget: per flow and in total, with the engine's reassembly buffers). When a charge
 * does not fit, the anomaly tls_state_over_budget is counted and the parser stops: the transaction leaves
 * with what was read, and the state is freed.
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
  /**
   * Per direction: the type of a record being passed over (one whose body is never read: encrypted, alert,
   * ChangeCipherSpec, heartbeat), -1 when none, and how many of its octets are still to pass before its
   * last one. The record takes effect when its last octet arrives, as when it was gathered whole, without
   * holding its body (an encrypted record is up to 18 KB, and the server's records after its hello are
   * followed until the client's first encrypted one).
   */
  passing: [number, number]
  passLeft: [number, number]
  /** Bytes charged to ctx.budget for what the state keeps (see account), and the transaction's part. */
  charged: number
  txBytes: number
  /** The transaction changed since txBytes was estimated. */
  txChanged: boolean
}

/** Rough V8 heap sizes (64-bit): an array element, a string's header, a transaction without its lists. */
const ELEMENT_BYTES = 8
const STRING_BYTES = 24
const TX_BYTES = 512

/** Roughly the heap bytes transaction `tx` keeps: its lists, strings, session IDs and certificate. */
export function retainedTxBytes(tx: TlsTx): number {
  let n =
    TX_BYTES +
    ELEMENT_BYTES *
      (tx.alpnOffered.length +
        tx.cipherSuites.length +
        tx.extensionTypes.length +
        tx.supportedGroups.length +
        tx.ecPointFormats.length +
        tx.supportedVersions.length +
        tx.signatureAlgorithms.length +
        tx.serverExtensionTypes.length) +
    tx.sni.length +
    tx.alpn.length +
    tx.clientSessionId.byteLength +
    tx.serverSessionId.byteLength
  for (const a of tx.alpnOffered) n += STRING_BYTES + a.length
  const c = tx.certificate
  if (c !== undefined) {
    n +=
      TX_BYTES +
      c.subject.length +
      c.issuer.length +
      c.subjectCn.length +
      c.subjectO.length +
      c.issuerCn.length +
      c.issuerO.length +
      c.serial.length +
      c.keyAlg.length +
      c.sigAlg.length +
      c.sha1.byteLength +
      c.sha256.byteLength
    for (const d of c.sanDns) n += ELEMENT_BYTES + STRING_BYTES + d.length
  }
  return n
}

/**
 * Charges ctx.budget with what state `s` keeps now (the gathered handshake bytes and the open transaction),
 * releasing what it kept before; false when the growth does not fit the budget (nothing is charged then).
 */
function account(s: TlsState, ctx: L7Context<TlsTx>): boolean {
  const budget = ctx.budget
  if (budget === undefined) return true
  if (s.tx === undefined) s.txBytes = 0
  else if (s.txChanged) s.txBytes = retainedTxBytes(s.tx)
  s.txChanged = false
  const now = s.hs[0].byteLength + s.hs[1].byteLength + s.txBytes
  const more = now - s.charged
  if (more > 0 && !budget.reserve(more)) return false
  if (more < 0) budget.release(-more)
  s.charged = now
  return true
}

/** The state keeps nothing more: its charge goes back to the budget. */
function releaseAll(s: TlsState, ctx: L7Context<TlsTx>): void {
  s.hs = [EMPTY, EMPTY]
  if (s.charged > 0) ctx.budget?.release(s.charged)
  s.charged = 0
  s.txBytes = 0
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

/*
 * The readers below take the message bytes `b` and the bounds [p, end) of what they read, with no reader
 * object or view per field (a ClientHello has a dozen extensions). A body that ends too early throws
 * TRUNCATED; an extension that is malformed inside its own bounds only makes its reader return false (its
 * neighbours are still read). What was read before either stays in the transaction.
 */

/** Throws TRUNCATED unless `n` octets from `p` lie within `end`. */
function need(p: number, n: number, end: number): void {
  if (p + n > end) throw TRUNCATED
}

const u16at = (b: Uint8Array, p: number): number => (b[p]! << 8) | b[p + 1]!
const u24at = (b: Uint8Array, p: number): number => (b[p]! << 16) | (b[p + 1]! << 8) | b[p + 2]!

/** End of the vector whose `size`-octet length is at `p`, or -1 when it does not fit within `end`. */
function vectorEnd(b: Uint8Array, p: number, end: number, size: 1 | 2): number {
  if (p + size > end) return -1
  const e = p + size + (size === 1 ? b[p]! : u16at(b, p))
  return e > end ? -1 : e
}

/** Node's Buffer#latin1Slice works on any Uint8Array: a string without a Buffer view made for it. */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (a: number, z: number) => string })
  .latin1Slice

const ascii = (b: Uint8Array, a: number, e: number): string =>
  latin1Slice !== undefined
    ? latin1Slice.call(b, a, e)
    : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1', a, e)

/**
 * Entries kept per hello list (cipher suites, extension types, groups, signature algorithms, ALPN names):
 * real hellos have a few dozen, the most a record allows is 8000. Past this, a hostile hello's lists would
 * cost the state 8 octets an entry (see retainedTxBytes) for fingerprints of input no client sends; the rest
 * is counted (tls_list_cut) and left out.
 */
export const MAX_HELLO_LIST = 1024

/** Entries left out of the lists of the hello being read (handshakes() counts one anomaly a hello). */
let listsCut = 0

/** The 2-octet values in [p, end) (an odd last octet is left out), at most MAX_HELLO_LIST of them. */
function u16List(b: Uint8Array, p: number, end: number): number[] {
  const out: number[] = []
  for (; p + 2 <= end; p += 2) {
    if (out.length === MAX_HELLO_LIST) {
      listsCut += (end - p) >> 1
      break
    }
    out.push(u16at(b, p))
  }
  return out
}

/** Adds `v` to `list` unless it holds MAX_HELLO_LIST entries already. */
function pushCapped<T>(list: T[], v: T): void {
  if (list.length < MAX_HELLO_LIST) list.push(v)
  else listsCut++
}

/** ALPN protocol_name_list (RFC 7301 §3.1) at `p`; undefined when malformed. */
function alpnList(b: Uint8Array, p: number, end: number): string[] | undefined {
  const e = vectorEnd(b, p, end, 2)
  if (e < 0) return undefined
  const out: string[] = []
  for (p += 2; p < e;) {
    const n = b[p++]!
    if (p + n > e) return undefined
    pushCapped(out, ascii(b, p, p + n))
    p += n
  }
  return out
}

/** One ClientHello extension's body [p, end); false when it is malformed. */
function clientExtension(type: number, b: Uint8Array, p: number, end: number, tx: TlsTx): boolean {
  switch (type) {
    case 0: {
      // server_name: list of (type, name); host_name is type 0.
      const e = vectorEnd(b, p, end, 2)
      if (e < 0) return false
      for (p += 2; e - p >= 3;) {
        const nt = b[p]!
        const n = u16at(b, p + 1)
        p += 3
        if (p + n > e) return false
        if (nt === 0 && tx.sni === '') tx.sni = ascii(b, p, p + n)
        p += n
      }
      return true
    }
    case 10:
    case 13:
    case 43: {
      // supported_groups, signature_algorithms (2-octet lengths), supported_versions (1-octet length)
      const size = type === 43 ? 1 : 2
      const e = vectorEnd(b, p, end, size)
      if (e < 0) return false
      const list = u16List(b, p + size, e)
      if (type === 10) tx.supportedGroups = list
      else if (type === 13) tx.signatureAlgorithms = list
      else tx.supportedVersions = list
      return true
    }
    case 11: {
      const e = vectorEnd(b, p, end, 1)
      if (e < 0) return false
      for (p++; p < e; p++) tx.ecPointFormats.push(b[p]!)
      return true
    }
    case 16: {
      const list = alpnList(b, p, end)
      if (list === undefined) return false
      tx.alpnOffered = list
      return true
    }
    case 35:
      tx.ticketOffered = end > p
      return true
    case 41:
      tx.pskOffered = true
      return true
    default:
      return true
  }
}

/** One ServerHello extension at [p, end); false when it is malformed. */
function serverExtension(type: number, b: Uint8Array, p: number, end: number, tx: TlsTx): boolean {
  if (type === 43 && end - p >= 2) tx.serverVersion = u16at(b, p)
  else if (type === 16) {
    const list = alpnList(b, p, end)
    if (list === undefined) return false
    tx.alpn = list[0] ?? ''
  } else if (type === 41) tx.resumed = RESUMED_PSK
  return true
}

/**
 * The extension block at `p` (a 2-octet length, then type-length-value entries) of a ClientHello or, with
 * `server`, a ServerHello: each type is listed in the transaction and the extension read. Returns how many
 * were malformed (their neighbours are still read); none when the hello ends before the block.
 */
function extensions(b: Uint8Array, p: number, end: number, tx: TlsTx, server: boolean): number {
  if (end - p < 2) return 0
  const e = p + 2 + u16at(b, p)
  if (e > end) throw TRUNCATED
  p += 2
  let bad = 0
  while (e - p >= 4) {
    const type = u16at(b, p)
    const n = u16at(b, p + 2)
    p += 4
    need(p, n, e)
    if (server) {
      pushCapped(tx.serverExtensionTypes, type)
      if (!serverExtension(type, b, p, p + n, tx)) bad++
    } else {
      pushCapped(tx.extensionTypes, type)
      if (!clientExtension(type, b, p, p + n, tx)) bad++
    }
    p += n
  }
  return bad
}

/** Returns the number of malformed extensions. DTLS (RFC 6347 §4.2.1) adds a cookie after the session ID. */
function clientHello(b: Uint8Array, p: number, end: number, tx: TlsTx, dtls: boolean): number {
  need(p, 2, end)
  tx.clientVersion = u16at(b, p)
  need(p, 2 + 32 + 1, end)
  p += 2 + 32
  const sid = b[p++]!
  tx.sessionIdLength = sid
  tx.clientSessionId = b.slice(p, Math.min(p + sid, end))
  need(p, sid, end)
  p += sid
  if (dtls) {
    need(p, 1, end)
    const cookie = b[p++]!
    need(p, cookie, end)
    p += cookie
  }
  need(p, 2, end)
  const suites = u16at(b, p)
  p += 2
  need(p, suites, end)
  tx.cipherSuites = u16List(b, p, p + suites)
  p += suites
  need(p, 1, end)
  const compression = b[p++]!
  need(p, compression, end)
  p += compression
  return extensions(b, p, end, tx, false)
}

/** Returns the number of malformed extensions. */
function serverHello(b: Uint8Array, p: number, end: number, tx: TlsTx): number {
  need(p, 2, end)
  const v = u16at(b, p)
  tx.serverVersion = v
  tx.serverLegacyVersion = v
  need(p, 2 + 32, end)
  p += 2 + 32
  // TLS 1.3 drafts before 22 (0x7f01-0x7f15) had no legacy_session_id_echo and no compression method.
  const draft = v >> 8 === 0x7f && (v & 0xff) < 22
  if (!draft) {
    need(p, 1, end)
    const sid = b[p++]!
    tx.serverSessionId = b.slice(p, Math.min(p + sid, end))
    need(p, sid, end)
    p += sid
  }
  need(p, 2, end)
  tx.cipherSuite = u16at(b, p)
  p += 2
  if (!draft) {
    need(p, 1, end)
    p++
  }
  return extensions(b, p, end, tx, true)
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
function certificates(b: Uint8Array, p: number, end: number, tx: TlsTx, ctx: Anomalies): void {
  need(p, 3, end)
  const e = p + 3 + u24at(b, p)
  if (e > end) throw TRUNCATED
  let n = 0
  for (p += 3; e - p >= 3;) {
    const len = u24at(b, p)
    p += 3
    need(p, len, e)
    if (n++ === 0) {
      tx.certificate = describeCertificate(b.subarray(p, p + len))
      if (tx.certificate === undefined) ctx.anomaly('tls_bad_certificate')
    }
    p += len
  }
  tx.chainLength = n
}

/**
 * Reads a ClientHello body (the handshake message without its type and length) into `tx`. Returns the number
 * of malformed extensions (their neighbours are still read), or undefined when the body is truncated (what
 * came before the cut is in `tx`). `dtls`: the body has DTLS's cookie field (RFC 6347 §4.2.1).
 */
export function parseClientHello(body: Uint8Array, tx: TlsTx, dtls = false): number | undefined {
  try {
    return clientHello(body, 0, body.byteLength, tx, dtls)
  } catch (e) {
    if (e !== TRUNCATED) throw e
    return undefined
  }
}

/** Reads a ServerHello body into `tx` (DTLS's is the same); as parseClientHello. */
export function parseServerHello(body: Uint8Array, tx: TlsTx): number | undefined {
  try {
    return serverHello(body, 0, body.byteLength, tx)
  } catch (e) {
    if (e !== TRUNCATED) throw e
    return undefined
  }
}

/** Reads a Certificate body (TLS <= 1.2, DTLS): the server's certificate and the chain length. */
export function parseCertificate(body: Uint8Array, tx: TlsTx, ctx: Anomalies): boolean {
  try {
    certificates(body, 0, body.byteLength, tx, ctx)
    return true
  } catch (e) {
    if (e !== TRUNCATED) throw e
    return false
  }
}

/** The handshake is over (or followed far enough): the transaction leaves and the parser is done. */
function complete(s: TlsState, ctx: L7Context<TlsTx>): void {
  if (s.tx !== undefined) ctx.emit(s.tx)
  s.tx = undefined
  s.done = true
}

/** A copy of b[from, to) (also when `b` is a Buffer, whose slice is a view). */
const copyOf = (b: Uint8Array, from: number, to: number): Uint8Array =>
  Uint8Array.prototype.slice.call(b, from, to)

/**
 * Parses the complete handshake messages in hs[from, to) (bytes of direction `dir`); returns where the first
 * incomplete one starts (`to` when none is).
 */
function handshakes(
  s: TlsState,
  dir: L7Dir,
  ctx: L7Context<TlsTx>,
  hs: Uint8Array,
  from: number,
  to: number,
): number {
  let p = from
  while (!s.done && to - p >= 4) {
    const type = hs[p]!
    const end = p + 4 + u24at(hs, p + 1)
    if (end > to) break
    const tx = (s.tx ??= newTlsTx())
    s.txChanged = true
    try {
      listsCut = 0
      if (type === CLIENT_HELLO && dir === L7Dir.ToServer) {
        tx.clientHelloUs = ctx.tsUs
        if (clientHello(hs, p + 4, end, tx, false) > 0) ctx.anomaly('tls_bad_extension')
        if (listsCut > 0) ctx.anomaly('tls_list_cut')
      } else if (type === SERVER_HELLO && dir === L7Dir.ToClient && !s.afterHello) {
        tx.serverHelloUs = ctx.tsUs
        if (serverHello(hs, p + 4, end, tx) > 0) ctx.anomaly('tls_bad_extension')
        if (listsCut > 0) ctx.anomaly('tls_list_cut')
        s.afterHello = true
      } else if (dir === L7Dir.ToClient && s.afterHello) {
        s.serverMessages++
        if (type === CERTIFICATE && tx.serverVersion < 0x0304 && tx.certificate === undefined)
          certificates(hs, p + 4, end, tx, ctx)
      }
    } catch (e) {
      if (e !== TRUNCATED) throw e
      ctx.anomaly('tls_truncated_hello')
    }
    p = end
  }
  return p
}

const EMPTY = new Uint8Array(0)

/** A record of `type` whose body the parser never reads (in direction `dir` now): it may be passed over. */
function opaque(s: TlsState, dir: L7Dir, type: number): boolean {
  return type === 23 || type === 20 || type === 21 || type === 24 || (type === HANDSHAKE && s.ccs[dir])
}

/** A whole record of an opaque type (see opaque) of direction `dir` takes effect. */
function opaqueRecord(s: TlsState, dir: L7Dir, type: number, ctx: L7Context<TlsTx>): void {
  if (type === 20) {
    // ChangeCipherSpec: what follows in this direction is encrypted.
    s.ccs[dir] = true
    if (dir === L7Dir.ToClient && s.afterHello && s.serverMessages === 0 && s.tx !== undefined)
      abbreviated(s.tx)
  } else if (type === 23 || type === HANDSHAKE) {
    // The client's first encrypted record (its Finished, or application data) ends its handshake.
    if (dir === L7Dir.ToServer && s.afterHello) {
      const tx = s.tx
      if (tx !== undefined && tx.clientHelloUs > 0) tx.setupUs = Math.max(0, ctx.tsUs - tx.clientHelloUs)
      complete(s, ctx)
    }
  } else if (type === 21) {
    if (s.afterHello) complete(s, ctx) // an alert: the handshake failed or the session ends
  }
}

/** Counts a whole record followed after the ServerHello; false (the parser is done) past the bound. */
function counted(s: TlsState, ctx: L7Context<TlsTx>): boolean {
  if (s.afterHello && ++s.records > MAX_RECORDS_AFTER_HELLO) {
    complete(s, ctx)
    return false
  }
  return true
}

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
      passing: [-1, -1],
      passLeft: [0, 0],
      charged: 0,
      txBytes: 0,
      txChanged: false,
    }
  },

  parse(s: TlsState, dir: L7Dir, b: Uint8Array, ctx: L7Context<TlsTx>): ParseResult {
    const r = parseRecords(s, dir, b, ctx)
    if (account(s, ctx)) return r
    // Over the flow's (or the total) L7 budget: stop here; finish (called at once, as the parser wants no
    // more) emits the transaction with what was read, and frees the state.
    ctx.anomaly('tls_state_over_budget')
    s.done = true
    return r.kind === 'error' ? r : OK
  },

  skip(s: TlsState, dir: L7Dir): number {
    // The body of a record passed over, but its last octet (see parse), is counted as consumed now.
    const left = s.passLeft[dir]
    s.passLeft[dir] = 0
    return left
  },

  /** A gap inside a record passed over loses the framing as any other gap does. */
  gapsInSkip: true,

  gap(s: TlsState, _dir: L7Dir, _size: number, ctx: L7Context<TlsTx>): void {
    // Record framing is lost: emit what the ClientHello gave and stop.
    ctx.anomaly('tls_gap')
    if (s.tx !== undefined) ctx.emit(s.tx)
    s.tx = undefined
    s.done = true
    releaseAll(s, ctx)
  },

  wantsMore(s: TlsState): boolean {
    return !s.done
  },

  finish(s: TlsState, ctx: L7Context<TlsTx>): void {
    if (s.tx !== undefined && s.tx.clientHelloUs > 0) ctx.emit(s.tx)
    s.tx = undefined
    releaseAll(s, ctx)
  },
}

/** The records in `b` (see tlsParser.parse). */
function parseRecords(s: TlsState, dir: L7Dir, b: Uint8Array, ctx: L7Context<TlsTx>): ParseResult {
  let p = 0
  const passing = s.passing[dir]
  if (passing >= 0) {
    // The body of a record passed over (see skip): its last octet ends it.
    const left = s.passLeft[dir]
    if (b.byteLength <= left) {
      s.passLeft[dir] = left - b.byteLength
      return OK
    }
    s.passing[dir] = -1
    s.passLeft[dir] = 0
    p = left + 1
    if (s.done || !counted(s, ctx)) return OK
    opaqueRecord(s, dir, passing, ctx)
  }
  while (p < b.byteLength && !s.done) {
    if (b.byteLength - p < 5) return incomplete(p, 5)
    const type = b[p]!
    const len = (b[p + 3]! << 8) | b[p + 4]!
    if (b[p + 1] !== 3 || len > 16384 + 2048) return parseError('tls_bad_record')
    if (b.byteLength - p < 5 + len) {
      if (!opaque(s, dir, type)) return incomplete(p, 5 + len)
      s.passing[dir] = type
      s.passLeft[dir] = 5 + len - (b.byteLength - p) - 1
      return OK
    }
    if (!counted(s, ctx)) break
    if (type === HANDSHAKE && !s.ccs[dir]) {
      if (s.tx === undefined && dir === L7Dir.ToServer) {
        s.tx = newTlsTx()
        s.tx.recordVersion = (b[p + 1]! << 8) | b[p + 2]!
        s.txChanged = true
      }
      const held = s.hs[dir]
      if (held.byteLength + len > MAX_HANDSHAKE) return parseError('tls_handshake_too_long')
      const end = p + 5 + len
      if (held.byteLength === 0) {
        // Parsed in place; only what a message cut across records leaves is kept, as a copy (`b` is the
        // caller's buffer).
        const stop = handshakes(s, dir, ctx, b, p + 5, end)
        s.hs[dir] = stop === end ? EMPTY : copyOf(b, stop, end)
      } else {
        const hs = new Uint8Array(held.byteLength + len)
        hs.set(held)
        hs.set(b.subarray(p + 5, end), held.byteLength)
        const stop = handshakes(s, dir, ctx, hs, 0, hs.byteLength)
        // A copy of the rest: a view would keep the whole gathered message alive (and uncharged).
        s.hs[dir] = stop === hs.byteLength ? EMPTY : stop === 0 ? hs : hs.slice(stop)
      }
    } else if (opaque(s, dir, type)) {
      opaqueRecord(s, dir, type, ctx)
    } else {
      return parseError('tls_bad_record')
    }
    p += 5 + len
  }
  return OK
}
