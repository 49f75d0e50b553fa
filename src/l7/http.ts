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
import { headerBlockEnd, latin1, lineEnd, startsWith } from './text.js'
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

interface Head {
  start: string
  fields: Map<string, string>
}

/** The header fields the parser reads (lower case); the others are only checked for their syntax. */
const FIELDS_READ: ReadonlySet<string> = new Set([
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
])

/**
 * Per name length: a bit per first letter (a = bit 0, lower-cased) of the FIELDS_READ names of that length.
 * A header line whose name fails this test is not one of them, and costs no string.
 */
const READ_FIRST = new Uint32Array(32)
for (const n of FIELDS_READ) READ_FIRST[n.length]! |= 1 << (n.charCodeAt(0) - 0x61)

/** Whitespace as String.prototype.trim sees it, among latin1 characters. */
function isTrimmed(c: number): boolean {
  return (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0xa0
}

/**
 * Splits a complete header block [0, end) into its start line and the fields in FIELDS_READ (lower-case
 * names, first wins). The block is decoded once (latin1: one character per octet, so string and byte
 * offsets agree) and cut into lines as text.
 */
function parseHead(m: Uint8Array, end: number, ctx: L7Context<HttpTx>): Head {
  const fields = new Map<string, string>()
  const text = latin1(m, 0, end)
  let p = 0
  let e = text.indexOf('\n')
  // (A block always ends with a line break: headerBlockEnd found it.)
  if (e < 0) return { start: '', fields }
  const start = text.slice(0, e > 0 && text.charCodeAt(e - 1) === 0x0d ? e - 1 : e).trim()
  p = e + 1
  while (p < end) {
    e = text.indexOf('\n', p)
    if (e < 0) break
    const stop = e > p && text.charCodeAt(e - 1) === 0x0d ? e - 1 : e
    if (stop > p) {
      const colon = text.indexOf(':', p)
      if (colon < 0 || colon >= stop || colon === p) ctx.anomaly('http_bad_header_line')
      else {
        // The name's bounds as trim() leaves them; its first letter and length say whether it may be read.
        let a = p
        let b = colon
        while (a < b && isTrimmed(text.charCodeAt(a))) a++
        while (b > a && isTrimmed(text.charCodeAt(b - 1))) b--
        const first = (text.charCodeAt(a) | 0x20) - 0x61
        if (b - a < 32 && first >= 0 && first < 26 && (READ_FIRST[b - a]! & (1 << first)) !== 0) {
          const name = text.slice(a, b).toLowerCase()
          if (FIELDS_READ.has(name) && !fields.has(name)) fields.set(name, text.slice(colon + 1, stop).trim())
        }
      }
    }
    p = e + 1
  }
  return { start, fields }
}

/** Sets the body mode of `side` from the message's framing fields (RFC 9112 §6.3). */
function bodyMode(side: Side, f: Map<string, string>, isResponse: boolean, ctx: L7Context<HttpTx>): void {
  const te = f.get('transfer-encoding')
  if (te !== undefined && /chunked\s*$/i.test(te)) {
    side.mode = Mode.ChunkSize
    return
  }
  const cl = f.get('content-length')
  if (cl !== undefined) {
    const n = /^\d{1,15}$/.test(cl) ? Number(cl) : NaN
    if (Number.isNaN(n)) {
      ctx.anomaly('http_bad_content_length')
      side.mode = isResponse ? Mode.UntilClose : Mode.Head
      return
    }
    side.mode = n > 0 ? Mode.Length : Mode.Head
    side.remaining = n
    return
  }
  side.mode = isResponse ? Mode.UntilClose : Mode.Head
}

function onRequest(s: HttpState, m: Uint8Array, end: number, ctx: L7Context<HttpTx>): void {
  const h = parseHead(m, end, ctx)
  const side = s.sides[L7Dir.ToServer]
  const parts = h.start.split(' ')
  const tx = newTx()
  tx.method = parts[0] ?? ''
  const last = parts[parts.length - 1] ?? ''
  if (parts.length >= 3) {
    tx.target = parts.slice(1, -1).join(' ')
    tx.version = last
  } else if (parts.length === 2 && last.startsWith('HTTP/')) {
    // "OPTIONS HTTP/1.1": no target.
    tx.version = last
  } else {
    // RFC 1945 simple request (HTTP/0.9): the response is the body alone, up to the close.
    tx.target = parts[1] ?? ''
    tx.version = 'HTTP/0.9'
  }
  if (parts.length < 2) ctx.anomaly('http_bad_request_line')
  const f = h.fields
  tx.host = f.get('host') ?? ''
  tx.userAgent = f.get('user-agent') ?? ''
  tx.referer = f.get('referer') ?? ''
  tx.xForwardedFor = f.get('x-forwarded-for') ?? ''
  tx.contentType = f.get('content-type') ?? ''
  const cl = f.get('content-length')
  if (cl !== undefined && /^\d{1,15}$/.test(cl)) tx.contentLength = Number(cl)
  const up = (f.get('upgrade') ?? '').toLowerCase()
  if (up.includes('websocket')) tx.upgrade = 'websocket'
  else if (up.includes('h2c')) tx.upgrade = 'h2c'
  tx.requestUs = ctx.tsUs
  bodyMode(side, f, false, ctx)
  if (s.pending.length >= MAX_PENDING) {
    ctx.anomaly('http_too_many_pending')
    ctx.emit(s.pending.shift()!)
  }
  s.pending.push(tx)
}

function onResponse(s: HttpState, m: Uint8Array, end: number, ctx: L7Context<HttpTx>): void {
  const h = parseHead(m, end, ctx)
  const side = s.sides[L7Dir.ToClient]
  const sp1 = h.start.indexOf(' ')
  const version = sp1 < 0 ? h.start : h.start.slice(0, sp1)
  const rest = sp1 < 0 ? '' : h.start.slice(sp1 + 1)
  const sp2 = rest.indexOf(' ')
  const code = sp2 < 0 ? rest : rest.slice(0, sp2)
  const status = /^\d{3}$/.test(code) ? Number(code) : -1
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
  tx.reason = sp2 < 0 ? '' : rest.slice(sp2 + 1)
  tx.server = f.get('server') ?? ''
  tx.location = f.get('location') ?? ''
  const ct = f.get('content-type')
  if (ct !== undefined) tx.contentType = ct
  const cl = f.get('content-length')
  tx.contentLength = cl !== undefined && /^\d{1,15}$/.test(cl) ? Number(cl) : -1
  tx.responseUs = ctx.tsUs
  if (status === 101) {
    if (tx.upgrade === '')
      tx.upgrade = (f.get('upgrade') ?? '').toLowerCase().includes('h2c') ? 'h2c' : 'websocket'
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
        const line = latin1(m, p, e).trim()
        p = e + 1
        if (line === '') break // the CRLF after chunk data when the sender split it oddly
        const hex = /^[0-9a-fA-F]+/.exec(line)
        if (hex === null || hex[0].replace(/^0+/, '').length > 12) {
          // Not a size, or one no real body has (and 2^64 wrap-around is a smuggling trick): resync.
          ctx.anomaly('http_bad_chunk_size')
          side.mode = Mode.Resync
          break
        }
        const size = parseInt(hex[0], 16)
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
        const end = headerBlockEnd(m, p)
        if (end < 0) {
          if (n - p > MAX_HEAD) {
            ctx.anomaly('http_header_too_long')
            side.mode = Mode.Resync
            p = n
            break
          }
          return incomplete(p, n - p + 1)
        }
        const head = m.subarray(p, end)
        const ok = dir === L7Dir.ToServer ? isTokenMethodStart(m, p) : isResponseStart(m, p)
        if (!ok) {
          ctx.anomaly(dir === L7Dir.ToServer ? 'http_bad_request_line' : 'http_bad_status_line')
          side.mode = Mode.Resync
          p = end
          break
        }
        if (dir === L7Dir.ToServer) onRequest(s, head, head.byteLength, ctx)
        else onResponse(s, head, head.byteLength, ctx)
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
