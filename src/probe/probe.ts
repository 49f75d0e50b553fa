/**
 * The offline probe: capture files → metering pipeline (decode → flow cache → records) → IPFIX exporter.
 *
 * All timing (timeouts, export times, template refresh) follows packet time, so the same files always
 * give the same records.
 */
import { isIP } from 'node:net'
import { openCaptureFiles } from '../capture/file-source.js'
import type { CaptureSource } from '../capture/batch.js'
import { EndReason } from '../flow/feature.js'
import { DEFAULT_CACHE_OPTIONS } from '../flow/flow-cache.js'
import type { L7Summary } from '../flow/fields/l7-transactions.js'
import { describeElement } from '../ipfix/enterprise/flowtel.js'
import { IpfixExporter } from '../ipfix/exporter.js'
import type { Transport } from '../ipfix/transport.js'
import { UdpTransport } from '../ipfix/transport-udp.js'
import { TcpTransport } from '../ipfix/transport-tcp.js'
import { NetflowTransport, type NetflowReport } from '../ipfix/transport-netflow.js'
import { createTransports, type Destination } from './destinations.js'
import { MeteringPipeline } from './pipeline.js'

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

/** Open the captures, turning a missing path into a short message that names it. */
export async function openCaptures(paths: string[]): Promise<CaptureSource> {
  try {
    return await openCaptureFiles(paths)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code === 'ENOENT' && typeof e.path === 'string')
      throw new Error(`${e.path}: no such file or folder`)
    if (e.code === 'EACCES' && typeof e.path === 'string') throw new Error(`${e.path}: permission denied`)
    throw err
  }
}

/** Run the probe over capture files to the end, flushing every flow. */
export async function runProbe(opts: ProbeOptions): Promise<ProbeSummary> {
  const started = process.hrtime.bigint()
  /** Packet time of the first packet: the exporter's start, from which NetFlow counts sysUpTime. */
  let firstUs = 0
  const transportsWanted = opts.destinations.length + (opts.extraTransports?.length ?? 0)
  if (transportsWanted === 0) throw new Error('no destination: give a collector or a JSON output')
  // Open the input first, so a bad path leaves no empty output file behind.
  const source: CaptureSource = await openCaptures(opts.reads)
  const transports = [
    ...createTransports(opts.destinations, {
      mtu: opts.mtu,
      templateRefreshSeconds: opts.templateRefreshSeconds,
      templateRefreshMessages: opts.templateRefreshMessages,
      startTimeMs: () => (firstUs > 0 ? firstUs / 1000 : undefined),
    }),
    ...(opts.extraTransports ?? []),
  ]
  try {
    await Promise.all(transports.map((t) => t.open()))
  } catch (err) {
    await source.close()
    throw err
  }
  // The UDP budget (RFC 7011 §10.3.3) depends on the address family actually used: an IPv6 literal, or a
  // host name that resolved to an IPv6 address when the transport opened.
  const ipv6Transport =
    opts.destinations.some((d) => d.kind !== 'json' && d.host.includes(':')) ||
    transports.some((t) => t instanceof UdpTransport && isIP(t.remoteAddress) === 6)
  const pipeline = new MeteringPipeline(
    {
      activeTimeout: opts.activeTimeout,
      inactiveTimeout: opts.inactiveTimeout,
      tcpEndLinger: opts.tcpEndLinger,
      maxFlows: opts.maxFlows,
      ...(opts.fields !== undefined ? { fields: opts.fields } : {}),
      ...(opts.onWarning !== undefined ? { onWarning: opts.onWarning } : {}),
    },
    (hooks) =>
      new IpfixExporter(
        {
          observationDomainId: opts.observationDomainId,
          maxMessageSize: opts.mtu - (ipv6Transport ? 48 : 28),
          templateRefreshSeconds: opts.templateRefreshSeconds,
          templateRefreshMessages: opts.templateRefreshMessages,
          statsIntervalSeconds: opts.statsIntervalSeconds,
          // RFC 5610: announce the Flowmon/Flowtel elements the templates use (none with the default groups).
          rfc5610: true,
          describeElement,
          ...hooks,
        },
        transports,
      ),
  )
  const { exporter, cache, core, counters } = pipeline

  let lastProgress = 0
  try {
    for await (const batch of source.batches()) {
      if (firstUs === 0 && batch.count > 0) firstUs = batch.tsUs[0]!
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
    ...netflowReports(transports),
    ...transportProblems(transports),
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  }
}

function netflowReports(transports: readonly Transport[]): { netflow?: Record<string, NetflowReport> } {
  const nf = transports.filter((t): t is NetflowTransport => t instanceof NetflowTransport)
  return nf.length === 0 ? {} : { netflow: Object.fromEntries(nf.map((t) => [t.name, t.report()])) }
}

type TransportProblems = NonNullable<ProbeSummary['transportProblems']>

function transportProblems(transports: readonly Transport[]): { transportProblems?: TransportProblems } {
  const bad = transports.filter((t) => t.stats.errors > 0 || t.stats.dropped > 0)
  if (bad.length === 0) return {}
  return {
    transportProblems: Object.fromEntries(
      bad.map((t) => {
        const lastError = t instanceof TcpTransport ? t.lastError : undefined
        return [
          t.name,
          {
            errors: t.stats.errors,
            dropped: t.stats.dropped,
            ...(lastError !== undefined ? { lastError } : {}),
          },
        ]
      }),
    ),
  }
}
