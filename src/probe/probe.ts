/**
 * The offline probe pipeline: capture files → packet decoder → flow cache → IPFIX exporter.
 *
 * Work goes batch by batch; per packet it is one decode into a reused PacketInfo and one cache update.
 * All timing (timeouts, export times, template refresh) follows packet time, so the same files always
 * give the same records. Expiry runs whenever packet time advances (so a timeout takes effect at exactly
 * its due packet time); the exporter's tick (refresh, statistics, message age) whenever it crosses the
 * next whole second.
 */
import { isIP } from 'node:net'
import { openCaptureFiles } from '../capture/file-source.js'
import type { CaptureSource } from '../capture/batch.js'
import { Anomalies } from '../decode/anomalies.js'
import { PacketDecoder } from '../decode/packet-decoder.js'
import { DecodeResult, PacketInfo } from '../decode/packet.js'
import { EndReason, END_REASON_NAMES, type FlowView } from '../flow/feature.js'
import { CoreFields } from '../flow/fields/core.js'
import { ArpFields, ETHERTYPE_ARP } from '../flow/fields/arp.js'
import { createFieldGroups } from '../flow/fields/index.js'
import { DEFAULT_CACHE_OPTIONS, FlowCache } from '../flow/flow-cache.js'
import { FlowRecords } from '../flow/flow-records.js'
import { isTransactionGroup, type L7Summary } from '../flow/fields/l7-transactions.js'
import { describeElement } from '../ipfix/enterprise/flowtel.js'
import { IpfixExporter } from '../ipfix/exporter.js'
import type { Transport } from '../ipfix/transport.js'
import { UdpTransport } from '../ipfix/transport-udp.js'
import { TcpTransport } from '../ipfix/transport-tcp.js'
import { NetflowTransport, type NetflowReport } from '../ipfix/transport-netflow.js'
import { createTransports, type Destination } from './destinations.js'

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
async function openCaptures(paths: string[]): Promise<CaptureSource> {
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
  const anomalies = new Anomalies()
  const decoder = new PacketDecoder(anomalies)
  const groups = createFieldGroups(opts.fields)
  // Flow features go to the cache; the `arp` group records ARP packets on its own (see fields/arp.ts).
  const features = groups.filter((f) => !(f instanceof ArpFields))
  const arpGroup = groups.find((f): f is ArpFields => f instanceof ArpFields)
  const core = features.find((f): f is CoreFields => f instanceof CoreFields)
  if (!core) throw new Error('the core field group is missing')

  let nowUs = 0
  /** Packet time of the first packet: the exporter's start, from which NetFlow counts sysUpTime. */
  let firstUs = 0
  const transportsWanted = opts.destinations.length + (opts.extraTransports?.length ?? 0)
  if (transportsWanted === 0) throw new Error('no destination: give a collector or a JSON output')
  // Open the input first, so a bad path leaves no empty output file behind.
  const source: CaptureSource = await openCaptures(opts.reads)
  const transports = [...(opts.extraTransports ?? [])]
  try {
    // (A TLS destination reads its PEM files here: a bad path must not leave the capture open.)
    transports.unshift(
      ...createTransports(opts.destinations, {
        mtu: opts.mtu,
        templateRefreshSeconds: opts.templateRefreshSeconds,
        templateRefreshMessages: opts.templateRefreshMessages,
        startTimeMs: () => (firstUs > 0 ? firstUs / 1000 : undefined),
      }),
    )
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
  const exporter = new IpfixExporter(
    {
      observationDomainId: opts.observationDomainId,
      maxMessageSize: opts.mtu - (ipv6Transport ? 48 : 28),
      templateRefreshSeconds: opts.templateRefreshSeconds,
      templateRefreshMessages: opts.templateRefreshMessages,
      statsIntervalSeconds: opts.statsIntervalSeconds,
      // RFC 5610: announce the Flowmon/Flowtel elements the templates use (none with the default groups).
      rfc5610: true,
      describeElement,
      now: () => nowUs / 1e6,
      meteringStats: () => ({
        ignoredPackets: malformed + unsupported,
        ignoredOctets: ignoredOctets,
        firstIgnoredMs: firstIgnoredUs / 1000,
        lastIgnoredMs: lastIgnoredUs / 1000,
      }),
    },
    transports,
  )
  const records = new FlowRecords(features, exporter)
  const arp = arpGroup?.attach(exporter)
  // L7 groups write one record per transaction (see fields/l7-transactions.ts): the open ones of a flow
  // leave just before its last record, so the record's transaction count includes them.
  const txGroups = features.filter(isTransactionGroup)
  for (const g of txGroups) g.attach(exporter)
  const onExpire =
    txGroups.length === 0
      ? records.write
      : (id: number, flow: FlowView): void => {
          for (const g of txGroups) g.beforeExport(id, flow)
          records.write(id, flow)
        }
  const cache = new FlowCache(
    {
      activeTimeout: opts.activeTimeout,
      inactiveTimeout: opts.inactiveTimeout,
      tcpEndLinger: opts.tcpEndLinger,
      maxFlows: opts.maxFlows,
    },
    features,
    onExpire,
  )

  let packets = 0
  let nonIp = 0
  let malformed = 0
  let unsupported = 0
  let ignoredOctets = 0
  let firstIgnoredUs = 0
  let lastIgnoredUs = 0
  const warnedLinkTypes = new Set<number>()
  let nextExpiryUs = 0
  let lastProgress = 0

  try {
    const pkt = new PacketInfo()
    for await (const batch of source.batches()) {
      const { buf, view, offset, caplen, origlen, tsUs, linkType, ifIndex } = batch
      const n = batch.count
      for (let i = 0; i < n; i++) {
        const ts = tsUs[i]!
        if (ts > nowUs) {
          if (nowUs === 0) firstUs = ts
          nowUs = ts
          // Timeouts are exact in packet time: a flow leaves before the first packet at or after its due
          // time is counted (a few comparisons when nothing is due). The exporter ticks once a second.
          cache.expireDue(nowUs)
          if (nowUs >= nextExpiryUs) {
            exporter.tick()
            nextExpiryUs = (Math.floor(nowUs / 1e6) + 1) * 1e6
          }
        }
        packets++
        const r = decoder.decode(buf, view, offset[i]!, caplen[i]!, origlen[i]!, linkType[i]!, ts, pkt)
        if (r === DecodeResult.Ip) {
          cache.update(pkt, ts, ifIndex[i]!)
        } else if (r === DecodeResult.NonIp) {
          nonIp++
          if (arp !== undefined && pkt.etherType === ETHERTYPE_ARP)
            arp.record(pkt, offset[i]! + caplen[i]!, ts, ifIndex[i]!)
        } else {
          if (r === DecodeResult.Malformed) malformed++
          else {
            unsupported++
            const lt = linkType[i]!
            if (!warnedLinkTypes.has(lt)) {
              warnedLinkTypes.add(lt)
              opts.onWarning?.(`link type ${lt} is not supported: its packets are counted and skipped`)
            }
          }
          ignoredOctets += origlen[i]!
          if (firstIgnoredUs === 0) firstIgnoredUs = ts
          lastIgnoredUs = ts
        }
      }
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
    cache.flushAll(EndReason.ForcedEnd)
    for (const g of txGroups) g.finishAll()
  } finally {
    await exporter.close()
    await source.close()
  }
  opts.onProgress?.(source.progress.total, source.progress.total)

  const endReasons: Record<string, number> = {}
  cache.counters.exportedByReason.forEach((c, reason) => {
    if (c > 0) endReasons[END_REASON_NAMES[reason] ?? String(reason)] = c
  })
  const formatErrors: Record<string, number> = {}
  for (const [k, v] of source.stats.formatErrors) formatErrors[k] = v
  return {
    packets,
    capturedBytes: source.stats.bytes,
    ipPackets: core.packets,
    ipBytes: core.octets,
    nonIpPackets: nonIp,
    malformedPackets: malformed,
    unsupportedLinkTypePackets: unsupported,
    flows: cache.counters.flowsCreated,
    peakActiveFlows: cache.counters.peakActiveFlows,
    endReasons,
    anomalies: anomalies.toObject(),
    formatErrors,
    export: { ...exporter.stats },
    ...(txGroups.length > 0 ? { l7: Object.fromEntries(txGroups.map((g) => [g.name, g.summary()])) } : {}),
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
