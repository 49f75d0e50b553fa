/**
 * The probe's status: every figure issue 5 asks the probe to show about itself, in one structured value.
 *
 * `GET /api/v1/telemetry/status` returns it as JSON and `/metrics` (metrics/prometheus.ts) reads the same
 * value at scrape time, so the two never disagree. Counters are totals since the probe service started and
 * only grow, except where a collector or interface is removed (its entry disappears).
 */
import { emptyIpReassemblyStats, type IpReassemblyStats } from '../decode/ip-reassembly.js'
import type { TransportStats } from '../ipfix/transport.js'

/** One monitored interface (live capture). */
export interface InterfaceStatus {
  /** OS interface name, e.g. `eth0`. */
  name: string
  /** OS interface index (the exported ingressInterface), 0 when unknown. */
  ifIndex: number
  /** Packets and captured bytes that reached the probe from this interface. */
  packets: number
  bytes: number
  /** Packets the kernel dropped because the capture buffer was full (libpcap ps_drop). */
  kernelDrops: number
  /** Packets the interface/driver dropped (libpcap ps_ifdrop). */
  ifDrops: number
}

/** One collector the probe exports to (one transport session). */
export interface CollectorStatus {
  /** The collector address as configured, e.g. `10.0.0.9:4739`. */
  collector: string
  /** `udp`, `tcp` or `tls`. */
  transport: string
  /** Export messages and their octets handed to the transport (data and template messages). */
  messages: number
  bytes: number
  /** Send errors (socket errors, failed writes). */
  errors: number
  /** Messages dropped without being sent (not connected, queue full). */
  dropped: number
  /** Template-only messages sent to this collector (initial, refresh and after reconnects). */
  templateSends: number
}

export interface FlowStatus {
  /** Flows in the cache now. */
  active: number
  /** Flows created since start. */
  created: number
  /** Flow records exported, by flowEndReason name (`idle-timeout`, `active-timeout`, `end-of-flow`, ...). */
  exportedByEndReason: Record<string, number>
}

export interface VolumeStatus {
  /** Bytes of monitored traffic (captured packets, all interfaces). */
  monitoredBytes: number
  /** Bytes of telemetry sent (export messages, all collectors, IPFIX octets without IP/UDP headers). */
  telemetryBytes: number
  /** monitoredBytes / telemetryBytes (the seed's "250:1"), null until something was exported. */
  ratio: number | null
}

export interface ProbeStatus {
  /** Seconds since the probe service started. */
  uptimeSeconds: number
  /** Incremented each time settings are applied (0 = the settings the service started with). */
  settingsGeneration: number
  interfaces: InterfaceStatus[]
  flows: FlowStatus
  /** Anomalies counted by the decoder and flow meter, by name (see decode/anomalies.ts). */
  anomalies: Record<string, number>
  /** IP datagrams rebuilt for the L7 groups and those given up (all 0 while no L7 group is on). */
  ipReassembly: IpReassemblyStats
  /** Anomalies of the L7 groups (their parsers' and their records'), by `<group>.<name>` (tls.tls_record_list_cut). */
  l7Anomalies: Record<string, number>
  collectors: CollectorStatus[]
  /** Data records exported (flow records and options records), counted once whatever the collectors. */
  recordsExported: number
  volume: VolumeStatus
}

/** The monitored-to-telemetry ratio, null while nothing was exported (no division by zero). */
export function volumeRatio(monitoredBytes: number, telemetryBytes: number): number | null {
  return telemetryBytes > 0 ? monitoredBytes / telemetryBytes : null
}

/** A status with every figure zero: the shape a freshly started service reports. */
export function emptyProbeStatus(): ProbeStatus {
  return {
    uptimeSeconds: 0,
    settingsGeneration: 0,
    interfaces: [],
    flows: { active: 0, created: 0, exportedByEndReason: {} },
    anomalies: {},
    ipReassembly: emptyIpReassemblyStats(),
    l7Anomalies: {},
    collectors: [],
    recordsExported: 0,
    volume: { monitoredBytes: 0, telemetryBytes: 0, ratio: null },
  }
}

/**
 * A collector's figures from its transport (wrapped in a TransportTap, which counts the template messages
 * per collector).
 */
export function collectorStatusOf(
  collector: string,
  transport: string,
  t: { readonly stats: TransportStats; readonly templateSends?: number },
): CollectorStatus {
  const { messages, octets, errors, dropped } = t.stats
  return {
    collector,
    transport,
    messages,
    bytes: octets,
    errors,
    dropped,
    templateSends: t.templateSends ?? 0,
  }
}
