/**
 * Lookups over the application catalogue (src/appid/catalogue.ts): by server name (longest matching domain
 * suffix), by content signature or L7 parser, by responder port and by IP protocol; plus the bounded cache
 * of DNS answers that names a server address for the flows that follow the lookup (nDPI's "FPC: DNS").
 *
 * Entries are referred to by their index in CATALOGUE (a small integer kept in the flow state); the
 * exported RFC 6759 applicationId carries the entry's stable id.
 */
import { CATALOGUE, type AppEntry } from './catalogue.js'
import { SIGNATURES, type Signature } from './signatures.js'

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

export class AppCatalogue {
  readonly entries: readonly AppEntry[]
  private readonly byDomain = new Map<string, number>()
  private readonly byPort = new Map<string, number>()
  private readonly byProtocol = new Map<number, number>()
  private readonly byName = new Map<string, number>()
  /** Signatures in catalogue order, each with the entry it names. */
  readonly signatures: readonly { readonly entry: number; readonly test: Signature }[]

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
        if (!/^(tcp|udp)\/\d{1,5}$/.test(p)) throw new Error(`catalogue: ${e.name}: bad port "${p}"`)
        if (!this.byPort.has(p)) this.byPort.set(p, i)
      }
      for (const n of e.ipProtocols) this.byProtocol.set(n, i)
      if (e.signature !== '') {
        const test = SIGNATURES[e.signature]
        if (test !== undefined) sigs.push({ entry: i, test })
      }
    })
    this.signatures = sigs
  }

  /** The entry whose domain equals `host` or is its longest suffix at a label boundary; NO_APP if none. */
  byHost(host: string): number {
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
    return this.byName.get(name.toLowerCase()) ?? NO_APP
  }

  byTransportPort(protocol: number, port: number): number {
    if (protocol !== 6 && protocol !== 17) return NO_APP
    return this.byPort.get(`${protocol === 6 ? 'tcp' : 'udp'}/${port}`) ?? NO_APP
  }

  byIpProtocol(protocol: number): number {
    return this.byProtocol.get(protocol) ?? NO_APP
  }
}

/**
 * Server addresses named by DNS answers (address text → catalogue entry), most recent kept, bounded: the
 * oldest entry leaves when `capacity` is reached.
 */
export class DnsAnswerCache {
  private readonly map = new Map<string, number>()
  constructor(private readonly capacity = 65536) {}

  set(address: string, entry: number): void {
    if (this.map.has(address)) this.map.delete(address)
    else if (this.map.size >= this.capacity) {
      const oldest = this.map.keys().next().value
      if (oldest !== undefined) this.map.delete(oldest)
    }
    this.map.set(address, entry)
  }

  get(address: string): number {
    return this.map.get(address) ?? NO_APP
  }

  get size(): number {
    return this.map.size
  }
}
