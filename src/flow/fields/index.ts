/**
 * The registry of field groups the operator can select with `--fields`. A new group is one file in this
 * folder plus one line here. `core` is always on; the order here is the order of fields in the template.
 */
import { registerEnterpriseElements } from '../../ipfix/enterprise/flowtel.js'
import type { FlowFeature } from '../feature.js'
import { AppFields } from './app.js'
import { ArpFields } from './arp.js'
import { CoreFields } from './core.js'
import { DhcpFields } from './dhcp.js'
import { DnsFields } from './dns.js'
import { HttpFields } from './http.js'
import { withL7Hub } from './l7-hub.js'
import { L2Fields } from './l2.js'
import { NpmFields } from './npm.js'
import { QuicFields } from './quic.js'
import { TcpExtFields } from './tcpext.js'
import { TlsFields } from './tls.js'
import { TunnelFields } from './tunnel.js'

interface GroupEntry {
  readonly create: () => FlowFeature
  readonly description: string
  /** On unless the operator names groups explicitly. */
  readonly defaultOn: boolean
}

export const FIELD_GROUPS: Readonly<Record<string, GroupEntry>> = {
  core: {
    create: () => new CoreFields(),
    description: 'L3/L4 key, counters, times, TCP flags, TTL',
    defaultOn: true,
  },
  l2: {
    create: () => new L2Fields(),
    description: 'MAC addresses, VLAN and QinQ ids, ingress interface',
    defaultOn: true,
  },
  tunnel: {
    create: () => new TunnelFields(),
    description: 'VXLAN segment (layer2SegmentId)',
    defaultOn: true,
  },
  npm: {
    create: () => new NpmFields(),
    description: 'RTT, SRT, retransmissions, out-of-order, jitter/delay',
    defaultOn: false,
  },
  tcpext: {
    create: () => new TcpExtFields(),
    description: 'SYN TTL/size, initial windows, MSS, window scale, SACK, TCP options',
    defaultOn: false,
  },
  arp: {
    create: () => new ArpFields(),
    description: 'one record per ARP packet (opcode, hardware type, sender/target MAC and IP)',
    defaultOn: false,
  },
  dns: {
    create: () => new DnsFields(),
    description: 'one record per DNS transaction (query, type, rcode, answers), UDP/TCP/mDNS/LLMNR',
    defaultOn: false,
  },
  http: {
    create: () => new HttpFields(),
    description: 'one record per HTTP/1.x transaction (method, host, target, status, user agent, ...)',
    defaultOn: false,
  },
  tls: {
    create: () => new TlsFields(),
    description: 'one record per TLS handshake (versions, SNI, ALPN, cipher suites, extensions, groups)',
    defaultOn: false,
  },
  quic: {
    create: () => new QuicFields(),
    description:
      'one record per QUIC handshake (version, connection IDs, SNI, ALPN, suites, JA4 from Initials)',
    defaultOn: false,
  },
  app: {
    create: () => new AppFields(),
    description:
      'applicationId (RFC 6759) from SNI, HTTP Host, DNS, signatures and ports; catalogue as options',
    defaultOn: false,
  },
  dhcp: {
    create: () => new DhcpFields(),
    description: 'one record per DHCPv4/DHCPv6 message (type, MAC, addresses, lease, host, fingerprint)',
    defaultOn: false,
  },
}

/**
 * Resolve a `--fields` list ('all', 'default' or group names, comma separated) into feature instances,
 * `core` first, with one shared L7 engine in front of the first L7 group (./l7-hub.ts). Throws a clear
 * error for an unknown group.
 */
export function createFieldGroups(spec: readonly string[] | undefined): FlowFeature[] {
  // Flowmon and Flowtel element names must resolve before any template is built.
  registerEnterpriseElements()
  const names = new Set(fieldGroupNames(spec))
  return withL7Hub(
    Object.entries(FIELD_GROUPS)
      .filter(([n]) => names.has(n))
      .map(([, g]) => g.create()),
  )
}

/** The group names a `--fields` list stands for (see createFieldGroups), `core` first. */
export function fieldGroupNames(spec: readonly string[] | undefined): string[] {
  const names = new Set<string>(['core'])
  const requested = spec === undefined || spec.length === 0 ? ['default'] : spec
  for (const raw of requested) {
    const name = raw.trim()
    if (name === '') continue
    if (name === 'all') Object.keys(FIELD_GROUPS).forEach((n) => names.add(n))
    else if (name === 'default') {
      for (const [n, g] of Object.entries(FIELD_GROUPS)) if (g.defaultOn) names.add(n)
    } else if (name in FIELD_GROUPS) names.add(name)
    else
      throw new Error(`unknown field group '${name}' (known: ${Object.keys(FIELD_GROUPS).join(', ')}, all)`)
  }
  return [...names]
}
