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
  Needle,
  SIGNATURE_FIRST_OCTETS,
  SIGNATURE_GATES,
  SIGNATURE_TRANSPORTS,
  SIGNATURES,
  type Signature,
  type Transport,
  type Way,
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

/**
 * A signature with the entry it names and what a payload needs for it to match (SIGNATURE_GATES on one
 * transport), in a form tested without calling it: see gateAdmits.
 */
export interface GatedSignature {
  readonly entry: number
  readonly test: Signature
  readonly minLength: number
  /** The length field: its offset (-1: none), size, 1 when little-endian, and what adds to it. */
  readonly lengthAt: number
  readonly lengthSize: number
  readonly lengthLittle: number
  readonly lengthAdd: number
  /** The anchor: a prefix, or a needle within the first `needleLimit` octets (needle null: none). */
  readonly prefix: Uint8Array
  readonly needle: Needle | null
  readonly needleLimit: number
}

/**
 * False when signature `s` cannot match the `len`-octet payload at `b[o]` by its length field or anchor
 * (minLength is tested before: the length field lies within it).
 */
export function gateAdmits(s: GatedSignature, b: Uint8Array, o: number, len: number): boolean {
  const at = s.lengthAt
  if (at >= 0) {
    const i = o + at
    let v: number
    switch (s.lengthSize) {
      case 2:
        v = s.lengthLittle === 1 ? b[i]! | (b[i + 1]! << 8) : (b[i]! << 8) | b[i + 1]!
        break
      case 3:
        v =
          s.lengthLittle === 1
            ? b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16)
            : (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!
        break
      default:
        v =
          s.lengthLittle === 1
            ? (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0
            : ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0
    }
    if (v + s.lengthAdd !== len) return false
  }
  const n = s.needle
  if (n !== null) {
    const pre = s.prefix
    let j = 0
    if (pre.length <= len) while (j < pre.length && b[o + j] === pre[j]) j++
    if (j < pre.length || pre.length > len) return n.within(b, o, o + Math.min(len, s.needleLimit))
  }
  return true
}

/** The packet ways in the order of AppCatalogue.gated (index: 2 · (UDP ? 1 : 0) + (to the client ? 1 : 0)). */
export const WAYS: readonly Way[] = ['tcp-toServer', 'tcp-toClient', 'udp-toServer', 'udp-toClient']

/**
 * Index in AppCatalogue.gated of the signatures to try on a payload: `way` (WAYS), whether a port of the packet
 * is one some signature is gated on (AppCatalogue.gatePort), its first octet.
 */
export function gatedIndex(way: number, portGated: number, first: number): number {
  return (((way << 1) | portGated) << 8) | first
}

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
   * One bit per TCP port (0-65535) and UDP port (65536 + port): set when some entry lists the port (what
   * byTransportPort answers without reading its 512 kB table).
   */
  readonly portKnown = new Uint8Array((2 * 65536) >> 3)
  /**
   * The signatures that can match a payload, by gatedIndex (way, port gate, first octet): those of the
   * transport whose direction, first octet and ports (SIGNATURE_GATES) allow it, in catalogue order, so the
   * first that matches is the same as in the full list. Lists for a packet on none of the gated ports leave
   * out the port-gated signatures; a packet on one of them gets those too (each tests its own ports).
   * Undefined until made (gatedList).
   */
  readonly gated: (readonly GatedSignature[] | undefined)[] = Array.from({ length: 4 << 9 }, () => undefined)
  private readonly gateForms: readonly (readonly ({
    g: GatedSignature
    octets: Uint8Array
    portGated: number
  } | null)[])[]
  /** Per port: 1 when some signature can match only on a list of ports that holds it. */
  readonly gatePort = new Uint8Array(65536)

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
        this.portKnown[key >> 3]! |= 1 << (key & 7)
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
    this.gateForms = this.gateFormsOf(entries, sigs)
  }

  /**
   * The signatures to try on a payload, by gatedIndex (see `gated`). A list is made when first asked for
   * (most combinations of way, port gate and first octet never occur in a capture).
   */
  gatedList(index: number): readonly GatedSignature[] {
    const made = this.gated[index]
    if (made !== undefined) return made
    const w = index >> 9
    const portGated = (index >> 8) & 1
    const octet = index & 0xff
    const list: GatedSignature[] = []
    for (const f of this.gateForms) {
      const x = f[w]
      if (x !== null && x !== undefined && x.octets[octet] === 1 && x.portGated <= portGated) list.push(x.g)
    }
    this.gated[index] = list
    return list
  }

  /** Per signature and way: its gated form (null when it cannot match on that way) and the first octets it allows there. */
  private gateFormsOf(
    entries: readonly AppEntry[],
    sigs: readonly { entry: number; test: Signature }[],
  ): ({ g: GatedSignature; octets: Uint8Array; portGated: number } | null)[][] {
    const needles = new Map<string, Needle>()
    const mask = (octets: readonly number[] | undefined): Uint8Array => {
      const m = new Uint8Array(256).fill(octets === undefined ? 1 : 0)
      for (const o of octets ?? []) m[o] = 1
      return m
    }
    return sigs.map((x) => {
      const name = entries[x.entry]!.signature
      const gate = SIGNATURE_GATES[name]
      for (const p of gate?.ports ?? []) this.gatePort[p] = 1
      const a = gate?.anchor
      let needle: Needle | null = null
      if (a !== undefined) {
        needle = needles.get(a.needle) ?? new Needle(a.needle)
        needles.set(a.needle, needle)
      }
      const first = mask(SIGNATURE_FIRST_OCTETS[name])
      const prefix = Uint8Array.from(a?.prefix ?? '', (c) => c.charCodeAt(0))
      return WAYS.map((way) => {
        const t: Transport = way.startsWith('tcp') ? 'tcp' : 'udp'
        const dir = way.endsWith('toServer') ? 'toServer' : 'toClient'
        if (!(SIGNATURE_TRANSPORTS[name] ?? ['tcp', 'udp']).includes(t)) return null
        if (gate?.dir !== undefined && gate.dir !== dir) return null
        const octets = mask(gate?.first?.[way])
        for (let o = 0; o < 256; o++) octets[o]! &= first[o]!
        const l = gate?.length
        const lengthOn = l !== undefined && (l.on === undefined || l.on === t)
        const g: GatedSignature = {
          entry: x.entry,
          test: x.test,
          minLength: gate?.minLength ?? 0,
          lengthAt: lengthOn ? l.at : -1,
          lengthSize: lengthOn ? l.size : 0,
          lengthLittle: lengthOn && l.little === true ? 1 : 0,
          lengthAdd: lengthOn ? l.add : 0,
          prefix,
          needle,
          needleLimit: a?.limit ?? 0,
        }
        return { g, octets, portGated: gate?.ports !== undefined ? 1 : 0 }
      })
    })
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

/** Bits of DnsAnswerCache's IPv4 filter (2^16: 8 kB, cheap to keep in the cache beside the flow state). */
const FILTER_BITS = 16

/** The filter bit of IPv4 address `v` (a multiplicative hash: spreads addresses of one subnet). */
function filterBit(v: number): number {
  return Math.imul(v, 0x9e3779b1) >>> (32 - FILTER_BITS)
}

/**
 * Server addresses named by DNS answers (address text → catalogue entry), most recent kept, bounded: the
 * oldest entry leaves when `capacity` is reached. IPv4 addresses are kept as numbers, so a flow's address
 * is looked up without formatting it.
 *
 * Most flows' servers were never named by a DNS answer: a filter with one bit per hash of the IPv4 keys
 * answers most lookups without the map (a clear bit: not there), and a count of the text keys (IPv6 and
 * anything else) tells when formatting a flow's IPv6 address could find anything. Bits of keys that left
 * stay set until the filter is rebuilt from the map, once as many keys have left as it holds.
 */
export class DnsAnswerCache {
  private readonly map = new Map<number | string, number>()
  private readonly filter = new Uint32Array((1 << FILTER_BITS) >>> 5)
  /** IPv4 keys that left the map since the filter was last rebuilt. */
  private stale = 0
  /** Keys in the map that are text (not IPv4 numbers). */
  private texts = 0
  constructor(private readonly capacity = 65536) {}

  set(address: string, entry: number): void {
    const key = addressKey(address)
    if (this.map.has(key)) this.map.delete(key)
    else {
      if (this.map.size >= this.capacity) {
        const oldest = this.map.keys().next().value
        if (oldest !== undefined) {
          this.map.delete(oldest)
          this.left(oldest)
        }
      }
      if (typeof key === 'number') this.mark(key)
      else this.texts++
    }
    this.map.set(key, entry)
  }

  get(address: string): number {
    return this.map.get(addressKey(address)) ?? NO_APP
  }

  /** Lookup by an IPv4 address as a 32-bit number. */
  getIpv4(address: number): number {
    const h = filterBit(address)
    if ((this.filter[h >>> 5]! & (1 << (h & 31))) === 0) return NO_APP
    return this.map.get(address | 0) ?? NO_APP
  }

  /** False when no key is text: no IPv6 address (nor other text) can be found. */
  get holdsText(): boolean {
    return this.texts !== 0
  }

  get size(): number {
    return this.map.size
  }

  private left(key: number | string): void {
    if (typeof key !== 'number') {
      this.texts--
      return
    }
    if (++this.stale < Math.max(1024, this.map.size)) return
    this.filter.fill(0)
    for (const k of this.map.keys()) if (typeof k === 'number') this.mark(k)
    this.stale = 0
  }

  /** Sets the filter bit of IPv4 key `v`. */
  private mark(v: number): void {
    const h = filterBit(v)
    this.filter[h >>> 5]! |= 1 << (h & 31)
  }
}
