/**
 * Lookups over the application catalogue (src/appid/catalogue.ts): by server name (longest matching domain
 * suffix), by content signature or L7 parser, by responder port and by IP protocol; plus the bounded cache
 * of DNS answers that names a server address for the flows that follow the lookup (nDPI's "FPC: DNS").
 *
 * Entries are referred to by their index in CATALOGUE (a small integer kept in the flow state); the
 * exported RFC 6759 applicationId carries the entry's stable id.
 */
import { CATALOGUE, type AppEntry } from './catalogue.js'
import {
  SIGNATURE_FIRST_OCTETS,
  SIGNATURE_TRANSPORTS,
  SIGNATURES,
  type Signature,
  type Transport,
} from './signatures.js'

/** How an application was recognised, weakest first (a stronger one replaces a weaker one). */
export const Evidence = {
  None: 0,
  IpProtocol: 1,
  Port: 2,
  /** A content signature or the L7 parser that claimed the flow. */
  Signature: 3,
  /** A server address that a DNS answer seen earlier gave for a catalogue name. */
  DnsCache: 4,
  /** SNI, HTTP Host or DNS query name. */
  Name: 5,
} as const

export const NO_APP = -1

/** Names memoised by byHost at most (then the memo starts again), and the longest name memoised. */
const HOST_MEMO = 4096
const MAX_MEMO_HOST = 255

export class AppCatalogue {
  readonly entries: readonly AppEntry[]
  private readonly byDomain = new Map<string, number>()
  /** Entry by port: TCP ports at 0-65535, UDP ports at 65536-131071 (NO_APP when none). */
  private readonly byPort = new Int32Array(2 * 65536).fill(NO_APP)
  private readonly byProtocol = new Map<number, number>()
  private readonly byName = new Map<string, number>()
  /** byHost and named answers by the name as given (bounded: cleared when full). */
  private readonly hostMemo = new Map<string, number>()
  private readonly namedMemo = new Map<string, number>()
  /** Signatures in catalogue order, each with the entry it names. */
  readonly signatures: readonly { readonly entry: number; readonly test: Signature }[]
  /** The signatures that can match on TCP, and on UDP (SIGNATURE_TRANSPORTS), in catalogue order. */
  readonly tcpSignatures: readonly { readonly entry: number; readonly test: Signature }[]
  readonly udpSignatures: readonly { readonly entry: number; readonly test: Signature }[]
  /**
   * tcpSignatures and udpSignatures by the payload's first octet: those that can match with it
   * (SIGNATURE_FIRST_OCTETS), in the same order. The first that matches is the same as in the full list.
   */
  readonly tcpSignaturesByOctet: readonly (readonly { readonly entry: number; readonly test: Signature }[])[]
  readonly udpSignaturesByOctet: readonly (readonly { readonly entry: number; readonly test: Signature }[])[]

  constructor(entries: readonly AppEntry[] = CATALOGUE) {
    this.entries = entries
    const sigs: { entry: number; test: Signature }[] = []
    const ids = new Set<number>()
    entries.forEach((e, i) => {
      if (!Number.isInteger(e.id) || e.id < 1 || e.id > 0xffffff) throw new Error(`catalogue: bad id ${e.id}`)
      if (ids.has(e.id)) throw new Error(`catalogue: id ${e.id} used twice`)
      ids.add(e.id)
      const key = e.name.toLowerCase()
      if (this.byName.has(key)) throw new Error(`catalogue: name ${e.name} used twice`)
      this.byName.set(key, i)
      for (const d of e.domains) this.byDomain.set(d.toLowerCase(), i)
      for (const p of e.ports) {
        const m = /^(tcp|udp)\/(\d{1,5})$/.exec(p)
        if (m === null || Number(m[2]) > 65535) throw new Error(`catalogue: ${e.name}: bad port "${p}"`)
        const key = (m[1] === 'tcp' ? 0 : 65536) + Number(m[2])
        if (this.byPort[key] === NO_APP) this.byPort[key] = i
      }
      for (const n of e.ipProtocols) this.byProtocol.set(n, i)
      if (e.signature !== '') {
        const test = SIGNATURES[e.signature]
        if (test !== undefined) sigs.push({ entry: i, test })
      }
    })
    this.signatures = sigs
    const on = (t: Transport): { entry: number; test: Signature }[] =>
      sigs.filter((x) => {
        const name = entries[x.entry]!.signature
        return (SIGNATURE_TRANSPORTS[name] ?? ['tcp', 'udp']).includes(t)
      })
    this.tcpSignatures = on('tcp')
    this.udpSignatures = on('udp')
    const byOctet = (
      list: readonly { entry: number; test: Signature }[],
    ): { entry: number; test: Signature }[][] =>
      Array.from({ length: 256 }, (_, octet) =>
        list.filter((x) => SIGNATURE_FIRST_OCTETS[entries[x.entry]!.signature]?.includes(octet) ?? true),
      )
    this.tcpSignaturesByOctet = byOctet(this.tcpSignatures)
    this.udpSignaturesByOctet = byOctet(this.udpSignatures)
  }

  /**
   * The entry whose domain equals `host` or is its longest suffix at a label boundary; NO_APP if none.
   * Names repeat (the same servers over many flows and DNS answers): recent answers are memoised.
   */
  byHost(host: string): number {
    const memo = this.hostMemo.get(host)
    if (memo !== undefined) return memo
    const e = this.lookupHost(host)
    if (host.length <= MAX_MEMO_HOST) {
      if (this.hostMemo.size >= HOST_MEMO) this.hostMemo.clear()
      this.hostMemo.set(host, e)
    }
    return e
  }

  private lookupHost(host: string): number {
    let h = host.toLowerCase()
    if (h.endsWith('.')) h = h.slice(0, -1)
    for (let guard = 0; guard < 16 && h !== ''; guard++) {
      const i = this.byDomain.get(h)
      if (i !== undefined) return i
      const dot = h.indexOf('.')
      if (dot < 0) break
      h = h.slice(dot + 1)
    }
    return NO_APP
  }

  /** By catalogue name, case-insensitively (the L7 parser names map here: 'DNS', 'HTTP', 'TLS', ...). */
  named(name: string): number {
    let e = this.namedMemo.get(name)
    if (e === undefined) {
      e = this.byName.get(name.toLowerCase()) ?? NO_APP
      if (this.namedMemo.size < HOST_MEMO) this.namedMemo.set(name, e)
    }
    return e
  }

  byTransportPort(protocol: number, port: number): number {
    if ((protocol !== 6 && protocol !== 17) || port < 0 || port > 65535) return NO_APP
    return this.byPort[protocol === 6 ? port : 65536 + port]!
  }

  byIpProtocol(protocol: number): number {
    return this.byProtocol.get(protocol) ?? NO_APP
  }
}

/**
 * A dotted-quad IPv4 address in canonical form (four decimal octets 0-255, no leading zeros) as its 32-bit
 * number, signed (`| 0`: a small integer to V8, where an unsigned one above 2^31 is a heap number made
 * on every lookup); any other text stays text. Read character by character (DNS answers bring many).
 */
function addressKey(address: string): number | string {
  const n = address.length
  let v = 0
  let parts = 0
  let i = 0
  while (parts < 4) {
    const first = i
    let o = 0
    while (i < n && i - first < 3) {
      const c = address.charCodeAt(i)
      if (c < 0x30 || c > 0x39) break
      o = o * 10 + (c - 0x30)
      i++
    }
    const digits = i - first
    if (digits === 0 || o > 255 || (digits > 1 && address.charCodeAt(first) === 0x30)) return address
    v = v * 256 + o
    parts++
    if (parts < 4) {
      if (address.charCodeAt(i) !== 0x2e) return address
      i++
    }
  }
  return i === n ? v | 0 : address
}

/**
 * Server addresses named by DNS answers (address text → catalogue entry), most recent kept, bounded: the
 * oldest entry leaves when `capacity` is reached. IPv4 addresses are kept as numbers, so a flow's address
 * is looked up without formatting it.
 */
export class DnsAnswerCache {
  private readonly map = new Map<number | string, number>()
  constructor(private readonly capacity = 65536) {}

  set(address: string, entry: number): void {
    const key = addressKey(address)
    if (this.map.has(key)) this.map.delete(key)
    else if (this.map.size >= this.capacity) {
      const oldest = this.map.keys().next().value
      if (oldest !== undefined) this.map.delete(oldest)
    }
    this.map.set(key, entry)
  }

  get(address: string): number {
    return this.map.get(addressKey(address)) ?? NO_APP
  }

  /** Lookup by an IPv4 address as a 32-bit number. */
  getIpv4(address: number): number {
    return this.map.get(address | 0) ?? NO_APP
  }

  get size(): number {
    return this.map.size
  }
}
