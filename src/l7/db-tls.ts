/**
 * @module l7/db-tls
 * The in-band TLS upgrade of two database protocols, after which the flow is handed to the `tls` parser:
 *
 * - PostgreSQL (protocol 3, "SSL Session Encryption"): the client's SSLRequest (length 8, code 80877103),
 *   the server's single byte 'S' (go ahead) or 'N' (no TLS; the client may go on in plaintext). A
 *   GSSENCRequest (80877104) answered 'N' may be followed by an SSLRequest; 'G' means GSSAPI encryption.
 * - MySQL (client/server protocol, "SSL Handshake"): the server's Handshake v10 greeting offers
 *   CLIENT_SSL (capability 0x0800); the client answers with an SSLRequest packet (sequence 1, 32-byte
 *   payload with CLIENT_SSL set) and starts TLS right after it, without waiting for the server.
 *
 * They emit no transactions and give up once the session stays plaintext.
 */
import { incomplete, L7Dir, OK, switchTo, type L7Parser, type ParseResult } from './parser.js'

const PG_SSL_REQUEST = 80877103
const PG_GSSENC_REQUEST = 80877104

const u32 = (b: Uint8Array, o: number): number =>
  ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0

export interface PostgresState {
  /** The request awaiting the server's byte: SSL or GSSENC code, 0 for none. */
  asked: number
  done: boolean
}

export const postgresParser: L7Parser<PostgresState, never> = {
  name: 'postgres',
  transports: ['tcp'],
  ports: [5432],
  upgradesTo: ['tls'],
  probe: (b, dir) =>
    dir === L7Dir.ToServer &&
    b.byteLength >= 8 &&
    u32(b, 0) === 8 &&
    (u32(b, 4) === PG_SSL_REQUEST || u32(b, 4) === PG_GSSENC_REQUEST),
  newState: () => ({ asked: 0, done: false }),
  parse(s: PostgresState, dir: L7Dir, b: Uint8Array): ParseResult {
    if (dir === L7Dir.ToServer) {
      // Bytes sent before the answer may already be the TLS ClientHello: they wait.
      if (s.asked !== 0) return incomplete(0, b.byteLength + 1)
      if (b.byteLength < 8) return incomplete(0, 8)
      const len = u32(b, 0)
      const code = u32(b, 4)
      if (len === 8 && (code === PG_SSL_REQUEST || code === PG_GSSENC_REQUEST)) {
        s.asked = code
        return b.byteLength > 8 ? incomplete(8, b.byteLength - 8 + 1) : OK
      }
      // A StartupMessage (protocol 3.0) or anything else: the session is plaintext.
      s.done = true
      return OK
    }
    if (s.asked === 0) {
      s.done = true
      return OK
    }
    const answer = b[0]
    const asked = s.asked
    s.asked = 0
    if (answer === 0x53 && asked === PG_SSL_REQUEST) return switchTo('tls', 1) // 'S'
    if (answer !== 0x4e) s.done = true // 'G' (GSSAPI encryption) or an error: no TLS to follow
    return OK
  },
  wantsMore: (s) => !s.done,
  finish: () => undefined,
}

const CLIENT_SSL = 0x0800

export interface MysqlState {
  /** The server's greeting offered CLIENT_SSL. */
  offered: boolean
  greeted: boolean
  done: boolean
}

/** MySQL packet header: 3-byte little-endian length, sequence id. */
const packetLength = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)

/** Capability flags (lower 16 bits) of a Handshake v10 payload at `o` of length `len`, -1 if malformed. */
function greetingCapabilities(b: Uint8Array, o: number, len: number): number {
  if (len < 1 || b[o] !== 0x0a) return -1
  const end = o + len
  let p = o + 1
  while (p < end && b[p] !== 0) p++ // server version, NUL-terminated
  p += 1 + 4 + 8 + 1 // NUL, connection id, auth-plugin-data part 1, filler
  if (p + 2 > end) return -1
  return b[p]! | (b[p + 1]! << 8)
}

export const mysqlParser: L7Parser<MysqlState, never> = {
  name: 'mysql',
  transports: ['tcp'],
  ports: [3306],
  upgradesTo: ['tls'],
  probe(b, dir) {
    if (dir !== L7Dir.ToClient || b.byteLength < 5 || b[3] !== 0) return false
    const len = packetLength(b, 0)
    return len >= 20 && len <= 1024 && 4 + len <= b.byteLength && greetingCapabilities(b, 4, len) >= 0
  },
  newState: () => ({ offered: false, greeted: false, done: false }),
  parse(s: MysqlState, dir: L7Dir, b: Uint8Array): ParseResult {
    if (b.byteLength < 4) return incomplete(0, 4)
    const len = packetLength(b, 0)
    if (4 + len > b.byteLength) {
      if (len <= 4096) return incomplete(0, 4 + len)
      s.done = true
      return OK
    }
    if (dir === L7Dir.ToClient) {
      if (!s.greeted) {
        s.greeted = true
        const caps = greetingCapabilities(b, 4, len)
        s.offered = caps >= 0 && (caps & CLIENT_SSL) !== 0
        if (!s.offered) s.done = true
      } else s.done = true // the server answered a plaintext login
      return OK
    }
    // The client's first packet: an SSLRequest is exactly 32 bytes with CLIENT_SSL; longer is a plaintext login.
    const caps = b[4]! | (b[5]! << 8)
    if (s.greeted && s.offered && b[3] === 1 && len === 32 && (caps & CLIENT_SSL) !== 0)
      return switchTo('tls', 4 + len)
    s.done = true
    return OK
  },
  wantsMore: (s) => !s.done,
  finish: () => undefined,
}
