/**
 * The export side of the offline probe, shared by the single-threaded run (probe.ts) and the worker run
 * (workers/probe-workers.ts), so both frame and time their export the same way: the destination check, the
 * capture input opened first (a bad path leaves no empty output file behind), one transport per destination
 * with the NetFlow context (MTU budget, template refresh, uptime base = packet time of the first packet), the
 * UDP message budget (RFC 7011 §10.3.3: MTU less the IPv4 or IPv6 and UDP headers) and the IpfixExporter
 * options, and the per-transport reports of the probe summary.
 *
 * Export time: offline, the exporter's clock is packet time (template refresh, statistics interval, message
 * age and the Export Time of RFC 7011 §3.1 all follow the capture), so a run is reproducible and its
 * messages carry times consistent with their records, as if exported live when the capture was taken.
 * Before the first packet is metered (the templates, the RFC 5610 and RFC 6759 options records set up at
 * the start) the clock reads the first packet's time, read ahead here (`startUs`), not 0 (1970); a capture
 * without packets is exported at the wall clock. (ipfixprobe and YAF stamp every message with the wall
 * clock, even from a file; here the packet time keeps the header in step with the packet-time schedules.)
 */
import { isIP } from 'node:net'
import type { CaptureSource, PacketBatch } from '../capture/batch.js'
import { describeElement } from '../ipfix/enterprise/flowtel.js'
import type { ExporterOptions } from '../ipfix/exporter.js'
import type { Transport } from '../ipfix/transport.js'
import { NetflowTransport, type NetflowReport } from '../ipfix/transport-netflow.js'
import { TcpTransport } from '../ipfix/transport-tcp.js'
import { UdpTransport } from '../ipfix/transport-udp.js'
import { openCaptureFiles } from '../capture/file-source.js'
import { createTransports } from './destinations.js'
import type { ProbeOptions, ProbeSummary } from './probe-options.js'

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

/** What openExport opened: the input, the open transports and the exporter options that fit them. */
export interface ProbeExport {
  source: CaptureSource
  transports: Transport[]
  /** The IpfixExporter options but the metering hooks (time, metering statistics). */
  exporterOptions: Omit<ExporterOptions, 'now' | 'meteringStats'>
  /** Tell the export the packet time (µs) of the first packet: NetFlow counts sysUpTime from it. */
  firstPacketAt: (tsUs: number) => void
  /** The capture's batches (read these, not source.batches(): the first one was read ahead). */
  batches: AsyncIterable<PacketBatch>
  /**
   * What the exporter's clock reads (µs) until packet time passes it: the first packet's time, or the wall
   * clock when the capture has no packet (or the first one is stamped 0).
   */
  startUs: number
}

/** Reads up to the first batch with packets: its first packet's time, and every batch from that one on. */
async function readAhead(
  source: CaptureSource,
): Promise<{ firstUs: number; batches: AsyncIterable<PacketBatch> }> {
  const it = source.batches()[Symbol.asyncIterator]()
  let head = await it.next()
  while (head.done !== true && head.value.count === 0) head = await it.next()
  const first = head
  const batches = async function* (): AsyncGenerator<PacketBatch> {
    try {
      if (first.done === true) return
      yield first.value
      for (;;) {
        const n = await it.next()
        if (n.done === true) return
        yield n.value
      }
    } finally {
      await it.return?.()
    }
  }
  return { firstUs: first.done === true ? 0 : (first.value.tsUs[0] ?? 0), batches: batches() }
}

/** Longest wait for one output to drain; past it the run goes on and that output counts what it drops. */
const DRAIN_WAIT_MS = 30_000

/**
 * Lets sockets drain, then waits while an output asks the producer to (a JSON or IPFIX file, a TCP
 * collector that reads slower than we write): offline, nothing is dropped for want of buffer space. A
 * collector that stops reading holds the run up for at most DRAIN_WAIT_MS.
 */
export async function outputsDrained(transports: readonly Transport[]): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve))
  for (const t of transports) {
    const w = t.whenWritable?.()
    if (w === undefined) continue
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), DRAIN_WAIT_MS)
    })
    let next: Promise<void> | undefined = w
    while (next !== undefined) {
      if (await Promise.race([next.then(() => false), late])) break
      next = t.whenWritable?.()
    }
    clearTimeout(timer)
  }
}

/** Open the capture input and every transport of `opts`; on a failure nothing is left open. */
export async function openExport(opts: ProbeOptions): Promise<ProbeExport> {
  const transportsWanted = opts.destinations.length + (opts.extraTransports?.length ?? 0)
  if (transportsWanted === 0) throw new Error('no destination: give a collector or a JSON output')
  /** Packet time of the first packet: the exporter's start, from which NetFlow counts sysUpTime. */
  let firstUs = 0
  // Open the input first, so a bad path leaves no empty output file behind.
  const source = await openCaptures(opts.reads)
  const transports = [
    ...createTransports(opts.destinations, {
      mtu: opts.mtu,
      templateRefreshSeconds: opts.templateRefreshSeconds,
      templateRefreshMessages: opts.templateRefreshMessages,
      startTimeMs: () => (firstUs > 0 ? firstUs / 1000 : undefined),
      producerWaits: true,
    }),
    ...(opts.extraTransports ?? []),
  ]
  let ahead: Awaited<ReturnType<typeof readAhead>>
  try {
    await Promise.all(transports.map((t) => t.open()))
    ahead = await readAhead(source)
  } catch (err) {
    await Promise.all(transports.map((t) => t.close().catch(() => undefined)))
    await source.close()
    throw err
  }
  // The UDP budget depends on the address family actually used: an IPv6 literal, or a host name that
  // resolved to an IPv6 address when the transport opened.
  const ipv6Transport =
    opts.destinations.some((d) => d.kind !== 'json' && d.host.includes(':')) ||
    transports.some((t) => t instanceof UdpTransport && isIP(t.remoteAddress) === 6)
  return {
    source,
    transports,
    exporterOptions: {
      observationDomainId: opts.observationDomainId,
      maxMessageSize: opts.mtu - (ipv6Transport ? 48 : 28),
      templateRefreshSeconds: opts.templateRefreshSeconds,
      templateRefreshMessages: opts.templateRefreshMessages,
      statsIntervalSeconds: opts.statsIntervalSeconds,
      // RFC 5610: announce the Flowmon/Flowtel elements the templates use (none with the default groups).
      rfc5610: true,
      describeElement,
    },
    firstPacketAt: (tsUs) => {
      if (firstUs === 0 && tsUs > 0) firstUs = tsUs
    },
    batches: ahead.batches,
    startUs: ahead.firstUs > 0 ? ahead.firstUs : Date.now() * 1000,
  }
}

type TransportProblems = NonNullable<ProbeSummary['transportProblems']>

/** The summary's per-transport parts: NetFlow conversion reports, transports with errors or drops. */
export function transportReports(transports: readonly Transport[]): {
  netflow?: Record<string, NetflowReport>
  transportProblems?: TransportProblems
} {
  const out: { netflow?: Record<string, NetflowReport>; transportProblems?: TransportProblems } = {}
  const nf = transports.filter((t): t is NetflowTransport => t instanceof NetflowTransport)
  if (nf.length > 0) out.netflow = Object.fromEntries(nf.map((t) => [t.name, t.report()]))
  const bad = transports.filter((t) => t.stats.errors > 0 || t.stats.dropped > 0)
  if (bad.length > 0)
    out.transportProblems = Object.fromEntries(
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
    )
  return out
}
