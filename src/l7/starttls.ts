/**
 * @module l7/starttls
 * The in-band TLS upgrade of line-based mail and file protocols: SMTP STARTTLS (RFC 3207: "STARTTLS", then
 * "220"), IMAP STARTTLS (RFC 9051 §6.2.1: a tagged "STARTTLS", then that tag's "OK"), POP3 STLS (RFC 2595
 * §4: "STLS", then "+OK") and FTP AUTH TLS (RFC 4217 §4: "AUTH TLS" or "AUTH SSL", then "234"; some servers
 * answer AUTH SSL with 334). Once the server agrees, the flow is handed to the `tls` parser
 * (`switchTo('tls')`), which records the handshake as on any TLS flow.
 *
 * These parsers emit no transactions: they only follow the plaintext exchange until the upgrade. They give
 * up (the flow needs no more bytes) when the server refuses, when the protocol goes on in plaintext (SMTP
 * MAIL/DATA/AUTH, IMAP LOGIN/AUTHENTICATE, POP3 USER/APOP/AUTH, FTP USER), after MAX_LINES lines or on a
 * line longer than MAX_LINE. Client bytes after the upgrade command and before the answer are held, since
 * they may be the ClientHello of a client that did not wait.
 */
import { latin1 } from './text.js'
import { incomplete, L7Dir, OK, switchTo, type L7Parser, type ParseResult } from './parser.js'

const MAX_LINE = 2048
const MAX_LINES = 64

/** Bytes of a flow's first payload the probes look at. */
const PROBE_BYTES = 256

/**
 * A cheap test the protocol's probe implies, so that most payloads are not decoded and matched four times:
 * the first character of the server's greeting, and the first character of a client line the probe
 * accepts, at the start of the payload, or (`multiline` probes, JavaScript's ^ with the m flag) also after
 * a line break ("\n" or "\r").
 */
interface ProbeStart {
  server: string
  client: string
  multiline: boolean
}

/** ProbeStart with its character sets as tables by octet (1: the octet is one of the characters). */
interface StartTables {
  server: Uint8Array
  client: Uint8Array
  multiline: boolean
}

function startTables(first: ProbeStart): StartTables {
  const table = (chars: string): Uint8Array => {
    const t = new Uint8Array(256)
    for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1
    return t
  }
  return { server: table(first.server), client: table(first.client), multiline: first.multiline }
}

function mayMatch(b: Uint8Array, toServer: boolean, first: StartTables): boolean {
  const n = Math.min(b.byteLength, PROBE_BYTES)
  if (n === 0) return false
  const chars = toServer ? first.client : first.server
  if (chars[b[0]!] === 1) return true
  if (!toServer || !first.multiline) return false
  for (let i = 1; i < n; i++) {
    const c = b[i - 1]
    if ((c === 0x0a || c === 0x0d) && chars[b[i]!] === 1) return true
  }
  return false
}

const WORD_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.'

/** What distinguishes one line-based protocol's upgrade. */
interface LineUpgrade {
  name: string
  ports: number[]
  /** The first payload of a direction looks like this protocol. */
  probe(text: string, toServer: boolean): boolean
  /** What `probe` implies about first characters (checked before decoding). */
  first: ProbeStart
  /** The client's upgrade command: the tag its answer carries ('' untagged), else undefined. */
  command(line: string): string | undefined
  /** A server line after the command: the answer agrees, refuses, or is not the answer yet. */
  reply(line: string, tag: string): 'ok' | 'no' | undefined
  /** A client line after which the session stays plaintext. */
  plaintext(line: string): boolean
}

export interface UpgradeState {
  /** The upgrade command's tag while its answer is awaited. */
  tag: string | undefined
  lines: number
  done: boolean
}

function lineParser(u: LineUpgrade): L7Parser<UpgradeState, never> {
  const first = startTables(u.first)
  return {
    name: u.name,
    transports: ['tcp'],
    ports: u.ports,
    upgradesTo: ['tls'],
    probe: (b, dir) =>
      mayMatch(b, dir === L7Dir.ToServer, first) &&
      u.probe(latin1(b, 0, Math.min(b.byteLength, PROBE_BYTES)), dir === L7Dir.ToServer),
    newState: () => ({ tag: undefined, lines: 0, done: false }),
    parse(s: UpgradeState, dir: L7Dir, b: Uint8Array): ParseResult {
      const toServer = dir === L7Dir.ToServer
      let p = 0
      while (p < b.byteLength && !s.done) {
        // Client bytes after the command wait for the answer (they may already be TLS).
        if (toServer && s.tag !== undefined) return incomplete(p, b.byteLength - p + 1)
        const e = b.indexOf(0x0a, p)
        if (e < 0) {
          if (b.byteLength - p > MAX_LINE) s.done = true
          else return incomplete(p, b.byteLength - p + 1)
          break
        }
        const line = latin1(b, p, e > p && b[e - 1] === 0x0d ? e - 1 : e)
        p = e + 1
        if (++s.lines > MAX_LINES) s.done = true
        else if (toServer) {
          const tag = u.command(line)
          if (tag !== undefined) s.tag = tag
          else if (u.plaintext(line)) s.done = true
        } else if (s.tag !== undefined) {
          const r = u.reply(line, s.tag)
          if (r === 'ok') return switchTo('tls', p)
          if (r === 'no') s.done = true
        }
      }
      return OK
    },
    wantsMore: (s) => !s.done,
    finish: () => undefined,
  }
}

const upper = (line: string): string => line.toUpperCase()
/** The final line of an SMTP/FTP reply ("250 ..." not "250-..."): its code, else -1. */
function finalCode(line: string): number {
  return /^\d{3}( |$)/.test(line) ? Number(line.slice(0, 3)) : -1
}

export const smtpParser = lineParser({
  name: 'smtp',
  first: { server: '2', client: 'EeHh', multiline: false },
  ports: [25, 587, 2525],
  probe: (t, toServer) =>
    toServer ? /^(EHLO|HELO) /i.test(t) : /^220[ -]/.test(t) && /SMTP/i.test(t.split('\n')[0] ?? ''),
  command: (l) => (upper(l).trim() === 'STARTTLS' ? '' : undefined),
  reply: (l) => {
    const c = finalCode(l)
    return c === 220 ? 'ok' : c > 0 ? 'no' : undefined
  },
  plaintext: (l) => /^(MAIL FROM|DATA|BDAT|AUTH)\b/i.test(l),
})

export const imapParser = lineParser({
  name: 'imap',
  first: { server: '*', client: WORD_CHARS, multiline: true },
  ports: [143],
  probe: (t, toServer) =>
    toServer ? /^[A-Za-z0-9.]+ (CAPABILITY|STARTTLS)\r?$/im.test(t) : /^\* (OK|PREAUTH)/.test(t),
  command: (l) => {
    const m = /^(\S+) STARTTLS\s*$/i.exec(l)
    return m === null ? undefined : m[1]!
  },
  reply: (l, tag) => {
    if (!l.startsWith(tag + ' ')) return undefined
    return /^OK\b/i.test(l.slice(tag.length + 1)) ? 'ok' : 'no'
  },
  plaintext: (l) => /^\S+ (LOGIN|AUTHENTICATE)\b/i.test(l),
})

export const pop3Parser = lineParser({
  name: 'pop3',
  first: { server: '+', client: 'CcSs', multiline: true },
  ports: [110],
  probe: (t, toServer) => (toServer ? /^(CAPA|STLS)\r?$/im.test(t) : /^\+OK/.test(t)),
  command: (l) => (upper(l).trim() === 'STLS' ? '' : undefined),
  reply: (l) => (l.startsWith('+OK') ? 'ok' : l.startsWith('-ERR') ? 'no' : undefined),
  plaintext: (l) => /^(USER|APOP|AUTH) /i.test(l),
})

export const ftpParser = lineParser({
  name: 'ftp',
  first: { server: '2', client: 'AaFf', multiline: true },
  ports: [21],
  probe: (t, toServer) =>
    toServer
      ? /^(AUTH (TLS|SSL)|FEAT)\r?$/im.test(t)
      : /^220[ -]/.test(t) && /FTP/i.test(t.split('\n')[0] ?? ''),
  command: (l) => (/^AUTH (TLS|SSL|TLS-C)\s*$/i.test(l) ? '' : undefined),
  reply: (l) => {
    const c = finalCode(l)
    return c === 234 || c === 334 ? 'ok' : c > 0 ? 'no' : undefined
  },
  plaintext: (l) => /^(USER|PASS) /i.test(l),
})
