/**
 * The observation domain ID a node exports under when the settings leave `observationDomainId` unset.
 * The seed notes that each node of an HA pair exports from its own physical address and so is a separate
 * exporter; a collector keys templates and sequence numbers by (exporter, observation domain) (RFC 7011
 * §3.1), so two nodes must not share one by accident. The value is derived, stable across restarts, from
 * the first of:
 *   1. `sourceAddress` when set;
 *   2. the node's primary address: the first IPv4 (else global IPv6) address of the interface holding the
 *      IPv4 default route (/proc/net/route), else of the first non-loopback interface by name;
 *   3. the host name.
 * An IPv4 address is used as its 32-bit number (10.0.0.1 → 167772161), so an operator can read it back;
 * IPv6 addresses and host names are hashed (FNV-1a, 32 bits). 0 is never derived (RFC 7011 reserves it for
 * "no specific domain"); a hash of 0 becomes 1.
 */
import { readFileSync } from 'node:fs'
import { hostname, networkInterfaces, type NetworkInterfaceInfo } from 'node:os'
import { isIP } from 'node:net'
import type { ProbeSettings } from './settings.js'

export interface DerivedDomain {
  id: number
  /** How it was chosen, for logs and `flowtel settings check`: 'configured', 'source address 10.0.0.1', ... */
  from: string
}

/** What the derivation reads from the host; injectable for tests. */
export interface HostFacts {
  hostname: () => string
  interfaces: () => NodeJS.Dict<NetworkInterfaceInfo[]>
  /** Name of the interface with the IPv4 default route, if any. */
  defaultRouteInterface: () => string | undefined
}

export const SYSTEM_HOST: HostFacts = {
  hostname,
  interfaces: networkInterfaces,
  defaultRouteInterface,
}

export function observationDomainFor(
  settings: Pick<ProbeSettings, 'observationDomainId' | 'sourceAddress'>,
  host: HostFacts = SYSTEM_HOST,
): DerivedDomain {
  if (settings.observationDomainId !== undefined)
    return { id: settings.observationDomainId, from: 'configured' }
  if (settings.sourceAddress !== '' && isIP(settings.sourceAddress) !== 0)
    return { id: domainFromAddress(settings.sourceAddress), from: `source address ${settings.sourceAddress}` }
  const primary = primaryAddress(host)
  if (primary !== undefined) return { id: domainFromAddress(primary), from: `host address ${primary}` }
  const name = host.hostname()
  return { id: nonZero(fnv1a(Buffer.from(name, 'utf8'))), from: `host name ${name}` }
}

/** IPv4: the address as a 32-bit number; IPv6: FNV-1a of its 16 bytes. */
export function domainFromAddress(addr: string): number {
  if (isIP(addr) === 4) return nonZero(addr.split('.').reduce((n, o) => n * 256 + Number(o), 0))
  return nonZero(fnv1a(ipv6Bytes(addr)))
}

function primaryAddress(host: HostFacts): string | undefined {
  const ifs = host.interfaces()
  const usable = (list: NetworkInterfaceInfo[] | undefined): string | undefined => {
    const l = (list ?? []).filter((a) => !a.internal)
    return (
      l.find((a) => a.family === 'IPv4')?.address ??
      l.find((a) => a.family === 'IPv6' && !a.address.toLowerCase().startsWith('fe80'))?.address
    )
  }
  const route = host.defaultRouteInterface()
  const viaRoute = route !== undefined ? usable(ifs[route]) : undefined
  if (viaRoute !== undefined) return viaRoute
  for (const name of Object.keys(ifs).sort()) {
    const a = usable(ifs[name])
    if (a !== undefined) return a
  }
  return undefined
}

/** The interface of the IPv4 default route from /proc/net/route (Linux), undefined elsewhere. */
function defaultRouteInterface(): string | undefined {
  try {
    for (const line of readFileSync('/proc/net/route', 'utf8').split('\n').slice(1)) {
      const [iface, dest, , , , , , mask] = line.trim().split(/\s+/)
      if (dest === '00000000' && mask === '00000000' && iface !== undefined) return iface
    }
  } catch {
    // not Linux, or /proc not mounted
  }
  return undefined
}

function ipv6Bytes(addr: string): Uint8Array {
  const a = addr.split('%')[0] ?? ''
  const [head = '', tail] = a.split('::')
  const groups = (s: string | undefined): string[] => (s === undefined || s === '' ? [] : s.split(':'))
  let h = groups(head)
  let t = groups(tail)
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two groups.
  const v4 = (g: string[]): string[] => {
    const last = g[g.length - 1]
    if (last === undefined || !last.includes('.')) return g
    const o = last.split('.').map(Number)
    return [
      ...g.slice(0, -1),
      (((o[0] ?? 0) << 8) | (o[1] ?? 0)).toString(16),
      (((o[2] ?? 0) << 8) | (o[3] ?? 0)).toString(16),
    ]
  }
  if (tail === undefined) h = v4(h)
  else t = v4(t)
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
  const out = new Uint8Array(16)
  all.slice(0, 8).forEach((g, i) => {
    const n = parseInt(g, 16) || 0
    out[i * 2] = n >> 8
    out[i * 2 + 1] = n & 0xff
  })
  return out
}

function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0
  return h >>> 0
}

function nonZero(n: number): number {
  return n === 0 ? 1 : n
}
