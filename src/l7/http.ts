/**
 * @module l7/http
 * HTTP/1.0 and HTTP/1.1 messages (RFC 9110 semantics, RFC 9112 message syntax): request line, status line
 * and the header fields operators ask for (Host, User-Agent, Content-Type, Content-Length, Referer,
 * Location, Server, X-Forwarded-For). Bodies are skipped by length (Content-Length, chunked
 * Transfer-Encoding per RFC 9112 §7.1, or until close for a response without either), never parsed.
 *
 * A transaction is a request and its response; responses are matched to requests in order (pipelining,
 * RFC 9112 §9.3.2), interim 1xx responses other than 101 are skipped. The transaction leaves when the
 * response head is complete; requests without a response leave when the flow ends (at most MAX_PENDING
 * wait). After a 101 (WebSocket or h2c upgrade) or the HTTP/2 connection preface (RFC 9113 §3.4) the
 * parser needs no more bytes. After a successful CONNECT (RFC 9110 §9.3.6) it hands the flow on to whatever
 * the tunnel carries (`switchTo('')`: the engine recognises it by content, TLS mostly).
 *
 * After a TCP gap inside a body the body count absorbs it; a gap elsewhere makes the direction resync at
 * the next line that starts a request (a method) or a response ("HTTP/1.").
 */
import { indexOfBytes, latin1, lineEnd, startsWith } from './text.js'
import {
  incomplete,
  L7Dir,
  OK,
  parseError,
  switchTo,
  type L7Context,
  type L7Parser,
  type ParseResult,
} from './parser.js'

export interface HttpTx {
  method: string
  target: string
  /** "HTTP/1.1" as in the request line (the response's when there was no request). */
  version: string
  host: string
  userAgent: string
  referer: string
  xForwardedFor: string
  /** Response status (-1 without a response) and reason phrase. */
  status: number
  reason: string
  server: string
  location: string
  /** Content-Type and Content-Length of the response (of the request when there was no response). */
  contentType: string
  contentLength: number
  requestUs: number
  responseUs: number
  /** 'websocket', 'h2c', 'h2' (prior knowledge preface), 'connect' or ''. */
  upgrade: string
}

const enum Mode {
  Head = 0, // expecting a start line and headers
  Length = 1, // skipping `remaining` body bytes
  ChunkSize = 2, // expecting a chunk-size line
  ChunkData = 3, // skipping chunk data plus its CRLF (`remaining`)
  Trailers = 4, // expecting trailer lines up to the empty line
  UntilClose = 5, // response body delimited by the end of the connection
  Resync = 6, // after a gap: looking for the next start line
  Done = 7, // tunnel, HTTP/2 or unrecoverable: no more parsing
}

interface Side {
  mode: Mode
  remaining: number
}

export interface HttpState {
  sides: [Side, Side]
  /** Requests waiting for their response, oldest first. */
  pending: HttpTx[]
  /** Methods of pending requests whose response has no body (HEAD) are tracked on the tx. */
  done: boolean
  /** A CONNECT succeeded: the bytes after its response belong to the tunnel. */
  tunnel: boolean
}

const MAX_PENDING = 32
/** A header block longer than this is abandoned (Zeek and Suricata use similar limits). */
const MAX_HEAD = 16 * 1024

export const HTTP_METHODS = [
  'GET',
  'POST',
  'HEAD',
  'PUT',
  'DELETE',
  'OPTIONS',
  'CONNECT',
  'TRACE',
  'PATCH',
  'PROPFIND',
  'PROPPATCH',
  'MKCOL',
  'COPY',
  'MOVE',
  'LOCK',
  'UNLOCK',
  'SEARCH',
  'REPORT',
  'SUBSCRIBE',
  'NOTIFY',
  'M-SEARCH',
] as const

const H2_PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'

function isMethodStart(m: Uint8Array, o: number): boolean {
  for (const meth of HTTP_METHODS) if (startsWith(m, o, meth) && m[o + meth.length] === 0x20) return true
  return false
}

/** RFC 9110 §5.6.2 tchar, upper-case letters only for methods (extension methods such as CCM_POST). */
function isMethodChar(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2d || c === 0x2e
}

/** Any method token (1 to 32 characters) followed by a space: accepted once a flow is known to be HTTP. */
function isTokenMethodStart(m: Uint8Array, o: number): boolean {
  let i = o
  while (i < m.byteLength && i - o < 33 && isMethodChar(m[i]!)) i++
  return i > o && i - o <= 32 && m[i] === 0x20
}

/** A request line for probing: a known method, or an extension method with a "/" target or " HTTP/1.". */
function isRequestForProbe(m: Uint8Array): boolean {
  if (isMethodStart(m, 0)) return true
  if (!isTokenMethodStart(m, 0)) return false
  // An origin-form or asterisk target right after the method ("CCM_POST /x", a simple request too).
  const sp = m.indexOf(0x20)
  if (m[sp + 1] === 0x2f || m[sp + 1] === 0x2a) return true
  const e = lineEnd(m, 0, Math.min(m.byteLength, 8192))
  const line = latin1(m, 0, e < 0 ? Math.min(m.byteLength, 8192) : e)
  return / HTTP\/1\./.test(line)
}

function isResponseStart(m: Uint8Array, o: number): boolean {
  return startsWith(m, o, 'HTTP/1.') || startsWith(m, o, 'HTTP/0.9')
}

/**
 * The first line start at or after `from` (the start of `m`, or just after a "\n") that begins a request
 * (`toServer`) or a response; -1 when none. Line starts are found by a search for "\n", not by a test
 * per octet (a resync may look through a long body).
 */
export function messageStart(m: Uint8Array, from: number, toServer: boolean): number {
  const n = m.byteLength
  let i = from
  if (i > 0 && m[i - 1] !== 0x0a) {
    const nl = m.indexOf(0x0a, i)
    i = nl < 0 ? n : nl + 1
  }
  while (i < n) {
    if (toServer ? isTokenMethodStart(m, i) : isResponseStart(m, i)) return i
    const nl = m.indexOf(0x0a, i)
    if (nl < 0) return -1
    i = nl + 1
  }
  return -1
}

function newTx(): HttpTx {
  return {
    method: '',
    target: '',
    version: '',
    host: '',
    userAgent: '',
    referer: '',
    xForwardedFor: '',
    status: -1,
    reason: '',
    server: '',
    location: '',
    contentType: '',
    contentLength: -1,
    requestUs: 0,
    responseUs: 0,
    upgrade: '',
  }
}

/**
 * The header fields the parser reads (lower case, RFC 9110 field names), in the order of HeadField. Each
 * has its own pair of length and first letter, so that pair alone picks the candidate (READ_ID).
 */
const FIELDS_READ = [
  'host',
  'user-agent',
  'referer',
  'x-forwarded-for',
  'content-type',
  'content-length',
  'transfer-encoding',
  'upgrade',
  'server',
  'location',
] as const

const enum HeadField {
  Host = 0,
  UserAgent = 1,
  Referer = 2,
  XForwardedFor = 3,
  ContentType = 4,
  ContentLength = 5,
  TransferEncoding = 6,
  Upgrade = 7,
  Server = 8,
  Location = 9,
}

/** Per name length (< 32) and first letter (a = 0, lower-cased): 1 + the FIELDS_READ index, 0 for none. */
const READ_ID = new Uint8Array(32 * 26)
FIELDS_READ.forEach((n, i) => {
  const at = n.length * 26 + n.charCodeAt(0) - 0x61
  if (READ_ID[at] !== 0)
    throw new Error(`http: header names ${n} and ${FIELDS_READ[READ_ID[at]! - 1]} collide`)
  READ_ID[at] = i + 1
})

/**
 * One message head: its start line (trimmed) and the values (trimmed; first wins) of the fields in
 * FIELDS_READ. A single instance is reused for every head (its values are copied into the transaction).
 */
interface Head {
  start: string
  fields: (string | undefined)[]
}

const HEAD: Head = { start: '', fields: FIELDS_READ.map(() => undefined) }

/** Whitespace as String.prototype.trim sees it, among latin1 characters. */
function isTrimmed(c: number): boolean {
  return (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0xa0
}

/**
 * True when text [a, b) is the lower-case ASCII `name` once lower-cased (toLowerCase maps no other latin1
 * character to a lower-case ASCII letter).
 */
function isName(text: string, a: number, b: number, name: string): boolean {
  if (b - a !== name.length) return false
  for (let i = 0; i < name.length; i++) {
    const c = text.charCodeAt(a + i)
    const l = name.charCodeAt(i)
    if (c !== l && !(c >= 0x41 && c <= 0x5a && c + 0x20 === l)) return false
  }
  return true
}

/**
 * Splits a complete header block `text` (decoded latin1, one character per octet; it ends with its empty
 * line) into its start line and the fields in FIELDS_READ (into HEAD). Other header lines are only checked
 * for a colon, and cost no string.
 */
function parseHead(text: string, ctx: L7Context<HttpTx>): Head {
  const h = HEAD
  const fields = h.fields
  for (let i = 0; i < fields.length; i++) fields[i] = undefined
  const end = text.length
  let e = text.indexOf('\n')
  // (A block always ends with a line break: blockEnd found it.)
  if (e < 0) {
    h.start = ''
    return h
  }
  h.start = text.slice(0, e > 0 && text.charCodeAt(e - 1) === 0x0d ? e - 1 : e).trim()
  let p = e + 1
  while (p < end) {
    e = text.indexOf('\n', p)
    if (e < 0) break
    const stop = e > p && text.charCodeAt(e - 1) === 0x0d ? e - 1 : e
    if (stop > p) {
      const colon = text.indexOf(':', p)
      if (colon < 0 || colon >= stop || colon === p) ctx.anomaly('http_bad_header_line')
      else {
        // The name's bounds as trim() leaves them; its length and first letter pick the candidate.
        let a = p
        let b = colon
        while (a < b && isTrimmed(text.charCodeAt(a))) a++
        while (b > a && isTrimmed(text.charCodeAt(b - 1))) b--
        const first = (text.charCodeAt(a) | 0x20) - 0x61
        const id = b - a < 32 && first >= 0 && first < 26 ? READ_ID[(b - a) * 26 + first]! - 1 : -1
        if (id >= 0 && fields[id] === undefined && isName(text, a, b, FIELDS_READ[id]!))
          fields[id] = text.slice(colon + 1, stop).trim()
      }
    }
    p = e + 1
  }
  return h
}

/** `s` is 1 to 15 decimal digits (a Content-Length the parser takes, /^\d{1,15}$/). */
function isDecimal(s: string): boolean {
  const n = s.length
  if (n < 1 || n > 15) return false
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return false
  }
  return true
}

/** A trimmed Transfer-Encoding value whose last coding is chunked (/chunked\s*$/i once trimmed). */
function endsChunked(te: string): boolean {
  return te.length >= 7 && isName(te, te.length - 7, te.length, 'chunked')
}

/** Sets the body mode of `side` from the message's framing fields (RFC 9112 §6.3). */
function bodyMode(side: Side, f: Head['fields'], isResponse: boolean, ctx: L7Context<HttpTx>): void {
  const te = f[HeadField.TransferEncoding]
  if (te !== undefined && endsChunked(te)) {
    side.mode = Mode.ChunkSize
    return
  }
  const cl = f[HeadField.ContentLength]
  if (cl !== undefined) {
    if (!isDecimal(cl)) {
      ctx.anomaly('http_bad_content_length')
      side.mode = isResponse ? Mode.UntilClose : Mode.Head
      return
    }
    const n = Number(cl)
    side.mode = n > 0 ? Mode.Length : Mode.Head
    side.remaining = n
    return
  }
  side.mode = isResponse ? Mode.UntilClose : Mode.Head
}

/** `s` contains `word` once lower-cased (ASCII `word`). */
function includesLower(s: string, word: string): boolean {
  return s.toLowerCase().includes(word)
}

function onRequest(s: HttpState, text: string, ctx: L7Context<HttpTx>): void {
  const h = parseHead(text, ctx)
  const side = s.sides[L7Dir.ToServer]
  const start = h.start
  const tx = newTx()
  // The start line split at spaces: method, target (may hold spaces), version.
  const sp1 = start.indexOf(' ')
  const sp2 = start.lastIndexOf(' ')
  tx.method = sp1 < 0 ? start : start.slice(0, sp1)
  if (sp1 >= 0 && sp2 > sp1) {
    tx.target = start.slice(sp1 + 1, sp2)
    tx.version = start.slice(sp2 + 1)
  } else if (sp1 >= 0 && start.startsWith('HTTP/', sp1 + 1)) {
    // "OPTIONS HTTP/1.1": no target.
    tx.version = start.slice(sp1 + 1)
  } else {
    // RFC 1945 simple request (HTTP/0.9): the response is the body alone, up to the close.
    tx.target = sp1 < 0 ? '' : start.slice(sp1 + 1)
    tx.version = 'HTTP/0.9'
  }
  if (sp1 < 0) ctx.anomaly('http_bad_request_line')
  const f = h.fields
  tx.host = f[HeadField.Host] ?? ''
  tx.userAgent = f[HeadField.UserAgent] ?? ''
  tx.referer = f[HeadField.Referer] ?? ''
  tx.xForwardedFor = f[HeadField.XForwardedFor] ?? ''
  tx.contentType = f[HeadField.ContentType] ?? ''
  const cl = f[HeadField.ContentLength]
  if (cl !== undefined && isDecimal(cl)) tx.contentLength = Number(cl)
  const up = f[HeadField.Upgrade]
  if (up !== undefined) {
    if (includesLower(up, 'websocket')) tx.upgrade = 'websocket'
    else if (includesLower(up, 'h2c')) tx.upgrade = 'h2c'
  }
  tx.requestUs = ctx.tsUs
  bodyMode(side, f, false, ctx)
  if (s.pending.length >= MAX_PENDING) {
    ctx.anomaly('http_too_many_pending')
    ctx.emit(s.pending.shift()!)
  }
  s.pending.push(tx)
}

/** `s` is three decimal digits (/^\d{3}$/ on the status code). */
function isStatus(s: string): boolean {
  return s.length === 3 && isDecimal(s)
}

function onResponse(s: HttpState, text: string, ctx: L7Context<HttpTx>): void {
  const h = parseHead(text, ctx)
  const side = s.sides[L7Dir.ToClient]
  const start = h.start
  const sp1 = start.indexOf(' ')
  const version = sp1 < 0 ? start : start.slice(0, sp1)
  const sp2 = sp1 < 0 ? -1 : start.indexOf(' ', sp1 + 1)
  const code = sp1 < 0 ? '' : sp2 < 0 ? start.slice(sp1 + 1) : start.slice(sp1 + 1, sp2)
  const status = isStatus(code) ? Number(code) : -1
  if (status < 0) ctx.anomaly('http_bad_status_line')
  const f = h.fields
  if (status >= 100 && status < 200 && status !== 101) {
    // Interim response (100 Continue, 103 Early Hints): the final one follows.
    side.mode = Mode.Head
    return
  }
  const tx = s.pending.shift() ?? newTx()
  if (tx.version === '') tx.version = version
  tx.status = status
  tx.reason = sp2 < 0 ? '' : start.slice(sp2 + 1)
  tx.server = f[HeadField.Server] ?? ''
  tx.location = f[HeadField.Location] ?? ''
  const ct = f[HeadField.ContentType]
  if (ct !== undefined) tx.contentType = ct
  const cl = f[HeadField.ContentLength]
  tx.contentLength = cl !== undefined && isDecimal(cl) ? Number(cl) : -1
  tx.responseUs = ctx.tsUs
  if (status === 101) {
    if (tx.upgrade === '') {
      const up = f[HeadField.Upgrade]
      tx.upgrade = up !== undefined && includesLower(up, 'h2c') ? 'h2c' : 'websocket'
    }
    s.done = true
  } else if (tx.method === 'CONNECT' && status >= 200 && status < 300) {
    tx.upgrade = 'connect'
    s.done = true
    s.tunnel = true
  } else if (tx.method === 'HEAD' || status === 204 || status === 304) {
    side.mode = Mode.Head
  } else {
    bodyMode(side, f, true, ctx)
  }
  ctx.emit(tx)
}

/** The value of hex digit `c` (an octet), -1 for another character. */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  const l = c | 0x20
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1
}

const NL_NL = Uint8Array.of(0x0a, 0x0a)
const NL_CR_NL = Uint8Array.of(0x0a, 0x0d, 0x0a)

/**
 * The header block that starts at `from` of `m` with a character other than a line break, as latin1 text
 * (one character per octet) up to and including its empty line, or undefined while it is incomplete. The
 * first "\n\r\n" or "\n\n" ends it: two native searches, not one per line.
 */
export function headBlock(m: Uint8Array, from: number): string | undefined {
  const crlf = indexOfBytes(m, NL_CR_NL, from)
  if (crlf >= 0) {
    const text = latin1(m, from, crlf + 3)
    const lf = text.indexOf('\n\n')
    return lf < 0 ? text : text.slice(0, lf + 2)
  }
  const lf = indexOfBytes(m, NL_NL, from)
  return lf < 0 ? undefined : latin1(m, from, lf + 2)
}

/** Skips body bytes and parses heads of one direction. */
function parseSide(s: HttpState, dir: L7Dir, m: Uint8Array, ctx: L7Context<HttpTx>): ParseResult {
  const side = s.sides[dir]
  let p = 0
  const n = m.byteLength
  while (p < n) {
    if (s.done) return s.tunnel ? switchTo('', p) : OK
    switch (side.mode) {
      case Mode.Done:
      case Mode.UntilClose:
        return OK
      case Mode.Length: {
        const k = Math.min(side.remaining, n - p)
        side.remaining -= k
        p += k
        if (side.remaining === 0) side.mode = Mode.Head
        break
      }
      case Mode.ChunkData: {
        const k = Math.min(side.remaining, n - p)
        side.remaining -= k
        p += k
        if (side.remaining === 0) side.mode = Mode.ChunkSize
        break
      }
      case Mode.ChunkSize: {
        const e = lineEnd(m, p)
        if (e < 0) {
          if (n - p > 1024) return parseError('http_bad_chunk_size')
          return incomplete(p, n - p + 1)
        }
        // The line, trimmed as String.prototype.trim would (no string is made of it).
        let a = p
        let z = e
        while (a < z && isTrimmed(m[a]!)) a++
        while (z > a && isTrimmed(m[z - 1]!)) z--
        p = e + 1
        if (a === z) break // the CRLF after chunk data when the sender split it oddly
        // The leading hex digits (a chunk extension may follow), their value, and how many are significant.
        let i = a
        while (i < z && m[i] === 0x30) i++
        const digits = i
        let size = 0
        for (; i < z; i++) {
          const v = hexValue(m[i]!)
          if (v < 0) break
          size = size * 16 + v
        }
        if (i === a || i - digits > 12) {
          // Not a size, or one no real body has (and 2^64 wrap-around is a smuggling trick): resync.
          ctx.anomaly('http_bad_chunk_size')
          side.mode = Mode.Resync
          break
        }
        if (size === 0) side.mode = Mode.Trailers
        else {
          side.mode = Mode.ChunkData
          side.remaining = size + 2
        }
        break
      }
      case Mode.Trailers: {
        const e = lineEnd(m, p)
        if (e < 0) return incomplete(p, n - p + 1)
        const empty = e === p || (e === p + 1 && m[p] === 0x0d)
        p = e + 1
        if (empty) side.mode = Mode.Head
        break
      }
      case Mode.Resync: {
        // Find a line start that begins a message of this direction.
        const found = messageStart(m, p, dir === L7Dir.ToServer)
        if (found < 0) return n - p > 16 ? incomplete(n - 16, 17) : incomplete(p, 17)
        p = found
        side.mode = Mode.Head
        break
      }
      case Mode.Head: {
        // Stray CRLFs between messages are allowed (RFC 9112 §2.2).
        if (m[p] === 0x0d || m[p] === 0x0a) {
          p++
          break
        }
        if (dir === L7Dir.ToClient && s.pending[0]?.version === 'HTTP/0.9') {
          // The answer to a simple request has no status line or headers (RFC 1945 §4.1).
          const tx = s.pending.shift()!
          tx.responseUs = ctx.tsUs
          ctx.emit(tx)
          side.mode = Mode.UntilClose
          return OK
        }
        if (dir === L7Dir.ToServer && m[p] === 0x50 && n - p < H2_PREFACE.length) {
          if (startsWith(H2_BYTES, 0, latin1(m, p, n))) return incomplete(p, H2_PREFACE.length)
        }
        if (dir === L7Dir.ToServer && startsWith(m, p, H2_PREFACE)) {
          const tx = newTx()
          tx.version = 'HTTP/2'
          tx.upgrade = 'h2'
          tx.requestUs = ctx.tsUs
          ctx.emit(tx)
          s.done = true
          return OK
        }
        const text = headBlock(m, p)
        if (text === undefined) {
          if (n - p > MAX_HEAD) {
            ctx.anomaly('http_header_too_long')
            side.mode = Mode.Resync
            p = n
            break
          }
          return incomplete(p, n - p + 1)
        }
        const end = p + text.length
        const ok = dir === L7Dir.ToServer ? isTokenMethodStart(m, p) : isResponseStart(m, p)
        if (!ok) {
          ctx.anomaly(dir === L7Dir.ToServer ? 'http_bad_request_line' : 'http_bad_status_line')
          side.mode = Mode.Resync
          p = end
          break
        }
        if (dir === L7Dir.ToServer) onRequest(s, text, ctx)
        else onResponse(s, text, ctx)
        p = end
        break
      }
    }
  }
  return s.tunnel ? switchTo('', p) : OK
}

const H2_BYTES = Uint8Array.from(H2_PREFACE, (c) => c.charCodeAt(0))

export const httpParser: L7Parser<HttpState, HttpTx> = {
  name: 'http',
  transports: ['tcp'],
  ports: [80, 8080, 8000, 8008, 8888, 3128],
  upgradesTo: ['*'],

  probe(bytes: Uint8Array, dir: L7Dir): boolean {
    if (dir === L7Dir.ToServer) {
      // Every request (and the HTTP/2 preface) starts with a method character: one test for other payloads.
      if (bytes.byteLength === 0 || !isMethodChar(bytes[0]!)) return false
      return isRequestForProbe(bytes) || startsWith(bytes, 0, 'PRI * HTTP/2.0')
    }
    return isResponseStart(bytes, 0) && bytes.byteLength >= 12
  },

  newState(): HttpState {
    return {
      sides: [
        { mode: Mode.Head, remaining: 0 },
        { mode: Mode.Head, remaining: 0 },
      ],
      pending: [],
      done: false,
      tunnel: false,
    }
  },

  parse(s: HttpState, dir: L7Dir, bytes: Uint8Array, ctx: L7Context<HttpTx>): ParseResult {
    return parseSide(s, dir, bytes, ctx)
  },

  skip(s: HttpState, dir: L7Dir): number {
    // Body bytes the parse loop would only count down (see L7Parser.skip): counted as consumed now.
    const side = s.sides[dir]
    if (s.done) return 0
    switch (side.mode) {
      case Mode.Length:
      case Mode.ChunkData: {
        const k = side.remaining
        side.remaining = 0
        side.mode = side.mode === Mode.Length ? Mode.Head : Mode.ChunkSize
        return k
      }
      case Mode.UntilClose:
      case Mode.Done:
        return Infinity
      default:
        return 0
    }
  },

  gap(s: HttpState, dir: L7Dir, size: number, ctx: L7Context<HttpTx>): void {
    const side = s.sides[dir]
    if ((side.mode === Mode.Length || side.mode === Mode.ChunkData) && side.remaining > size) {
      side.remaining -= size
      return
    }
    if (side.mode === Mode.UntilClose || side.mode === Mode.Done) return
    ctx.anomaly('http_gap_resync')
    side.mode = Mode.Resync
  },

  wantsMore(s: HttpState): boolean {
    return !s.done
  },

  finish(s: HttpState, ctx: L7Context<HttpTx>): void {
    for (const tx of s.pending) ctx.emit(tx)
    s.pending = []
  },
}
