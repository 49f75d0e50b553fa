/**
 * What the offline probe (./probe.ts) is asked to do and what it reports: its options, their defaults and
 * the end-of-run summary. A file of its own so that the export set-up (./export-setup.ts) and the CLI can
 * name them without importing the run loop.
 */
import type { IpReassemblyStats } from '../decode/ip-reassembly.js'
import { DEFAULT_CACHE_OPTIONS } from '../flow/flow-cache.js'
import type { L7Summary } from '../flow/fields/l7-transactions.js'
import type { Transport } from '../ipfix/transport.js'
import type { NetflowReport } from '../ipfix/transport-netflow.js'
import type { Destination } from './destinations.js'

export interface ProbeOptions {
  /** Capture files or folders, read in order as one stream. */
  reads: string[]
  /** Where records go: collectors and/or a JSON lines file. */
  destinations: Destination[]
  activeTimeout: number
  inactiveTimeout: number
  tcpEndLinger: number
  maxFlows: number
  observationDomainId: number
  /** Link MTU the export datagrams must fit (IPv4/UDP headers are taken off). */
  mtu: number
  templateRefreshSeconds: number
  templateRefreshMessages: number
  statsIntervalSeconds: number
  /** Field groups (`--fields`), undefined for the default set. */
  fields?: string[]
  /** Extra transports supplied by the caller (tests, the demo's in-process collector). */
  extraTransports?: Transport[]
  /** Called about every 200 ms with bytes read and total, for a progress bar. */
  onProgress?: (done: number, total: number) => void
  /** Called once per unsupported link type. */
  onWarning?: (message: string) => void
}

export const DEFAULT_PROBE_OPTIONS = {
  activeTimeout: DEFAULT_CACHE_OPTIONS.activeTimeout,
  inactiveTimeout: DEFAULT_CACHE_OPTIONS.inactiveTimeout,
  tcpEndLinger: DEFAULT_CACHE_OPTIONS.tcpEndLinger,
  maxFlows: DEFAULT_CACHE_OPTIONS.maxFlows,
  observationDomainId: 0,
  mtu: 1500,
  templateRefreshSeconds: 600,
  templateRefreshMessages: 0,
  statsIntervalSeconds: 60,
} as const

export interface ProbeSummary {
  packets: number
  /** Captured bytes read from the files. */
  capturedBytes: number
  /** IP packets accounted to flows, and their IP-level bytes. */
  ipPackets: number
  ipBytes: number
  nonIpPackets: number
  malformedPackets: number
  unsupportedLinkTypePackets: number
  flows: number
  peakActiveFlows: number
  endReasons: Record<string, number>
  anomalies: Record<string, number>
  formatErrors: Record<string, number>
  export: { messages: number; records: number; octets: number; templateSends: number; droppedRecords: number }
  /** IP datagrams rebuilt for the L7 groups, and those given up, when an L7 group is on. */
  ipReassembly?: IpReassemblyStats
  /** Per L7 field group (`dns`, `http`, `tls`) when selected: flows claimed, transactions and anomalies. */
  l7?: Record<string, L7Summary>
  /** Per NetFlow v9/v5 destination: what the format could not carry (see transport-netflow.ts). */
  netflow?: Record<string, NetflowReport>
  /** Transports that had errors or dropped messages (e.g. a TLS collector that failed verification). */
  transportProblems?: Record<string, { errors: number; dropped: number; lastError?: string }>
  seconds: number
}
