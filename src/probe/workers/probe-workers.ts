/**
 * The offline probe with N metering workers (`flowtel probe --read … --workers N`): capture files → the
 * dispatcher (worker-pool.ts) → N MeteringPipelines in worker threads → their records re-framed by the one
 * main-thread IpfixExporter (record-relay.ts), so collectors see one Exporting Process: one Observation
 * Domain, one Sequence Number space per transport session, one template set, one set of RFC 7011 §4
 * statistics (the metering statistics sum the workers' ignored packets).
 *
 * Results match runProbe (the single-threaded path): time is packet time and every packet of a flow is
 * metered by the same worker in capture order, so the same flows come out with the same packets, octets and
 * end reasons; only the order of the records across workers differs. Differences are possible only where a
 * timeout expiry depends on OTHER flows' packets: with packet timestamps out of order across a timeout
 * boundary, and when the flow cache is full (each worker has maxFlows / N entries, the same total).
 *
 * Summary figures are sums over the workers; peakActiveFlows is the sum of the workers' peaks (an upper
 * bound of the simultaneous total).
 */
import { addIpReassemblyStats, emptyIpReassemblyStats } from '../../decode/ip-reassembly.js'
import { fieldGroupNames } from '../../flow/fields/index.js'
import type { L7Summary } from '../../flow/fields/l7-transactions.js'
import { IpfixExporter } from '../../ipfix/exporter.js'
import { openExport, outputsDrained, transportReports } from '../export-setup.js'
import type { ProbeOptions, ProbeSummary } from '../probe.js'
import type { RingSize } from './packet-ring.js'
import { RecordMerger } from './record-relay.js'
import { WorkerPool } from './worker-pool.js'
import type { WorkerFinal } from './worker-protocol.js'

export interface WorkerProbeOptions extends ProbeOptions {
  /** Metering worker threads (1..64). */
  workers: number
  ring?: RingSize
  /** Tests only: make one worker throw (see WorkerPoolOptions.fault). */
  fault?: { worker: number; slot: number }
}

/** Adds numeric leaves of b into a (nested records such as L7 summaries). */
function addInto(a: Record<string, unknown>, b: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(b)) {
    if (typeof v === 'number') a[k] = ((a[k] as number | undefined) ?? 0) + v
    else if (v !== null && typeof v === 'object') {
      const sub = (a[k] ??= {}) as Record<string, unknown>
      addInto(sub, v as Record<string, unknown>)
    }
  }
}

function sumRecords(parts: readonly Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of parts) addInto(out, p)
  return out
}

/** Run the probe over capture files with `opts.workers` metering threads, flushing every flow. */
export async function runProbeWorkers(opts: WorkerProbeOptions): Promise<ProbeSummary> {
  const started = process.hrtime.bigint()
  // The same export set-up as the single-threaded probe: transports, MTU budget, NetFlow uptime base.
  const { source, transports, exporterOptions, firstPacketAt, batches, startUs } = await openExport(opts)

  let pool: WorkerPool | undefined
  const exporter = new IpfixExporter(
    {
      ...exporterOptions,
      // Packet time; before the first packet, the first packet's time (see export-setup.ts).
      now: () => Math.max(pool?.nowUs ?? 0, startUs) / 1e6,
      // RFC 7011 §4.2 Metering Process Reliability Statistics, summed over the workers' latest reports.
      meteringStats: () => {
        let ignoredPackets = 0
        let ignoredOctets = 0
        let first = 0
        let last = 0
        for (const c of pool?.counters() ?? []) {
          if (c === undefined) continue
          ignoredPackets += c.malformed + c.unsupported
          ignoredOctets += c.ignoredOctets
          if (c.firstIgnoredUs > 0 && (first === 0 || c.firstIgnoredUs < first)) first = c.firstIgnoredUs
          if (c.lastIgnoredUs > last) last = c.lastIgnoredUs
        }
        return { ignoredPackets, ignoredOctets, firstIgnoredMs: first / 1000, lastIgnoredMs: last / 1000 }
      },
    },
    transports,
  )
  const merger = new RecordMerger(exporter, { workers: opts.workers })
  // The application catalogue is the Exporting Process's: sent once here, not once per worker.
  if (fieldGroupNames(opts.fields).includes('app')) merger.sendCatalogue()
  let finals: WorkerFinal[] = []
  try {
    pool = new WorkerPool({
      workers: opts.workers,
      pipeline: {
        activeTimeout: opts.activeTimeout,
        inactiveTimeout: opts.inactiveTimeout,
        tcpEndLinger: opts.tcpEndLinger,
        maxFlows: Math.max(1, Math.ceil(opts.maxFlows / opts.workers)),
        ...(opts.fields !== undefined ? { fields: opts.fields } : {}),
      },
      maxRecordLength: exporter.maxRecordLength,
      ...(opts.ring !== undefined ? { ring: opts.ring } : {}),
      ...(opts.fault !== undefined ? { fault: opts.fault } : {}),
      onRecords: (worker, bytes, dns, progressUs) => merger.acceptShared(worker, bytes, dns, progressUs),
      ...(opts.onWarning !== undefined ? { onWarning: opts.onWarning } : {}),
    })
    let nextTickUs = 0
    let lastProgress = 0
    for await (const batch of batches) {
      if (batch.count > 0) firstPacketAt(batch.tsUs[0]!)
      await pool.dispatch(batch)
      // The exporter ticks (template refresh, statistics, message age) when time crosses a whole second.
      if (pool.nowUs >= nextTickUs) {
        exporter.tick()
        merger.followTemplates()
        nextTickUs = (Math.floor(pool.nowUs / 1e6) + 1) * 1e6
      }
      if (opts.onProgress) {
        const t = Date.now()
        if (t - lastProgress >= 200) {
          lastProgress = t
          opts.onProgress(source.progress.done, source.progress.total)
        }
      }
      // Let sockets drain and the workers' records in between batches.
      await outputsDrained(transports)
    }
    finals = await pool.finish()
    // Every worker reported the end (metered up to Infinity): no record waits for a DNS answer any more.
    if (merger.waiting > 0) throw new Error(`${merger.waiting} worker outputs still wait for DNS answers`)
  } catch (err) {
    await pool?.terminate()
    await exporter.close().catch(() => undefined)
    await source.close()
    throw err
  }
  // Records dropped in a worker never reached this exporter: account for them here (RFC 7011 §4.3).
  const workerDropped = finals.reduce((n, f) => n + f.counters.droppedRecords, 0)
  if (workerDropped > 0) {
    exporter.stats.droppedRecords += workerDropped
    exporter.reportNotSent(workerDropped, 0, 0)
  }
  await exporter.close()
  await source.close()
  opts.onProgress?.(source.progress.total, source.progress.total)

  const formatErrors: Record<string, number> = {}
  for (const [k, v] of source.stats.formatErrors) formatErrors[k] = v
  const sum = (f: (w: WorkerFinal) => number): number => finals.reduce((n, w) => n + f(w), 0)
  const l7Parts = finals.map((f) => f.l7).filter((x): x is Record<string, L7Summary> => x !== undefined)
  let l7: Record<string, L7Summary> | undefined
  if (l7Parts.length > 0) {
    const acc: Record<string, unknown> = {}
    for (const p of l7Parts) addInto(acc, p)
    l7 = acc as unknown as Record<string, L7Summary>
  }
  const reassemblyParts = finals.flatMap((f) => (f.ipReassembly !== undefined ? [f.ipReassembly] : []))
  const ipReassembly =
    reassemblyParts.length > 0
      ? reassemblyParts.reduce(addIpReassemblyStats, emptyIpReassemblyStats())
      : undefined
  return {
    packets: sum((w) => w.counters.packets),
    capturedBytes: source.stats.bytes,
    ipPackets: sum((w) => w.ipPackets),
    ipBytes: sum((w) => w.ipBytes),
    nonIpPackets: sum((w) => w.counters.nonIp),
    malformedPackets: sum((w) => w.counters.malformed),
    unsupportedLinkTypePackets: sum((w) => w.counters.unsupported),
    flows: sum((w) => w.flows),
    peakActiveFlows: sum((w) => w.peakActiveFlows),
    endReasons: sumRecords(finals.map((f) => f.endReasons)),
    anomalies: sumRecords(finals.map((f) => f.anomalies)),
    formatErrors,
    export: { ...exporter.stats },
    ...(ipReassembly !== undefined ? { ipReassembly } : {}),
    ...(l7 !== undefined ? { l7 } : {}),
    ...transportReports(transports),
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  }
}
