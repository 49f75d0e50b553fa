/**
 * @module l7/dhcp
 * DHCPv4 (RFC 2131, options RFC 2132; client FQDN RFC 4702; relay giaddr) and DHCPv6 (RFC 8415; DNS
 * options RFC 3646, client FQDN RFC 4704, prefix delegation IA_PD) messages over UDP, one transaction per
 * message: a DISCOVER, an OFFER, a SOLICIT, a REPLY each become one record, as nProbe and Flowmon report
 * DHCP (Zeek's dhcp.log folds the messages of one xid into a row; the scorer does that folding).
 *
 * What a network engineer troubleshoots a lease with: message type, transaction id, client MAC (chaddr, or
 * the link-layer address inside a DHCPv6 DUID-LL/LLT), requested and assigned addresses (IA_NA/IA_TA
 * addresses and IA_PD prefixes for v6), server identifier, lease time, host name, domain, client FQDN,
 * vendor class, parameter request list (the client fingerprint), client identifier, relay agent address
 * and information (option 82, RFC 3046; DHCPv6 Interface-Id / Remote-Id) and the server's message (option 56 / status code text).
 *
 * Every length is checked against the datagram: a truncated fixed header, an option running past the end
 * or a missing magic cookie is counted (`dhcp_truncated`, `dhcp_bad_option_length`) and the message dropped
 * or cut at the bad option; nothing throws.
 */
import { ipv4Text, ipv6Text } from '../util/address-text.js'
import { L7Dir, OK, type L7Context, type L7Parser, type L7Transport, type ParseResult } from './parser.js'

export interface DhcpTx {
  /** 4 or 6. */
  version: number
  /** DHCPv4 option 53 (1 DISCOVER … 8 INFORM, 0 for plain BOOTP) or the DHCPv6 msg-type (1 SOLICIT …). */
  msgType: number
  /** xid (v4, 32 bits) or transaction-id (v6, 24 bits). */
  xid: number
  /** Client hardware address as 12 hex digits ('' when unknown). */
  clientMac: string
  /** v4: option 50 requested address; '' when none. */
  requestedAddr: string
  /** v4: yiaddr; v6: IA addresses and delegated prefixes, comma separated. */
  assignedAddr: string
  /** v4: option 54 server identifier (address text); v6: server DUID as hex. */
  serverId: string
  /** v4 option 51, v6 the first IA address's valid lifetime (seconds); -1 when absent. */
  leaseTime: number
  hostName: string
  /** v4 option 15; v6 option 24 domain search list, comma separated. */
  domain: string
  /** v4 option 81, v6 option 39. */
  clientFqdn: string
  /** v4 option 60; v6 option 16 (enterprise number and classes). */
  vendorClass: string
  /** v4 option 55 / v6 option 6 (ORO): requested options, comma separated (the client fingerprint). */
  paramList: string
  /** v4 option 61 / v6 client DUID, as hex. */
  clientId: string
  /** v4 giaddr, v6 link-address of the outermost Relay-forward ('' when not relayed). */
  relayAddr: string
  /** v4 option 56; v6 status code message. */
  message: string
  /**
   * Relay agent information: v4 option 82 sub-options (RFC 3046: 1 circuit-id, 2 remote-id, others by
   * number), v6 Interface-Id (18) and Remote-Id (37) of the relay; as `circuit-id=<hex>,remote-id=<hex>`.
   */
  relayInfo: string
  /** Capture time (µs). */
  tsUs: number
}

export interface DhcpState {
  /** 4 or 6 once the first message told (0 before). */
  version: number
}

export const DHCP_PORTS = [67, 68, 546, 547] as const

const MAGIC = 0x63825363
const BOOTP_FIXED = 236
/** Longest text kept from one option (the record writer clips again to its budget). */
const MAX_TEXT = 255

/**
 * The text being built by hex and text: octets written here and decoded once, instead of a string
 * concatenation per octet. All of it is ASCII (printable octets, \xNN, hex digits), so latin1 decodes it.
 * text keeps MAX_TEXT octets of 4 characters at most, hex 128 octets of 2.
 */
const TEXT_OUT = Buffer.alloc(4 * MAX_TEXT)
const HEX_DIGITS = Uint8Array.from('0123456789abcdef', (c) => c.charCodeAt(0))

/** Lowercase hex of m[a, b), at most 128 octets of it. */
function hex(m: Uint8Array, a: number, b: number): string {
  const out = TEXT_OUT
  const end = Math.min(b, a + 128)
  let n = 0
  for (let i = a; i < end; i++) {
    const c = m[i]!
    out[n++] = HEX_DIGITS[c >> 4]!
    out[n++] = HEX_DIGITS[c & 15]!
  }
  return n === 0 ? '' : out.toString('latin1', 0, n)
}

/** Printable text of an option (other octets as \xNN, like Zeek). */
function text(m: Uint8Array, a: number, b: number): string {
  const out = TEXT_OUT
  const end = Math.min(b, a + MAX_TEXT)
  let n = 0
  for (let i = a; i < end; i++) {
    const c = m[i]!
    if (c === 0 && i === b - 1) break // a trailing NUL some clients add
    if (c >= 0x20 && c < 0x7f) out[n++] = c
    else {
      out[n++] = 0x5c // \
      out[n++] = 0x78 // x
      out[n++] = HEX_DIGITS[c >> 4]!
      out[n++] = HEX_DIGITS[c & 15]!
    }
  }
  return n === 0 ? '' : out.toString('latin1', 0, n)
}

function u16(m: Uint8Array, o: number): number {
  return (m[o]! << 8) | m[o + 1]!
}
function u32(m: Uint8Array, o: number): number {
  return ((m[o]! << 24) | (m[o + 1]! << 16) | (m[o + 2]! << 8) | m[o + 3]!) >>> 0
}

function newTx(version: number, tsUs: number): DhcpTx {
  return {
    version,
    msgType: 0,
    xid: 0,
    clientMac: '',
    requestedAddr: '',
    assignedAddr: '',
    serverId: '',
    leaseTime: -1,
    hostName: '',
    domain: '',
    clientFqdn: '',
    vendorClass: '',
    paramList: '',
    clientId: '',
    relayAddr: '',
    message: '',
    relayInfo: '',
    tsUs,
  }
}

/** RFC 1035 wire-format names (RFC 3646 domain lists, RFC 4702/4704 FQDN), uncompressed. */
function wireNames(m: Uint8Array, a: number, b: number): string[] {
  const names: string[] = []
  let name = ''
  let p = a
  while (p < b) {
    const len = m[p]!
    if (len === 0) {
      if (name !== '') names.push(name)
      name = ''
      p++
      continue
    }
    if (len > 63 || p + 1 + len > b) break
    name += (name === '' ? '' : '.') + text(m, p + 1, p + 1 + len)
    p += 1 + len
  }
  if (name !== '') names.push(name) // a partial name (RFC 4702 allows one)
  return names
}

/** Looks like a BOOTP/DHCPv4 message: op 1/2, a plausible hardware address length, the magic cookie. */
function isDhcp4(m: Uint8Array): boolean {
  return (
    m.byteLength >= BOOTP_FIXED + 4 &&
    (m[0] === 1 || m[0] === 2) &&
    m[2]! <= 16 &&
    u32(m, BOOTP_FIXED) === MAGIC
  )
}

/**
 * Looks like DHCPv6: a known message type whose options (or relay header) tile the datagram exactly and
 * include a client or server identifier or a relayed message. Content alone, since the engine probes
 * every UDP flow.
 */
function isDhcp6(m: Uint8Array): boolean {
  if (m.byteLength < 4) return false
  const t = m[0]!
  if (t === 12 || t === 13) return m.byteLength >= 34 && optionsTile(m, 34, true)
  if (t < 1 || t > 11) return false
  return optionsTile(m, 4, false)
}

function optionsTile(m: Uint8Array, start: number, relay: boolean): boolean {
  let p = start
  let ids = false
  while (p + 4 <= m.byteLength) {
    const code = u16(m, p)
    const len = u16(m, p + 2)
    if (p + 4 + len > m.byteLength) return false
    if (code === 0 || code > 200) return false
    if (code === 1 || code === 2 || (relay && code === 9)) ids = true
    p += 4 + len
  }
  return p === m.byteLength && ids
}

function parseDhcp4(m: Uint8Array, tx: DhcpTx, ctx: L7Context<DhcpTx>): void {
  tx.xid = u32(m, 4)
  const hlen = m[2]!
  if (m[1] === 1 && hlen === 6) tx.clientMac = hex(m, 28, 34)
  const yiaddr = u32(m, 16)
  const giaddr = u32(m, 24)
  if (yiaddr !== 0) tx.assignedAddr = ipv4Text(yiaddr)
  if (giaddr !== 0) tx.relayAddr = ipv4Text(giaddr)
  let p = BOOTP_FIXED + 4
  const end = m.byteLength
  while (p < end) {
    const code = m[p]!
    if (code === 0) {
      p++
      continue
    }
    if (code === 255) return
    if (p + 2 > end) {
      ctx.anomaly('dhcp_truncated')
      return
    }
    const len = m[p + 1]!
    const a = p + 2
    const b = a + len
    if (b > end) {
      ctx.anomaly('dhcp_bad_option_length')
      return
    }
    switch (code) {
      case 53:
        if (len >= 1) tx.msgType = m[a]!
        break
      case 50:
        if (len === 4) tx.requestedAddr = ipv4Text(u32(m, a))
        break
      case 54:
        if (len === 4) tx.serverId = ipv4Text(u32(m, a))
        break
      case 51:
        if (len === 4) tx.leaseTime = u32(m, a)
        break
      case 12:
        tx.hostName = text(m, a, b)
        break
      case 15:
        tx.domain = text(m, a, b)
        break
      case 81:
        // RFC 4702: flags, rcode1, rcode2, then the name: wire format when flag E (0x04) is set.
        if (len >= 3)
          tx.clientFqdn = (m[a]! & 0x04) !== 0 ? wireNames(m, a + 3, b).join(',') : text(m, a + 3, b)
        break
      case 60:
        tx.vendorClass = text(m, a, b)
        break
      case 55: {
        const codes: number[] = []
        for (let i = a; i < b; i++) codes.push(m[i]!)
        tx.paramList = codes.join(',')
        break
      }
      case 61:
        tx.clientId = hex(m, a, b)
        break
      case 56:
        tx.message = text(m, a, b)
        break
      case 82:
        tx.relayInfo = relayAgentInfo(m, a, b, ctx)
        break
    }
    p = b
  }
}

const RELAY_SUBOPTIONS: Record<number, string> = {
  1: 'circuit-id',
  2: 'remote-id',
  5: 'link-selection',
  6: 'subscriber-id',
}

/** RFC 3046 sub-options of option 82: (code, len, data)*. */
function relayAgentInfo(m: Uint8Array, a: number, b: number, ctx: L7Context<DhcpTx>): string {
  const parts: string[] = []
  for (let p = a; p < b;) {
    if (p + 2 > b || p + 2 + m[p + 1]! > b) {
      ctx.anomaly('dhcp_bad_option_length')
      break
    }
    const code = m[p]!
    const len = m[p + 1]!
    parts.push(`${RELAY_SUBOPTIONS[code] ?? String(code)}=${hex(m, p + 2, p + 2 + len)}`)
    p += 2 + len
  }
  return parts.join(',')
}

/** DUID-LLT (1) and DUID-LL (3) with hardware type 1 carry the client's MAC (RFC 8415 §11.2, §11.4). */
function duidMac(m: Uint8Array, a: number, b: number): string {
  if (b - a < 4 || u16(m, a + 2) !== 1) return ''
  const type = u16(m, a)
  if (type === 1 && b - a === 14) return hex(m, a + 8, a + 14)
  if (type === 3 && b - a === 10) return hex(m, a + 4, a + 10)
  return ''
}

/** Options of a DHCPv6 message (or of an IA / IA address, recursively) in [a, b). */
function options6(
  m: Uint8Array,
  view: DataView,
  a: number,
  b: number,
  tx: DhcpTx,
  ctx: L7Context<DhcpTx>,
): void {
  let p = a
  while (p < b) {
    if (p + 4 > b) {
      ctx.anomaly('dhcp_truncated')
      return
    }
    const code = u16(m, p)
    const len = u16(m, p + 2)
    const s = p + 4
    const e = s + len
    if (e > b) {
      ctx.anomaly('dhcp_bad_option_length')
      return
    }
    switch (code) {
      case 1: // Client Identifier
        tx.clientId = hex(m, s, e)
        if (tx.clientMac === '') tx.clientMac = duidMac(m, s, e)
        break
      case 2: // Server Identifier
        tx.serverId = hex(m, s, e)
        break
      case 3: // IA_NA: IAID, T1, T2, options
        if (len >= 12) options6(m, view, s + 12, e, tx, ctx)
        break
      case 4: // IA_TA: IAID, options
        if (len >= 4) options6(m, view, s + 4, e, tx, ctx)
        break
      case 5: // IA Address: address, preferred, valid, options
        if (len >= 24) {
          addAssigned(tx, ipv6Text(view, s))
          if (tx.leaseTime < 0) tx.leaseTime = u32(m, s + 20)
          options6(m, view, s + 24, e, tx, ctx)
        }
        break
      case 25: // IA_PD: IAID, T1, T2, options
        if (len >= 12) options6(m, view, s + 12, e, tx, ctx)
        break
      case 26: // IA Prefix: preferred, valid, prefix-length, prefix
        if (len >= 25) {
          addAssigned(tx, `${ipv6Text(view, s + 9)}/${m[s + 8]!}`)
          if (tx.leaseTime < 0) tx.leaseTime = u32(m, s + 4)
        }
        break
      case 6: {
        // Option Request: 2-octet codes
        const codes: number[] = []
        for (let i = s; i + 2 <= e; i += 2) codes.push(u16(m, i))
        tx.paramList = codes.join(',')
        break
      }
      case 13: // Status Code: code, message
        if (len >= 2 && e > s + 2) tx.message = text(m, s + 2, e)
        break
      case 16: // Vendor Class: enterprise, then (len, data)*
        if (len >= 4) {
          const classes: string[] = []
          for (let i = s + 4; i + 2 <= e;) {
            const l = u16(m, i)
            if (i + 2 + l > e) break
            classes.push(text(m, i + 2, i + 2 + l))
            i += 2 + l
          }
          tx.vendorClass = `${u32(m, s)}:${classes.join(',')}`
        }
        break
      case 24: // Domain Search List
        tx.domain = wireNames(m, s, e).join(',')
        break
      case 39: // Client FQDN: flags, name
        if (len >= 1) tx.clientFqdn = wireNames(m, s + 1, e).join(',')
        break
      case 18: // Interface-Id (in a Relay-forward)
        tx.relayInfo += (tx.relayInfo === '' ? '' : ',') + 'interface-id=' + hex(m, s, e)
        break
      case 37: // Relay Agent Remote-ID: enterprise number, remote-id
        tx.relayInfo += (tx.relayInfo === '' ? '' : ',') + 'remote-id=' + hex(m, s, e)
        break
    }
    p = e
  }
}

function addAssigned(tx: DhcpTx, a: string): void {
  if (tx.assignedAddr.length < MAX_TEXT) tx.assignedAddr += (tx.assignedAddr === '' ? '' : ',') + a
}

function parseDhcp6(m: Uint8Array, tx: DhcpTx, ctx: L7Context<DhcpTx>): void {
  const view = new DataView(m.buffer, m.byteOffset, m.byteLength)
  let a = 0
  // Relay-forward / Relay-reply (RFC 8415 §9): unwrap to the relayed client or server message.
  for (let depth = 0; depth < 8; depth++) {
    const t = m[a]!
    if (t !== 12 && t !== 13) break
    if (a + 34 > m.byteLength) {
      ctx.anomaly('dhcp_truncated')
      return
    }
    if (tx.relayAddr === '') tx.relayAddr = ipv6Text(view, a + 2)
    let inner = -1
    let innerEnd = -1
    for (let p = a + 34; p + 4 <= m.byteLength;) {
      const code = u16(m, p)
      const len = u16(m, p + 2)
      if (p + 4 + len > m.byteLength) break
      if (code === 9) {
        inner = p + 4
        innerEnd = p + 4 + len
      } else if (code === 18 || code === 37) {
        const name = code === 18 ? 'interface-id' : 'remote-id'
        tx.relayInfo += (tx.relayInfo === '' ? '' : ',') + name + '=' + hex(m, p + 4, p + 4 + len)
      }
      p += 4 + len
    }
    if (inner < 0 || innerEnd - inner < 4) {
      tx.msgType = t
      return
    }
    m = m.subarray(0, innerEnd)
    a = inner
  }
  if (a + 4 > m.byteLength) {
    ctx.anomaly('dhcp_truncated')
    return
  }
  tx.msgType = m[a]!
  tx.xid = (m[a + 1]! << 16) | (m[a + 2]! << 8) | m[a + 3]!
  options6(m, view, a + 4, m.byteLength, tx, ctx)
}

export const dhcpParser: L7Parser<DhcpState, DhcpTx> = {
  name: 'dhcp',
  transports: ['udp'],
  ports: DHCP_PORTS,

  probe(bytes: Uint8Array, _dir: L7Dir, transport: L7Transport): boolean {
    return transport === 'udp' && (isDhcp4(bytes) || isDhcp6(bytes))
  },

  newState(): DhcpState {
    return { version: 0 }
  },

  parse(s: DhcpState, _dir: L7Dir, bytes: Uint8Array, ctx: L7Context<DhcpTx>): ParseResult {
    if (s.version === 0) s.version = isDhcp4(bytes) ? 4 : 6
    if (s.version === 4) {
      if (!isDhcp4(bytes)) {
        ctx.anomaly(bytes.byteLength < BOOTP_FIXED + 4 ? 'dhcp_truncated' : 'dhcp_bad_magic_cookie')
        return OK
      }
      const tx = newTx(4, ctx.tsUs)
      parseDhcp4(bytes, tx, ctx)
      ctx.emit(tx)
    } else {
      const t = bytes[0] ?? 0
      if (bytes.byteLength < 4 || t < 1 || t > 13) {
        ctx.anomaly(bytes.byteLength < 4 ? 'dhcp_truncated' : 'dhcp_bad_message_type')
        return OK
      }
      const tx = newTx(6, ctx.tsUs)
      parseDhcp6(bytes, tx, ctx)
      ctx.emit(tx)
    }
    return OK
  },

  wantsMore(): boolean {
    return true
  },

  finish(): void {},
}
