/**
 * The probe's Prometheus `/metrics` (issue 5), text exposition format 0.0.4, through prom-client.
 *
 * Nothing is counted here: the packet path keeps its own plain counters, and every metric reads the current
 * ProbeStatus (metrics/status.ts) in its collect() callback at scrape time, so a scrape costs one status()
 * call and the hot path pays nothing. A private Registry is used (never prom-client's global one), so
 * several probes or tests in one process do not share or clash over metrics.
 *
 * Counters are prom-client Counters refilled in collect() (reset, then inc by the current total): they are
 * typed `counter` in the exposition and grow as long as the underlying totals grow. A label that disappears
 * (a collector removed from the settings) disappears from the output; Prometheus treats that series as ended.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import type { ProbeStatus } from './status.js'

export interface ProbeMetrics {
  readonly registry: Registry
  /** Content-Type of the exposition (text format 0.0.4). */
  readonly contentType: string
  /** One scrape: the exposition text, all metrics read from a single status() snapshot. */
  scrape(): Promise<string>
}

export interface ProbeMetricsOptions {
  /** Also export prom-client's default process metrics (CPU, memory, event loop, GC). Default true. */
  processMetrics?: boolean
}

/** Metric names; docs/api.md lists them with their meaning. */
export const METRIC_NAMES = [
  'flowtel_packets_total',
  'flowtel_bytes_total',
  'flowtel_kernel_drops_total',
  'flowtel_interface_drops_total',
  'flowtel_flows_active',
  'flowtel_flows_created_total',
  'flowtel_flows_exported_total',
  'flowtel_anomalies_total',
  'flowtel_ip_reassembly_datagrams_total',
  'flowtel_l7_anomalies_total',
  'flowtel_export_messages_total',
  'flowtel_export_bytes_total',
  'flowtel_export_errors_total',
  'flowtel_template_sends_total',
  'flowtel_records_exported_total',
  'flowtel_monitored_bytes_total',
  'flowtel_telemetry_bytes_total',
  'flowtel_monitored_to_telemetry_ratio',
  'flowtel_uptime_seconds',
  'flowtel_settings_generation',
] as const

/** A finite non-negative number for a counter (a bad figure from a provider must not break the scrape). */
const nonNegative = (v: number): number => (Number.isFinite(v) && v > 0 ? v : 0)

/** Builds the registry over a status provider, called once per scrape. */
export function createProbeMetrics(status: () => ProbeStatus, opts: ProbeMetricsOptions = {}): ProbeMetrics {
  const registry = new Registry()
  let snapshot: ProbeStatus | undefined
  const current = (): ProbeStatus => snapshot ?? status()

  /** A counter with labels, refilled from `rows` at each scrape. */
  const labelled = <L extends string>(
    name: string,
    help: string,
    label: L,
    rows: (s: ProbeStatus) => Iterable<readonly [string, number]>,
  ): void => {
    new Counter<L>({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset()
        for (const [value, n] of rows(current()))
          this.inc({ [label]: value } as Record<L, string>, nonNegative(n))
      },
    })
  }
  /** A counter without labels. */
  const single = (name: string, help: string, value: (s: ProbeStatus) => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset()
        this.inc(nonNegative(value(current())))
      },
    })
  }
  const gauge = (name: string, help: string, value: (s: ProbeStatus) => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value(current()))
      },
    })
  }

  const perInterface = (f: (i: ProbeStatus['interfaces'][number]) => number) => (s: ProbeStatus) =>
    s.interfaces.map((i) => [i.name, f(i)] as const)
  const perCollector = (f: (c: ProbeStatus['collectors'][number]) => number) => (s: ProbeStatus) =>
    s.collectors.map((c) => [c.collector, f(c)] as const)

  labelled(
    'flowtel_packets_total',
    'Packets captured, per interface.',
    'interface',
    perInterface((i) => i.packets),
  )
  labelled(
    'flowtel_bytes_total',
    'Bytes captured, per interface.',
    'interface',
    perInterface((i) => i.bytes),
  )
  labelled(
    'flowtel_kernel_drops_total',
    'Packets the kernel dropped for lack of capture buffer (libpcap ps_drop), per interface.',
    'interface',
    perInterface((i) => i.kernelDrops),
  )
  labelled(
    'flowtel_interface_drops_total',
    'Packets the interface or driver dropped (libpcap ps_ifdrop), per interface.',
    'interface',
    perInterface((i) => i.ifDrops),
  )
  gauge('flowtel_flows_active', 'Flows in the flow cache now.', (s) => s.flows.active)
  single('flowtel_flows_created_total', 'Flows created.', (s) => s.flows.created)
  labelled('flowtel_flows_exported_total', 'Flow records exported, by flow end reason.', 'end_reason', (s) =>
    Object.entries(s.flows.exportedByEndReason),
  )
  labelled('flowtel_anomalies_total', 'Decoder and flow meter anomalies, by name.', 'name', (s) =>
    Object.entries(s.anomalies),
  )
  labelled(
    'flowtel_ip_reassembly_datagrams_total',
    'IP datagrams of fragments, rebuilt for the L7 groups or given up, by outcome.',
    'outcome',
    (s) => [
      ['reassembled', s.ipReassembly.reassembled],
      ['timed_out', s.ipReassembly.timedOut],
      ['evicted', s.ipReassembly.evicted],
      ['dropped', s.ipReassembly.dropped],
    ],
  )
  // Two labels: the status's `<group>.<name>` split at the first dot (group names have none).
  new Counter<'group' | 'name'>({
    name: 'flowtel_l7_anomalies_total',
    help: 'Anomalies of the L7 groups (their parsers and their records), by group and name.',
    labelNames: ['group', 'name'],
    registers: [registry],
    collect() {
      this.reset()
      for (const [key, n] of Object.entries(current().l7Anomalies)) {
        const dot = key.indexOf('.')
        this.inc({ group: key.slice(0, Math.max(0, dot)), name: key.slice(dot + 1) }, nonNegative(n))
      }
    },
  })
  labelled(
    'flowtel_export_messages_total',
    'Export messages sent, per collector.',
    'collector',
    perCollector((c) => c.messages),
  )
  labelled(
    'flowtel_export_bytes_total',
    'Octets of export messages sent, per collector.',
    'collector',
    perCollector((c) => c.bytes),
  )
  labelled(
    'flowtel_export_errors_total',
    'Export send errors, per collector.',
    'collector',
    perCollector((c) => c.errors),
  )
  labelled(
    'flowtel_template_sends_total',
    'Template messages sent, per collector.',
    'collector',
    perCollector((c) => c.templateSends),
  )
  single('flowtel_records_exported_total', 'Data records exported.', (s) => s.recordsExported)
  single('flowtel_monitored_bytes_total', 'Bytes of monitored traffic.', (s) => s.volume.monitoredBytes)
  single(
    'flowtel_telemetry_bytes_total',
    'Bytes of telemetry (export messages) sent to all collectors.',
    (s) => s.volume.telemetryBytes,
  )
  gauge(
    'flowtel_monitored_to_telemetry_ratio',
    'Monitored bytes per telemetry byte since start (0 until something was exported).',
    (s) => s.volume.ratio ?? 0,
  )
  gauge('flowtel_uptime_seconds', 'Seconds since the probe service started.', (s) => s.uptimeSeconds)
  gauge('flowtel_settings_generation', 'Settings changes applied since start.', (s) => s.settingsGeneration)

  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry })

  return {
    registry,
    contentType: registry.contentType,
    async scrape(): Promise<string> {
      snapshot = status()
      try {
        return await registry.metrics()
      } finally {
        snapshot = undefined
      }
    },
  }
}
