/**
 * The offline probe: capture files → metering pipeline (decode → flow cache → records) → IPFIX exporter.
 *
 * All timing (timeouts, export times, template refresh) follows packet time, so the same files always
 * give the same records.
 */
import { EndReason } from '../flow/feature.js'
import { DEFAULT_CACHE_OPTIONS } from '../flow/flow-cache.js'
import type { L7Summary } from '../flow/fields/l7-transactions.js'
import { IpfixExporter } from '../ipfix/exporter.js'
import type { Transport } from '../ipfix/transport.js'
import type { NetflowReport } from '../ipfix/transport-netflow.js'
import type { Destination } from './destinations.js'
import { openExport, transportReports } from './export-setup.js'
import { MeteringPipeline } from './pipeline.js'

export { openCaptures } from './export-setup.js'

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
  /** Per L7 field group (`dns`, `http`, `tls`) when selected: flows claimed, transactions and anomalies. */
  l7?: Record<string, L7Summary>
  /** Per NetFlow v9/v5 destination: what the format could not carry (see transport-netflow.ts). */
  netflow?: Record<string, NetflowReport>
  /** Transports that had errors or dropped messages (e.g. a TLS collector that failed verification). */
  transportProblems?: Record<string, { errors: number; dropped: number; lastError?: string }>
  seconds: number
}

/** Run the probe over capture files to the end, flushing every flow. */
export async function runProbe(opts: ProbeOptions): Promise<ProbeSummary> {
  const started = process.hrtime.bigint()
  const { source, transports, exporterOptions, firstPacketAt } = await openExport(opts)
  const pipeline = new MeteringPipeline(
    {
      activeTimeout: opts.activeTimeout,
      inactiveTimeout: opts.inactiveTimeout,
      tcpEndLinger: opts.tcpEndLinger,
      maxFlows: opts.maxFlows,
      ...(opts.fields !== undefined ? { fields: opts.fields } : {}),
      ...(opts.onWarning !== undefined ? { onWarning: opts.onWarning } : {}),
    },
    (hooks) => new IpfixExporter({ ...exporterOptions, ...hooks }, transports),
  )
  const { exporter, cache, core, counters } = pipeline

  let lastProgress = 0
  try {
    for await (const batch of source.batches()) {
      if (batch.count > 0) firstPacketAt(batch.tsUs[0]!)
      pipeline.processBatch(batch)
      if (opts.onProgress) {
        const t = Date.now()
        if (t - lastProgress >= 200) {
          lastProgress = t
          opts.onProgress(source.progress.done, source.progress.total)
        }
      }
      // Let sockets drain between batches.
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    pipeline.flush(EndReason.ForcedEnd)
  } finally {
    await exporter.close()
    await source.close()
  }
  opts.onProgress?.(source.progress.total, source.progress.total)

  const formatErrors: Record<string, number> = {}
  for (const [k, v] of source.stats.formatErrors) formatErrors[k] = v
  const l7 = pipeline.l7Summary()
  return {
    packets: counters.packets,
    capturedBytes: source.stats.bytes,
    ipPackets: core.packets,
    ipBytes: core.octets,
    nonIpPackets: counters.nonIp,
    malformedPackets: counters.malformed,
    unsupportedLinkTypePackets: counters.unsupported,
    flows: cache.counters.flowsCreated,
    peakActiveFlows: cache.counters.peakActiveFlows,
    endReasons: pipeline.endReasons(),
    anomalies: pipeline.anomalies.toObject(),
    formatErrors,
    export: { ...exporter.stats },
    ...(l7 !== undefined ? { l7 } : {}),
    ...transportReports(transports),
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  }
}
