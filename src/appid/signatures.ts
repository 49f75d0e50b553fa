/**
 * Content signatures of protocols the L7 parsers (src/l7) do not parse: a predicate over the first payload
 * of a flow in one direction, named by the catalogue's `signature` column (src/appid/catalogue.ts).
 *
 * Each signature checks fixed structure (magic numbers, version fields, lengths that must agree with the
 * payload), after the protocol's own specification or wire format; weak ones (a few bits of structure,
 * such as RTP or NTP) also require the protocol's port so ordinary traffic is not misnamed. Reads are
 * bounded by the payload length; nothing allocates.
 */

export type Transport = 'tcp' | 'udp'

/** `b` is the first payload of one direction; `toServer` tells which; ports are the packet's. */
export type Signature = (
  b: Uint8Array,
  t: Transport,
  toServer: boolean,
  sport: number,
  dport: number,
) => boolean

function ascii(b: Uint8Array, o: number, s: string): boolean {
  if (o + s.length > b.byteLength) return false
  for (let i = 0; i < s.length; i++) if (b[o + i] !== s.charCodeAt(i)) return false
  return true
}

function anyAscii(b: Uint8Array, words: readonly string[]): boolean {
  for (const w of words) if (ascii(b, 0, w)) return true
  return false
}

/**
 * A fixed string searched for in the first octets of a payload (Boyer-Moore-Horspool: a window whose last
 * octet does not occur in the string moves on by the string's whole length, so a search for a 14-octet
 * string reads about one octet in ten of a payload without it). Built once per string, not per call.
 */
export class Needle {
  private readonly octets: Uint8Array
  /** Per octet value: how far the window moves when its last octet is that value. */
  private readonly shift = new Uint8Array(256)

  constructor(readonly text: string) {
    const m = text.length
    if (m === 0 || m > 255) throw new Error(`needle: length ${m} outside 1-255`)
    this.octets = Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff)
    this.shift.fill(m)
    for (let i = 0; i < m - 1; i++) this.shift[this.octets[i]!] = m - 1 - i
  }

  /** True when the string occurs entirely within the first `limit` octets of `b`. */
  in(b: Uint8Array, limit: number): boolean {
    return this.within(b, 0, Math.min(b.byteLength, limit))
  }

  /** True when the string occurs entirely within octets `from` to `to` (exclusive) of `b`. */
  within(b: Uint8Array, from: number, to: number): boolean {
    const s = this.octets
    const m = s.length
    const last = m - 1
    const tail = s[last]!
    for (let i = from; i + m <= to;) {
      const c = b[i + last]!
      if (c === tail) {
        let j = last - 1
        while (j >= 0 && b[i + j] === s[j]) j--
        if (j < 0) return true
      }
      i += this.shift[c]!
    }
    return false
  }
}

/** Case-sensitive search of needle `n` in the first `limit` bytes. */
function contains(b: Uint8Array, n: Needle, limit = 256): boolean {
  return n.in(b, limit)
}

function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!
}
function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0
}
function u32le(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0
}

const onPort = (p: number, sport: number, dport: number): boolean => sport === p || dport === p

/** A DER SEQUENCE (0x30) whose length (short or long form) fits the payload. */
function berSequence(b: Uint8Array, o: number): number {
  if (b.byteLength < o + 2 || b[o] !== 0x30) return -1
  const l = b[o + 1]!
  if (l < 0x80) return o + 2 + l <= b.byteLength + 0 ? o + 2 : -1
  const n = l & 0x7f
  if (n === 0 || n > 3 || o + 2 + n > b.byteLength) return -1
  return o + 2 + n
}

const SIP_METHODS = [
  'INVITE ',
  'REGISTER ',
  'OPTIONS sip:',
  'ACK sip:',
  'BYE sip:',
  'CANCEL sip:',
  'SUBSCRIBE ',
]
const SIP_MORE = [
  'NOTIFY sip:',
  'MESSAGE sip:',
  'INFO sip:',
  'PRACK sip:',
  'UPDATE sip:',
  'REFER sip:',
  'SIP/2.0 ',
]

// Word lists of the signatures below, built once (not per call).
const FTP_COMMANDS = ['USER ', 'AUTH TLS', 'AUTH SSL', 'FEAT\r\n']
const SMTP_GREETINGS = ['EHLO ', 'HELO ', 'ehlo ', 'helo ']
const SSDP_STARTS = ['M-SEARCH * HTTP/1.1', 'NOTIFY * HTTP/1.1']
const REDIS_WORDS = ['+OK', '+PONG', '-ERR', 'PING']
const MEMCACHED_WORDS = ['get ', 'gets ', 'set ', 'add ', 'stats', 'VALUE ', 'STAT ', 'version']
const RTSP_REQUESTS = ['OPTIONS rtsp://', 'DESCRIBE rtsp://', 'SETUP rtsp://', 'PLAY rtsp://']
const IRC_COMMANDS = ['NICK ', 'USER ', 'CAP LS', 'PASS ']

// Strings searched for (see Needle).
const N_FTP = new Needle('FTP')
const N_FTP_LOWER = new Needle('ftp')
const N_SMTP = new Needle('SMTP')
const N_OCTET_MODE = new Needle('octet')
const N_NETASCII_MODE = new Needle('netascii')
const N_OCTET_MODE_UPPER = new Needle('OCTET')
const N_BITTORRENT = new Needle('BitTorrent')
const N_MQTT = new Needle('MQTT')
const N_MQISDP = new Needle('MQIsdp')
const N_XMPP_STREAM = new Needle('<stream:stream')
const N_JABBER = new Needle('jabber')
const N_IRC_NOTICE = new Needle(' NOTICE ')

export const SIGNATURES: Readonly<Record<string, Signature>> = {
  ssh: (b) => ascii(b, 0, 'SSH-1.') || ascii(b, 0, 'SSH-2.0'),
  // TPKT (RFC 1006) version 3 whose length is the payload's, carrying an X.224 Connection Request/Confirm.
  rdp: (b, t) =>
    t === 'tcp' &&
    b.byteLength >= 11 &&
    b[0] === 3 &&
    b[1] === 0 &&
    u16(b, 2) === b.byteLength &&
    (b[5]! & 0xf0) >= 0xd0,
  vnc: (b, t) => t === 'tcp' && ascii(b, 0, 'RFB 0'),
  ftp: (b, t, toServer) =>
    t === 'tcp' &&
    (toServer
      ? anyAscii(b, FTP_COMMANDS)
      : ascii(b, 0, '220') && (contains(b, N_FTP) || contains(b, N_FTP_LOWER))),
  smtp: (b, t, toServer) =>
    t === 'tcp' && (toServer ? anyAscii(b, SMTP_GREETINGS) : ascii(b, 0, '220') && contains(b, N_SMTP)),
  pop3: (b, t, toServer) => t === 'tcp' && !toServer && ascii(b, 0, '+OK'),
  imap: (b, t, toServer) => t === 'tcp' && !toServer && (ascii(b, 0, '* OK') || ascii(b, 0, '* PREAUTH')),
  // RFC 1350: RRQ/WRQ, a file name, NUL, a mode, NUL.
  tftp: (b, t, toServer, sport, dport) =>
    t === 'udp' &&
    toServer &&
    onPort(69, sport, dport) &&
    b.byteLength >= 4 &&
    b[0] === 0 &&
    (b[1] === 1 || b[1] === 2) &&
    (contains(b, N_OCTET_MODE) || contains(b, N_NETASCII_MODE) || contains(b, N_OCTET_MODE_UPPER)),
  ntp: (b, t, _d, sport, dport) =>
    t === 'udp' &&
    onPort(123, sport, dport) &&
    b.byteLength >= 48 &&
    ((b[0]! >> 3) & 7) >= 1 &&
    ((b[0]! >> 3) & 7) <= 4 &&
    (b[0]! & 7) >= 1 &&
    (b[0]! & 7) <= 5,
  // A BER SEQUENCE, then INTEGER version 0/1/3 (v1, v2c, v3).
  snmp: (b, t, _d, sport, dport) => {
    if (t !== 'udp' || !(onPort(161, sport, dport) || onPort(162, sport, dport))) return false
    const o = berSequence(b, 0)
    return o > 0 && b[o] === 2 && b[o + 1] === 1 && (b[o + 2] === 0 || b[o + 2] === 1 || b[o + 2] === 3)
  },
  syslog: (b, _t, _d, sport, dport) => {
    if (!onPort(514, sport, dport) && !onPort(601, sport, dport)) return false
    if (b[0] !== 0x3c) return false
    let i = 1
    while (i < 5 && i < b.byteLength && b[i]! >= 0x30 && b[i]! <= 0x39) i++
    return i > 1 && b[i] === 0x3e
  },
  // ASN.1 [APPLICATION 10..14, 30] (AS-REQ, AS-REP, TGS-REQ, TGS-REP, AP-REQ, KRB-ERROR), behind a record
  // mark over TCP.
  kerberos: (b, t, _d, sport, dport) => {
    if (!onPort(88, sport, dport)) return false
    const tag = b[t === 'tcp' ? 4 : 0]
    return tag !== undefined && ((tag >= 0x6a && tag <= 0x6e) || tag === 0x7e)
  },
  // LDAPMessage: SEQUENCE { messageID INTEGER, protocolOp [APPLICATION n] }.
  ldap: (b, _t, _d, sport, dport) => {
    if (!onPort(389, sport, dport) && !onPort(3268, sport, dport)) return false
    const o = berSequence(b, 0)
    if (o < 0 || b[o] !== 2) return false
    const l = b[o + 1]!
    const op = b[o + 2 + l]
    return l >= 1 && l <= 4 && op !== undefined && op >= 0x60 && op <= 0x79
  },
  // NetBIOS name service (a DNS-like header on 137), datagram service (138) or session service (139).
  netbios: (b, t, _d, sport, dport) => {
    if (t === 'udp' && onPort(137, sport, dport))
      return b.byteLength >= 12 && (u16(b, 4) <= 1 || u16(b, 6) <= 1)
    if (t === 'udp' && onPort(138, sport, dport)) return b.byteLength >= 14 && b[0]! >= 0x10 && b[0]! <= 0x16
    if (t === 'tcp' && onPort(139, sport, dport))
      return b.byteLength >= 4 && (b[0] === 0x81 || b[0] === 0x82 || b[0] === 0x85 || b[0] === 0)
    return false
  },
  // NetBIOS session header, then the SMB1 (\xffSMB) or SMB2/3 (\xfeSMB, \xfdSMB transform) protocol id.
  smb1: (b, t) => t === 'tcp' && b.byteLength >= 8 && b[0] === 0 && b[4] === 0xff && ascii(b, 5, 'SMB'),
  smb2: (b, t) =>
    t === 'tcp' && b.byteLength >= 8 && b[0] === 0 && (b[4] === 0xfe || b[4] === 0xfd) && ascii(b, 5, 'SMB'),
  ssdp: (b, t) => t === 'udp' && anyAscii(b, SSDP_STARTS),
  // Server greeting: 3-octet length, sequence 0, protocol 10, NUL-terminated version text.
  mysql: (b, t, toServer) =>
    t === 'tcp' &&
    !toServer &&
    b.byteLength >= 10 &&
    b[3] === 0 &&
    b[4] === 10 &&
    (b[0]! | (b[1]! << 8) | (b[2]! << 16)) + 4 === b.byteLength &&
    b[5]! >= 0x30 &&
    b[5]! <= 0x39,
  // StartupMessage (protocol 3.0), SSLRequest or GSSENCRequest: length, then the code.
  postgres: (b, t, toServer) =>
    t === 'tcp' &&
    toServer &&
    b.byteLength >= 8 &&
    u32(b, 0) === b.byteLength &&
    (u32(b, 4) === 196608 || u32(b, 4) === 80877103 || u32(b, 4) === 80877104),
  // TDS packet header: PRELOGIN (18) or LOGIN7 (16), status EOM, length = payload.
  tds: (b, t, toServer) =>
    t === 'tcp' &&
    toServer &&
    b.byteLength >= 8 &&
    (b[0] === 0x12 || b[0] === 0x10) &&
    b[1] === 1 &&
    u16(b, 2) === b.byteLength,
  // MsgHeader: messageLength (LE) = payload, then an opcode MongoDB defines.
  mongodb: (b, t) => {
    if (t !== 'tcp' || b.byteLength < 16 || u32le(b, 0) !== b.byteLength) return false
    const op = u32le(b, 12)
    return op === 2013 || op === 2004 || op === 1 || op === 2012
  },
  redis: (b, t, _d, sport, dport) =>
    t === 'tcp' &&
    onPort(6379, sport, dport) &&
    ((b[0] === 0x2a && b[1]! >= 0x31 && b[1]! <= 0x39) || anyAscii(b, REDIS_WORDS)),
  memcached: (b, _t, _d, sport, dport) => onPort(11211, sport, dport) && anyAscii(b, MEMCACHED_WORDS),
  // TNS header: length, checksum, type CONNECT (1) / ACCEPT (2) / REFUSE (4) / REDIRECT (5) / DATA (6).
  tns: (b, t, _d, sport, dport) =>
    t === 'tcp' &&
    onPort(1521, sport, dport) &&
    b.byteLength >= 8 &&
    u16(b, 0) === b.byteLength &&
    b[4]! >= 1 &&
    b[4]! <= 6,
  bittorrent: (b, t) =>
    t === 'tcp'
      ? b.byteLength >= 20 && b[0] === 19 && ascii(b, 1, 'BitTorrent protocol')
      : ascii(b, 0, 'd1:ad2:id20:') ||
        ascii(b, 0, 'd1:rd2:id20:') ||
        ascii(b, 0, 'd1:q') ||
        contains(b, N_BITTORRENT, 64),
  // Every method (and the status line) starts with a capital letter: one test rejects other payloads.
  sip: (b) => b[0]! >= 0x41 && b[0]! <= 0x5a && (anyAscii(b, SIP_METHODS) || anyAscii(b, SIP_MORE)),
  // RFC 3550: version 2, a payload type that is not RTCP (72-76 with the marker bit), a plausible length.
  rtp: (b, t, _d, sport, dport) => {
    if (t !== 'udp' || b.byteLength < 12 || b[0]! >> 6 !== 2 || sport < 1024 || dport < 1024) return false
    const pt = b[1]! & 0x7f
    return (pt <= 34 || (pt >= 96 && pt <= 127)) && !(pt >= 72 && pt <= 76)
  },
  rtcp: (b, t) =>
    t === 'udp' &&
    b.byteLength >= 8 &&
    b[0]! >> 6 === 2 &&
    b[1]! >= 200 &&
    b[1]! <= 204 &&
    (u16(b, 2) + 1) * 4 <= b.byteLength,
  // RFC 8489: message type with the top two bits 0, length + 20 = payload, magic cookie 0x2112A442.
  stun: (b) =>
    b.byteLength >= 20 && (b[0]! & 0xc0) === 0 && u32(b, 4) === 0x2112a442 && u16(b, 2) + 20 === b.byteLength,
  rtsp: (b, t) => t === 'tcp' && (anyAscii(b, RTSP_REQUESTS) || ascii(b, 0, 'RTSP/1.0 ')),
  // P_CONTROL_HARD_RESET_CLIENT_V2/V3 (opcode 7 or 10, key id 0) and a session id, behind a length over TCP.
  openvpn: (b, t, _d, sport, dport) => {
    const o = t === 'tcp' ? 2 : 0
    if (t === 'tcp' && (b.byteLength < 2 || u16(b, 0) + 2 !== b.byteLength)) return false
    const op = b[o]
    return (
      (op === 0x38 || op === 0x50 || op === 0x40) &&
      b.byteLength >= o + 14 &&
      (onPort(1194, sport, dport) || op === 0x50)
    )
  },
  // Handshake initiation (148 octets), response (92), cookie reply (64), or transport data (32 + 16n).
  wireguard: (b, t) => {
    if (t !== 'udp' || b.byteLength < 32 || b[1] !== 0 || b[2] !== 0 || b[3] !== 0) return false
    const n = b.byteLength
    const type = b[0]
    return (
      (type === 1 && n === 148) ||
      (type === 2 && n === 92) ||
      (type === 3 && n === 64) ||
      (type === 4 && n >= 32 && (n - 32) % 16 === 0)
    )
  },
  // IKE header (RFC 7296 / 2408): version 1.0 or 2.0, a known exchange type; behind the non-ESP marker on 4500.
  ike: (b, t, _d, sport, dport) => {
    if (t !== 'udp') return false
    const o = onPort(4500, sport, dport) ? 4 : 0
    if (o === 4 && (b.byteLength < 8 || u32(b, 0) !== 0)) return false
    if (!onPort(500, sport, dport) && o === 0) return false
    if (b.byteLength < o + 28) return false
    const v = b[o + 17]
    const x = b[o + 18]!
    return (
      (v === 0x10 || v === 0x20) &&
      ((x >= 1 && x <= 5) || (x >= 32 && x <= 37)) &&
      u32(b, o + 24) === b.byteLength - o
    )
  },
  // BGP: 16 octets of 0xff marker, length, type 1..5.
  bgp: (b, t) => {
    if (t !== 'tcp' || b.byteLength < 19) return false
    for (let i = 0; i < 16; i++) if (b[i] !== 0xff) return false
    return b[18]! >= 1 && b[18]! <= 5
  },
  mqtt: (b, t) => t === 'tcp' && b[0] === 0x10 && (contains(b, N_MQTT, 16) || contains(b, N_MQISDP, 16)),
  amqp: (b, t) => t === 'tcp' && ascii(b, 0, 'AMQP'),
  xmpp: (b, t) =>
    t === 'tcp' && (contains(b, N_XMPP_STREAM, 128) || (ascii(b, 0, '<?xml') && contains(b, N_JABBER, 200))),
  // The command or prefix first (cheap), the port or NOTICE search after.
  irc: (b, t, toServer, sport, dport) =>
    t === 'tcp' &&
    (toServer ? anyAscii(b, IRC_COMMANDS) : b[0] === 0x3a && contains(b, N_IRC_NOTICE)) &&
    (onPort(6667, sport, dport) || onPort(6697, sport, dport) || contains(b, N_IRC_NOTICE)),
  // SOCKS5 greeting (version 5, n methods, n octets) or SOCKS4 CONNECT/BIND.
  socks: (b, t, toServer) =>
    t === 'tcp' &&
    toServer &&
    ((b[0] === 5 && b.byteLength === 2 + b[1]! && b[1]! >= 1) ||
      (b[0] === 4 && (b[1] === 1 || b[1] === 2) && b.byteLength >= 9)),
  // DCE/RPC connection-oriented PDU: version 5.0/5.1, a PDU type, data representation, frag length = payload.
  dcerpc: (b, t) =>
    t === 'tcp' &&
    b.byteLength >= 16 &&
    b[0] === 5 &&
    (b[1] === 0 || b[1] === 1) &&
    b[2]! <= 20 &&
    (b[4] === 0x10 || b[4] === 0) &&
    (b[8]! | (b[9]! << 8)) === b.byteLength,
  // DTLS record: handshake (22) or alert/ccs/data, version DTLS 1.0 (0xfeff) / 1.2 (0xfefd), epoch, length.
  dtls: (b, t) =>
    t === 'udp' &&
    b.byteLength >= 13 &&
    b[0]! >= 20 &&
    b[0]! <= 23 &&
    b[1] === 0xfe &&
    (b[2] === 0xff || b[2] === 0xfd) &&
    u16(b, 11) + 13 <= b.byteLength,
  rsync: (b, t) => t === 'tcp' && ascii(b, 0, '@RSYNCD:'),
  bitcoin: (b, t) =>
    t === 'tcp' &&
    b.byteLength >= 24 &&
    ((b[0] === 0xf9 && b[1] === 0xbe && b[2] === 0xb4 && b[3] === 0xd9) ||
      (b[0] === 0x0b && b[1] === 0x11 && b[2] === 0x09 && b[3] === 0x07)),
  // Long header (form and fixed bits), a known version (1, 2, drafts 0xff0000xx, Google Q0xx), from the client.
  quic: (b, t) => {
    if (t !== 'udp' || b.byteLength < 7 || (b[0]! & 0xc0) !== 0xc0) return false
    const v = u32(b, 1)
    return (
      v === 1 ||
      v === 0x6b3343cf ||
      v >>> 8 === 0xff0000 ||
      (v >>> 24 === 0x51 && b[2] === 0x30) ||
      (v === 0 && b.byteLength >= 7)
    )
  },
}

/**
 * The transports on which each signature can match (each one above tests `t` first, or not at all), so a
 * packet is tried only against the signatures of its transport; the order among them stays the catalogue's.
 */
export const SIGNATURE_TRANSPORTS: Readonly<Record<string, readonly Transport[]>> = {
  ssh: ['tcp', 'udp'],
  rdp: ['tcp'],
  vnc: ['tcp'],
  ftp: ['tcp'],
  smtp: ['tcp'],
  pop3: ['tcp'],
  imap: ['tcp'],
  tftp: ['udp'],
  ntp: ['udp'],
  snmp: ['udp'],
  syslog: ['tcp', 'udp'],
  kerberos: ['tcp', 'udp'],
  ldap: ['tcp', 'udp'],
  netbios: ['tcp', 'udp'],
  smb1: ['tcp'],
  smb2: ['tcp'],
  ssdp: ['udp'],
  mysql: ['tcp'],
  postgres: ['tcp'],
  tds: ['tcp'],
  mongodb: ['tcp'],
  redis: ['tcp'],
  memcached: ['tcp', 'udp'],
  tns: ['tcp'],
  bittorrent: ['tcp', 'udp'],
  sip: ['tcp', 'udp'],
  rtp: ['udp'],
  rtcp: ['udp'],
  stun: ['tcp', 'udp'],
  rtsp: ['tcp'],
  openvpn: ['tcp', 'udp'],
  wireguard: ['udp'],
  ike: ['udp'],
  bgp: ['tcp'],
  mqtt: ['tcp'],
  amqp: ['tcp'],
  xmpp: ['tcp'],
  irc: ['tcp'],
  socks: ['tcp'],
  dcerpc: ['tcp'],
  dtls: ['udp'],
  rsync: ['tcp'],
  bitcoin: ['tcp'],
  quic: ['udp'],
}

const chars = (s: string): number[] => Array.from(s, (c) => c.charCodeAt(0))
const range = (a: number, z: number): number[] => Array.from({ length: z - a + 1 }, (_, i) => a + i)

/**
 * The first payload octets with which each signature can match at all (whatever the rest, the transport,
 * the direction and the ports), so a packet is tried only against the signatures its first octet allows
 * (src/appid/classifier.ts); absent: any first octet (a length, a search, a port-gated bit test).
 * classifier.test.ts checks every set against its signature.
 */
export const SIGNATURE_FIRST_OCTETS: Readonly<Record<string, readonly number[]>> = {
  ssh: chars('S'),
  rdp: [3],
  vnc: chars('R'),
  ftp: chars('UAF2'),
  smtp: chars('EHeh2'),
  pop3: chars('+'),
  imap: chars('*'),
  tftp: [0],
  snmp: [0x30],
  syslog: chars('<'),
  ldap: [0x30],
  smb1: [0],
  smb2: [0],
  ssdp: chars('MN'),
  // The first octet of a 4-octet length equal to the payload's (a captured payload is under 2^24 octets).
  postgres: [0],
  tds: [0x10, 0x12],
  redis: chars('*+-P'),
  memcached: chars('gsaVSv'),
  sip: range(0x41, 0x5a),
  rtp: range(0x80, 0xbf),
  rtcp: range(0x80, 0xbf),
  stun: range(0x00, 0x3f),
  rtsp: chars('ODSPR'),
  wireguard: [1, 2, 3, 4],
  bgp: [0xff],
  mqtt: [0x10],
  amqp: chars('A'),
  irc: chars('NUCP:'),
  socks: [4, 5],
  dcerpc: [5],
  dtls: range(20, 23),
  rsync: chars('@'),
  bitcoin: [0xf9, 0x0b],
  quic: range(0xc0, 0xff),
}

/** A packet's transport and direction, as the gates below key first octets. */
export type Way = `${Transport}-${'toServer' | 'toClient'}`

/**
 * What a payload must have for a signature to match at all, beyond its transports and first octets above:
 * computed once, so a packet is tried only against the signatures that can match it (src/appid/classifier.ts).
 * Each bound follows from the signature's own tests; signatures.test.ts checks them against the signatures on random
 * payloads.
 */
export interface SignatureGate {
  /** Payload octets at least. */
  readonly minLength: number
  /** The one direction in which it can match (absent: both). */
  readonly dir?: 'toServer' | 'toClient'
  /** It can match only when the packet's source or destination port is one of these (absent: any port). */
  readonly ports?: readonly number[]
  /** First octets on a transport and direction, narrower than SIGNATURE_FIRST_OCTETS (absent: those). */
  readonly first?: Partial<Record<Way, readonly number[]>>
  /**
   * A length field (unsigned, big-endian unless `little`, `size` octets at offset `at`, within minLength)
   * whose value plus `add` is the payload's length; on transport `on` only, when given.
   */
  readonly length?: {
    readonly at: number
    readonly size: 2 | 3 | 4
    readonly little?: boolean
    readonly add: number
    readonly on?: Transport
  }
  /** The payload starts with `prefix` or holds `needle` within its first `limit` octets. */
  readonly anchor?: { readonly prefix: string; readonly needle: string; readonly limit: number }
}

export const SIGNATURE_GATES: Readonly<Record<string, SignatureGate>> = {
  ssh: { minLength: 6 },
  rdp: { minLength: 11, length: { at: 2, size: 2, add: 0 } },
  vnc: { minLength: 5 },
  // A command (5 octets at least), or '220' and 'FTP' after it.
  ftp: { minLength: 5, first: { 'tcp-toServer': chars('UAF'), 'tcp-toClient': chars('2') } },
  smtp: { minLength: 5, first: { 'tcp-toServer': chars('EHeh'), 'tcp-toClient': chars('2') } },
  pop3: { minLength: 3, dir: 'toClient' },
  imap: { minLength: 4, dir: 'toClient' },
  tftp: { minLength: 4, dir: 'toServer', ports: [69] },
  ntp: { minLength: 48, ports: [123] },
  // SEQUENCE, length, INTEGER, length 1, the version.
  snmp: { minLength: 5, ports: [161, 162] },
  syslog: { minLength: 3, ports: [514, 601] },
  kerberos: { minLength: 1, ports: [88] },
  // SEQUENCE, length, INTEGER, its length (1 at least) and value, the operation's tag.
  ldap: { minLength: 6, ports: [389, 3268] },
  netbios: {
    minLength: 4,
    ports: [137, 138, 139],
    first: { 'tcp-toServer': [0, 0x81, 0x82, 0x85], 'tcp-toClient': [0, 0x81, 0x82, 0x85] },
  },
  smb1: { minLength: 8 },
  smb2: { minLength: 8 },
  ssdp: { minLength: 17 },
  mysql: { minLength: 10, dir: 'toClient', length: { at: 0, size: 3, little: true, add: 4 } },
  postgres: { minLength: 8, dir: 'toServer', length: { at: 0, size: 4, add: 0 } },
  tds: { minLength: 8, dir: 'toServer', length: { at: 2, size: 2, add: 0 } },
  mongodb: { minLength: 16, length: { at: 0, size: 4, little: true, add: 0 } },
  redis: { minLength: 2, ports: [6379] },
  memcached: { minLength: 4, ports: [11211] },
  tns: { minLength: 8, ports: [1521], length: { at: 0, size: 2, add: 0 } },
  // Over TCP the handshake (19, 'BitTorrent protocol'); over UDP a bencoded DHT message ('d1:q' at least).
  bittorrent: {
    minLength: 4,
    anchor: { prefix: 'd1:', needle: 'BitTorrent', limit: 64 },
    first: { 'tcp-toServer': [19], 'tcp-toClient': [19] },
  },
  sip: { minLength: 7 },
  rtp: { minLength: 12 },
  rtcp: { minLength: 8 },
  stun: { minLength: 20, length: { at: 2, size: 2, add: 20 } },
  rtsp: { minLength: 9 },
  openvpn: {
    minLength: 14,
    first: { 'udp-toServer': [0x38, 0x40, 0x50], 'udp-toClient': [0x38, 0x40, 0x50] },
    length: { at: 0, size: 2, add: 2, on: 'tcp' },
  },
  wireguard: { minLength: 32 },
  ike: { minLength: 28, ports: [500, 4500] },
  bgp: { minLength: 19 },
  // 0x10, then 'MQTT' within the first 16 octets.
  mqtt: { minLength: 5 },
  amqp: { minLength: 4 },
  // '<stream:stream' (14), or '<?xml' and 'jabber' after it (11).
  xmpp: { minLength: 11, anchor: { prefix: '<?xml', needle: '<stream:stream', limit: 128 } },
  irc: { minLength: 5, first: { 'tcp-toServer': chars('NUCP'), 'tcp-toClient': chars(':') } },
  socks: { minLength: 3, dir: 'toServer' },
  dcerpc: { minLength: 16, length: { at: 8, size: 2, little: true, add: 0 } },
  dtls: { minLength: 13 },
  rsync: { minLength: 8 },
  bitcoin: { minLength: 24 },
  quic: { minLength: 7 },
}
