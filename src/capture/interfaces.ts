/**
 * The host's network interfaces (in this process's network namespace) and the seed's monitoring rule:
 * an interface can be monitored only if it has an IP address. VLAN sub-interfaces (eth0.100) are
 * interfaces of their own and follow the same rule.
 *
 * With the pcap addon built (native/pcap), names, flags and addresses come from getifaddrs() and the index
 * from if_nametoindex, all in this process's network namespace. Without it: names from /proc/net/dev,
 * addresses from os.networkInterfaces() (which leaves out interfaces that are not up and running), index
 * and flags from /sys/class/net/<name>. IPv6 link-local addresses (fe80::/10) do not count as "an
 * address": the kernel gives one to every interface that comes up.
 */
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { loadPcapAddon, type PcapAddon } from './pcap-addon.js'

export interface InterfaceAddress {
  address: string
  family: 'IPv4' | 'IPv6'
  /** Address with prefix length, e.g. 192.0.2.1/24. */
  cidr: string | null
  /** IPv6 link-local (fe80::/10): present on every interface that is up, so it does not count. */
  linkLocal: boolean
}

export interface NetInterface {
  name: string
  /** OS interface index (what IPFIX ingressInterface carries); 0 when it cannot be found. */
  ifIndex: number
  /** Administratively up (IFF_UP); null when unknown. */
  up: boolean | null
  /** /sys/class/net/<name>/operstate (up, down, unknown, lowerlayerdown, ...); null when unknown. */
  operState: string | null
  loopback: boolean
  addresses: InterfaceAddress[]
  /** For a VLAN sub-interface: its VLAN id and parent interface. */
  vlan: { id: number; parent: string } | null
  /** Whether the probe may monitor it (it has an IP address). */
  monitorable: boolean
  /** Why not, when it is not monitorable. */
  reason: string | null
}

const IFF_UP = 0x1
const IFF_LOOPBACK = 0x8

export const NO_ADDRESS_REASON = 'no IP address (the probe monitors only interfaces with an address)'

/** Every interface of this network namespace, sorted by interface index then name. */
export function listInterfaces(): NetInterface[] {
  const addon = optionalAddon()
  const found = addon !== null ? fromGetifaddrs(addon) : fromOs()
  const vlans = vlanConfig()
  const result: NetInterface[] = []
  for (const [name, { addresses, flags, scopeId }] of found) {
    const ifIndex = addon?.nameToIndex(name) || readSysNumber(name, 'ifindex') || scopeId
    const counted = addresses.some((a) => !a.linkLocal)
    result.push({
      name,
      ifIndex,
      up: flags === null ? null : (flags & IFF_UP) !== 0,
      operState: readSys(name, 'operstate'),
      loopback: flags === null ? name === 'lo' : (flags & IFF_LOOPBACK) !== 0,
      addresses,
      vlan: vlans.get(name) ?? null,
      monitorable: counted,
      reason: counted ? null : NO_ADDRESS_REASON,
    })
  }
  return result.sort((a, b) => a.ifIndex - b.ifIndex || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

interface Found {
  addresses: InterfaceAddress[]
  flags: number | null
  /** An IPv6 link-local scope id: the ifindex when nothing else gives it. */
  scopeId: number
}

function isLinkLocal6(address: string): boolean {
  return /^fe[89ab]/i.test(address)
}

function fromGetifaddrs(addon: PcapAddon): Map<string, Found> {
  const map = new Map<string, Found>()
  for (const name of procNetDevNames()) map.set(name, { addresses: [], flags: null, scopeId: 0 })
  for (const a of addon.interfaceAddresses()) {
    let entry = map.get(a.name)
    if (entry === undefined) map.set(a.name, (entry = { addresses: [], flags: null, scopeId: 0 }))
    entry.flags = a.flags
    if (a.family === 0) continue
    const family = a.family === 6 ? 'IPv6' : 'IPv4'
    const linkLocal = family === 'IPv6' && isLinkLocal6(a.address)
    if (linkLocal && a.scopeId > 0) entry.scopeId = a.scopeId
    const cidr = a.prefixLength >= 0 ? `${a.address}/${a.prefixLength}` : null
    entry.addresses.push({ address: a.address, family, cidr, linkLocal })
  }
  return map
}

function fromOs(): Map<string, Found> {
  const osIfs = os.networkInterfaces()
  const names = new Set(procNetDevNames())
  // Interfaces /proc/net/dev did not show (it is not readable): take what os.networkInterfaces() knows.
  for (const key of Object.keys(osIfs)) if (!names.has(baseName(key, names))) names.add(key)
  const map = new Map<string, Found>()
  for (const name of names) {
    const flags = readSysNumber(name, 'flags')
    map.set(name, { addresses: [], flags: flags === 0 ? null : flags, scopeId: 0 })
  }
  for (const [key, list] of Object.entries(osIfs)) {
    const entry = map.get(baseName(key, names))
    if (entry === undefined || list === undefined) continue
    for (const a of list) {
      const family = a.family === 'IPv6' ? 'IPv6' : 'IPv4'
      const linkLocal = family === 'IPv6' && isLinkLocal6(a.address)
      if (linkLocal && a.scopeid !== undefined && a.scopeid > 0) entry.scopeId = a.scopeid
      entry.addresses.push({ address: a.address, family, cidr: a.cidr, linkLocal })
    }
  }
  return map
}

/** An interface that cannot be monitored, and why. */
export interface MonitorProblem {
  name: string
  reason: string
}

export class NotMonitorableError extends Error {
  constructor(readonly problems: MonitorProblem[]) {
    super(problems.map((p) => `interface "${p.name}": ${p.reason}`).join('; '))
    this.name = 'NotMonitorableError'
  }
}

/**
 * The named interfaces, checked against the seed rule; throws a NotMonitorableError naming every interface
 * that does not exist, has no IP address or is listed twice. `available` is for tests (defaults to now).
 */
export function checkMonitorable(
  names: readonly string[],
  available: readonly NetInterface[] = listInterfaces(),
): NetInterface[] {
  const byName = new Map(available.map((i) => [i.name, i]))
  const problems: MonitorProblem[] = []
  const seen = new Set<string>()
  const found: NetInterface[] = []
  for (const name of names) {
    if (seen.has(name)) {
      problems.push({ name, reason: 'listed more than once' })
      continue
    }
    seen.add(name)
    const itf = byName.get(name)
    if (itf === undefined) problems.push({ name, reason: 'no such interface' })
    else if (!itf.monitorable) problems.push({ name, reason: itf.reason ?? NO_ADDRESS_REASON })
    else found.push(itf)
  }
  if (problems.length > 0) throw new NotMonitorableError(problems)
  return found
}

/** The OS interface index of `name` in this namespace, 0 when there is no such interface. */
export function interfaceIndex(name: string): number {
  return optionalAddon()?.nameToIndex(name) || readSysNumber(name, 'ifindex')
}

function optionalAddon(): PcapAddon | null {
  try {
    return loadPcapAddon()
  } catch {
    return null
  }
}

/** "eth0:1" (an IPv4 address label) belongs to eth0 when eth0 is an interface. */
function baseName(key: string, names: ReadonlySet<string>): string {
  const colon = key.indexOf(':')
  if (colon > 0 && !names.has(key) && names.has(key.slice(0, colon))) return key.slice(0, colon)
  return key
}

function procNetDevNames(): string[] {
  let text: string
  try {
    text = readFileSync('/proc/net/dev', 'utf8')
  } catch {
    return []
  }
  const names: string[] = []
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':')
    if (colon > 0) names.push(line.slice(0, colon).trim())
  }
  return names
}

/** /proc/net/vlan/config: "eth0.100       | 100  | eth0" per VLAN device (present once 8021q is loaded). */
function vlanConfig(): Map<string, { id: number; parent: string }> {
  try {
    return parseVlanConfig(readFileSync('/proc/net/vlan/config', 'utf8'))
  } catch {
    return new Map()
  }
}

/**
 * The 8021q module's /proc/net/vlan/config: two header lines, then `name | id | parent` per VLAN
 * sub-interface. Lines that do not parse are passed over.
 */
export function parseVlanConfig(text: string): Map<string, { id: number; parent: string }> {
  const map = new Map<string, { id: number; parent: string }>()
  for (const line of text.split('\n').slice(2)) {
    const parts = line.split('|').map((s) => s.trim())
    const [name, id, parent] = parts
    if (name && id && parent && /^\d+$/.test(id)) map.set(name, { id: Number(id), parent })
  }
  return map
}

function readSys(name: string, file: string): string | null {
  if (name.includes('/') || name === '.' || name === '..') return null
  try {
    return readFileSync(`/sys/class/net/${name}/${file}`, 'utf8').trim()
  } catch {
    return null
  }
}

function readSysNumber(name: string, file: string): number {
  const text = readSys(name, file)
  if (text === null) return 0
  const n = Number(text) // flags is "0x1003"; Number() reads hex
  return Number.isSafeInteger(n) && n >= 0 ? n : 0
}
