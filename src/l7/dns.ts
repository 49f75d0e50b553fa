/**
 * @module l7/dns
 * DNS messages (RFC 1035 §4; AAAA RFC 3596, SRV RFC 2782, EDNS RFC 6891), over UDP (one message per
 * datagram) and TCP (RFC 1035 §4.2.2 / RFC 7766: each message behind a 2-octet length), including mDNS
 * (RFC 6762, port 5353: the top bit of a question class is "unicast response", of an RR class "cache
 * flush") and LLMNR (RFC 4795, port 5355, same header layout).
 *
 * A transaction is a query and the response with the same ID (Zeek's dns.log pairing); a response without
 * a query and a query without a response are transactions too. At most MAX_PENDING queries wait per flow;
 * beyond that the oldest leaves unanswered. Answer data is rendered as Zeek's dns.log renders it, so the
 * scorer can compare: addresses, names (CNAME/NS/PTR, MX exchange, SRV target, SOA mname), "TXT <len> <s>".
 *
 * Compression pointers (§4.1.4) are followed with a jump budget; loops and pointers beyond the message are
 * counted (`dns_pointer_loop`, `dns_pointer_out_of_range`) and end the name.
 */
import { ipv6Text } from '../util/address-text.js'
import { latin1 } from './text.js'
import {
  incomplete,
  L7Dir,
  OK,
  type L7Context,
  type L7Parser,
  type L7Transport,
  type ParseResult,
} from './parser.js'

export interface DnsAnswer {
  name: string
  type: number
  class: number
  ttl: number
  /** Rendered data ('' for types not rendered). */
  data: string
}

export interface DnsTx {
  id: number
  /** Header flags word (QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode) of the response, else of the query. */
  flags: number
  /** Response code; -1 without a response. */
  rcode: number
  qname: string
  /** Question type and class; -1 when there was no question. */
  qtype: number
  qclass: number
  qdcount: number
  ancount: number
  nscount: number
  arcount: number
  answers: DnsAnswer[]
  /** Capture times (µs) of the query and the response; 0 when absent. */
  queryUs: number
  responseUs: number
  /** The query travelled initiator → responder (false: responder → initiator, or no query). */
  queryToServer: boolean
}

export interface DnsState {
  tcp: boolean
  pending: DnsTx[]
  /** Per direction (TCP): framing lost after a gap, so the direction is no longer parsed. */
  lost: [boolean, boolean]
}

export const DNS_PORTS = [53, 5353, 5355] as const
const MAX_PENDING = 32
/** Answers kept per message (the section counts still say how many there were). */
const MAX_ANSWERS = 64
const MAX_JUMPS = 32

/** Where parsing counts anomalies (an L7Context, or a wrapper around a test's callback). */
interface AnomalySink {
  anomaly(name: string): void
}

class Truncated extends Error {}
const TRUNCATED = new Truncated('truncated')

/**
 * Where the message being parsed counts its anomalies. Parsing is synchronous and one message at a time, so
 * this (with nameEnd and the names seen below) is the module's state: no cursor object per message or name.
 */
let sink: AnomalySink = { anomaly: () => undefined }

function u16(m: Uint8Array, o: number): number {
  if (o + 2 > m.byteLength) throw TRUNCATED
  return (m[o]! << 8) | m[o + 1]!
}
function u32(m: Uint8Array, o: number): number {
  if (o + 4 > m.byteLength) throw TRUNCATED
  return ((m[o]! << 24) | (m[o + 1]! << 16) | (m[o + 2]! << 8) | m[o + 3]!) >>> 0
}

/**
 * The text of the name being read, built octet by octet and decoded once: the labels' octets the way Zeek
 * prints names (printable ASCII as is, others as \xNN), dots between them. A name has at most 255 octets
 * (readName stops there), so at most 4 · 255 characters plus the dots.
 */
const NAME_TEXT = Buffer.alloc(2048)
const HEX_DIGITS = Uint8Array.from('0123456789abcdef', (c) => c.charCodeAt(0))

/** Appends label octets m[start, start + len) to NAME_TEXT at `at`; returns the new end. */
function appendLabel(m: Uint8Array, start: number, len: number, at: number): number {
  const out = NAME_TEXT
  let n = at
  for (let i = start; i < start + len; i++) {
    const c = m[i]!
    if (c > 0x20 && c < 0x7f) out[n++] = c
    else {
      out[n++] = 0x5c // \
      out[n++] = 0x78 // x
      out[n++] = HEX_DIGITS[c >> 4]!
      out[n++] = HEX_DIGITS[c & 15]!
    }
  }
  return n
}

/**
 * Names already read in this message, by the offset they were read from (RFC 1035 §4.1.4: a pointer
 * repeats a name given earlier, most often the question's), with the jumps their walk took. A pointer to
 * one of these offsets, met before any label of the name being read, ends that name with the text read
 * before: the walk from there would see the same octets (its checks passed), unless the jumps of both
 * walks exceed the budget, which is then walked again to count the loop as before.
 */
const SEEN_MAX = 16
const SEEN_AT = new Int32Array(SEEN_MAX)
const SEEN_JUMPS = new Int32Array(SEEN_MAX)
const SEEN_TEXT: string[] = new Array<string>(SEEN_MAX).fill('')
let seenCount = 0

/** Offset after the name readName read last (not after pointer targets). */
let nameEnd = 0

/**
 * Reads a possibly compressed name at `start` of the message; sets nameEnd past it. Without `text` the
 * name is only walked (same checks and anomalies) and '' returned: the probe's plausibility test needs no
 * string.
 */
function readName(m: Uint8Array, start: number, text: boolean): string {
  const end = m.byteLength
  let p = start
  let jumps = 0
  let after = -1
  let chars = 0
  let total = 0
  let clean = false
  for (;;) {
    if (p >= end) throw TRUNCATED
    const len = m[p]!
    if (len === 0) {
      p++
      clean = true
      break
    }
    const kind = len & 0xc0
    if (kind === 0xc0) {
      if (p + 2 > end) throw TRUNCATED
      const target = ((len & 0x3f) << 8) | m[p + 1]!
      if (after < 0) after = p + 2
      if (target >= end) {
        sink.anomaly('dns_pointer_out_of_range')
        break
      }
      if (++jumps > MAX_JUMPS || target === p) {
        sink.anomaly('dns_pointer_loop')
        break
      }
      if (total === 0 && text) {
        // Nothing of this name read yet: a name read before from the target is its text.
        for (let i = 0; i < seenCount; i++) {
          if (SEEN_AT[i] !== target || jumps + SEEN_JUMPS[i]! > MAX_JUMPS) continue
          nameEnd = after
          return SEEN_TEXT[i]!
        }
      }
      p = target
      continue
    }
    if (kind !== 0) {
      // 0x40 / 0x80: extended label types (RFC 6891 §5 obsoletes them).
      sink.anomaly('dns_bad_label_type')
      throw TRUNCATED
    }
    if (p + 1 + len > end) throw TRUNCATED
    total += len + 1
    if (total > 255) {
      sink.anomaly('dns_name_too_long')
      break
    }
    if (text) {
      if (chars > 0) NAME_TEXT[chars++] = 0x2e
      chars = appendLabel(m, p + 1, len, chars)
    }
    p += 1 + len
  }
  nameEnd = after >= 0 ? after : p
  if (!text) return ''
  const s = latin1(NAME_TEXT, 0, chars)
  if (clean && seenCount < SEEN_MAX) {
    SEEN_AT[seenCount] = start
    SEEN_JUMPS[seenCount] = jumps
    SEEN_TEXT[seenCount++] = s
  }
  return s
}

/** Decimal text of 0..255 (dotted-quad addresses without number formatting). */
const DECIMAL: readonly string[] = Array.from({ length: 256 }, (_, i) => String(i))

function rdataText(m: Uint8Array, type: number, start: number, len: number): string {
  if (type === 1) {
    // A, the most common answer.
    if (len !== 4) return ''
    return (
      DECIMAL[m[start]!]! +
      '.' +
      DECIMAL[m[start + 1]!]! +
      '.' +
      DECIMAL[m[start + 2]!]! +
      '.' +
      DECIMAL[m[start + 3]!]!
    )
  }
  const end = start + len
  switch (type) {
    case 28: // AAAA
      return len === 16 ? ipv6Text(new DataView(m.buffer, m.byteOffset, m.byteLength), start) : ''
    case 2: // NS
    case 5: // CNAME
    case 12: // PTR
    case 6: // SOA: Zeek logs the primary name server (mname)
      return readName(m, start, true)
    case 15: // MX: preference, exchange
      return readName(m, start + 2, true)
    case 33: // SRV: priority, weight, port, target
      return readName(m, start + 6, true)
    case 16: {
      // TXT: character-strings, each "TXT <len> <text>" as Zeek prints them.
      const parts: string[] = []
      let p = start
      while (p < end) {
        const n = m[p]!
        if (p + 1 + n > end) {
          sink.anomaly('dns_bad_txt')
          break
        }
        parts.push(`TXT ${n} ${latin1(m, p + 1, p + 1 + n)}`)
        p += 1 + n
      }
      return parts.join(' ')
    }
    case 48: // DNSKEY: flags, protocol, algorithm
      return len >= 4 ? `DNSKEY ${m[start + 3]}` : ''
    case 65534: // BIND 9 private type: key signing state (Zeek names it)
      return 'BIND9 signing signal'
    case 46: // RRSIG: type covered ... signer name at offset 18
      return len >= 18 ? `RRSIG ${u16(m, start)} ${readName(m, start + 18, true)}` : ''
    default:
      return ''
  }
}

/** Parses one DNS message; a truncated one gives what precedes the cut (counted), under 12 octets nothing. */
export function parseMessage(
  bytes: Uint8Array,
  anomaly: (name: string) => void,
  mdns = false,
): DnsMessage | undefined {
  return parseWith(bytes, { anomaly }, mdns)
}

/** parseMessage counting into `to` (the engine's context itself, without a callback per parse). */
function parseWith(bytes: Uint8Array, to: AnomalySink, mdns: boolean): DnsMessage | undefined {
  if (bytes.byteLength < 12) {
    to.anomaly('dns_truncated_message')
    return undefined
  }
  sink = to
  seenCount = 0
  let pos = 12
  const out: DnsMessage = {
    id: (bytes[0]! << 8) | bytes[1]!,
    flags: (bytes[2]! << 8) | bytes[3]!,
    qdcount: (bytes[4]! << 8) | bytes[5]!,
    ancount: (bytes[6]! << 8) | bytes[7]!,
    nscount: (bytes[8]! << 8) | bytes[9]!,
    arcount: (bytes[10]! << 8) | bytes[11]!,
    qname: '',
    qtype: -1,
    qclass: -1,
    answers: [],
  }
  try {
    for (let i = 0; i < out.qdcount; i++) {
      const name = readName(bytes, pos, true)
      pos = nameEnd
      const type = u16(bytes, pos)
      const cls = u16(bytes, pos + 2)
      pos += 4
      if (i === 0) {
        out.qname = name
        out.qtype = type
        out.qclass = mdns ? cls & 0x7fff : cls
      }
    }
    for (let i = 0; i < out.ancount; i++) {
      const name = readName(bytes, pos, true)
      pos = nameEnd
      const type = u16(bytes, pos)
      const cls = u16(bytes, pos + 2)
      const ttl = u32(bytes, pos + 4)
      const rdlen = u16(bytes, pos + 8)
      const start = pos + 10
      if (start + rdlen > bytes.byteLength) throw TRUNCATED
      pos = start + rdlen
      if (out.answers.length < MAX_ANSWERS) {
        out.answers.push({
          name,
          type,
          class: mdns ? cls & 0x7fff : cls,
          ttl,
          data: rdataText(bytes, type, start, rdlen),
        })
      }
    }
    return out
  } catch (e) {
    if (!(e instanceof Truncated)) throw e
    // What was parsed before the cut (header, question, first answers) is kept.
    to.anomaly('dns_truncated_message')
    return out
  }
}

export interface DnsMessage {
  id: number
  flags: number
  qdcount: number
  ancount: number
  nscount: number
  arcount: number
  qname: string
  qtype: number
  qclass: number
  answers: DnsAnswer[]
}

/** Plausible DNS header and question section at the start of `m` (UDP datagram or TCP message body). */
function plausible(m: Uint8Array): boolean {
  if (m.byteLength < 12) return false
  const flags = (m[2]! << 8) | m[3]!
  const opcode = (flags >> 11) & 0xf
  if (opcode > 6 || opcode === 3) return false
  const qd = (m[4]! << 8) | m[5]!
  const an = (m[6]! << 8) | m[7]!
  const ns = (m[8]! << 8) | m[9]!
  const ar = (m[10]! << 8) | m[11]!
  const qr = (flags & 0x8000) !== 0
  if (qd > 8 || an > 512 || ns > 512 || ar > 512) return false
  if (qd === 0 && !(qr && an > 0) && opcode !== 5) return false
  if (!qr && an > 8) return false
  sink = PROBE_SINK
  PROBE_SINK.bad = false
  let at = 12
  try {
    for (let i = 0; i < qd; i++) {
      readName(m, at, false)
      at = nameEnd
      const cls = u16(m, at + 2) & 0x7fff
      if (cls !== 1 && cls !== 3 && cls !== 4 && cls !== 254 && cls !== 255) return false
      at += 4
    }
    if (qd === 0) {
      readName(m, at, false)
      at = nameEnd
      u16(m, at + 2)
    }
  } catch {
    // A question cut by the capture (or by a TCP segment boundary) still counts as plausible.
    return !PROBE_SINK.bad && at > 12
  }
  return !PROBE_SINK.bad
}

/** The plausibility test's sink: any anomaly makes the message implausible. */
const PROBE_SINK = {
  bad: false,
  anomaly(): void {
    PROBE_SINK.bad = true
  },
}

function newTx(): DnsTx {
  return {
    id: 0,
    flags: 0,
    rcode: -1,
    qname: '',
    qtype: -1,
    qclass: -1,
    qdcount: 0,
    ancount: 0,
    nscount: 0,
    arcount: 0,
    answers: [],
    queryUs: 0,
    responseUs: 0,
    queryToServer: false,
  }
}

function fillFrom(tx: DnsTx, m: DnsMessage): void {
  tx.id = m.id
  tx.flags = m.flags
  tx.qdcount = m.qdcount
  tx.ancount = m.ancount
  tx.nscount = m.nscount
  tx.arcount = m.arcount
  if (m.qdcount > 0) tx.qname = m.qname
  tx.answers = m.answers
}

/** Pairs one parsed message with the pending queries and emits complete transactions. */
function onMessage(s: DnsState, dir: L7Dir, m: DnsMessage, ctx: L7Context<DnsTx>): void {
  const response = (m.flags & 0x8000) !== 0
  if (!response) {
    if (s.pending.length >= MAX_PENDING) {
      ctx.anomaly('dns_too_many_pending')
      ctx.emit(s.pending.shift()!)
    }
    const tx = newTx()
    fillFrom(tx, m)
    tx.qtype = m.qtype
    tx.qclass = m.qclass
    tx.queryUs = ctx.tsUs
    tx.queryToServer = dir === L7Dir.ToServer
    s.pending.push(tx)
    return
  }
  // The response names what it answers: its question, or (mDNS, RFC 6762 §6: no question section) its first
  // answer. A response about another name is not the answer to a pending query with the same ID (mDNS
  // uses ID 0 throughout), as Zeek pairs them.
  // (Names are ASCII text: readName escapes other octets. Lower-cased only when an ID matches.)
  const about = m.qdcount > 0 ? m.qname : (m.answers[0]?.name ?? '')
  let lower: string | undefined
  let i = -1
  for (let k = 0; k < s.pending.length; k++) {
    const t = s.pending[k]!
    if (
      t.id === m.id &&
      (about === '' || t.qname === about || t.qname.toLowerCase() === (lower ??= about.toLowerCase()))
    ) {
      i = k
      break
    }
  }
  let tx: DnsTx
  if (i >= 0) {
    tx = s.pending[i]!
    // Most often the only query waiting (splice costs several times pop or shift).
    if (i === s.pending.length - 1) s.pending.pop()
    else if (i === 0) s.pending.shift()
    else s.pending.splice(i, 1)
  } else {
    tx = newTx()
    tx.qname = about === '' ? '' : m.qdcount > 0 ? m.qname : (m.answers[0]?.name ?? '')
  }
  fillFrom(tx, m)
  tx.rcode = m.flags & 0xf
  tx.responseUs = ctx.tsUs
  ctx.emit(tx)
}

export const dnsParser: L7Parser<DnsState, DnsTx> & { readonly mdnsPorts: readonly number[] } = {
  name: 'dns',
  transports: ['udp', 'tcp'],
  ports: DNS_PORTS,
  mdnsPorts: [5353],

  probe(bytes: Uint8Array, _dir: L7Dir, transport: L7Transport): boolean {
    if (transport === 'udp') return plausible(bytes)
    if (bytes.byteLength < 14) return false
    const len = (bytes[0]! << 8) | bytes[1]!
    return len >= 12 && plausible(bytes.subarray(2, 2 + len))
  },

  newState(transport: L7Transport): DnsState {
    return { tcp: transport === 'tcp', pending: [], lost: [false, false] }
  },

  parse(s: DnsState, dir: L7Dir, bytes: Uint8Array, ctx: L7Context<DnsTx>): ParseResult {
    if (!s.tcp) {
      const m = parseWith(bytes, ctx, true)
      if (m !== undefined) onMessage(s, dir, m, ctx)
      return OK
    }
    if (s.lost[dir]) return OK
    let p = 0
    while (p < bytes.byteLength) {
      if (p + 2 > bytes.byteLength) return incomplete(p, 2)
      const len = (bytes[p]! << 8) | bytes[p + 1]!
      if (p + 2 + len > bytes.byteLength) return incomplete(p, 2 + len)
      const m = parseWith(bytes.subarray(p + 2, p + 2 + len), ctx, false)
      if (m !== undefined) onMessage(s, dir, m, ctx)
      p += 2 + len
    }
    return OK
  },

  gap(s: DnsState, dir: L7Dir, _size: number, ctx: L7Context<DnsTx>): void {
    // The 2-octet framing cannot be found again after a gap (no sync marker): stop this direction, so
    // later bytes are not misread as lengths. Queries already seen still pair with their responses.
    if (!s.tcp) return
    ctx.anomaly('dns_tcp_gap')
    s.lost[dir] = true
  },

  wantsMore(s: DnsState): boolean {
    return !(s.lost[0] && s.lost[1])
  },

  finish(s: DnsState, ctx: L7Context<DnsTx>): void {
    for (const tx of s.pending) ctx.emit(tx)
    s.pending = []
  },
}
