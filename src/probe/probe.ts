/**
 * The offline probe: capture files → metering pipeline (decode → flow cache → records) → IPFIX exporter.
 *
 * All timing (timeouts, export times, template refresh) follows packet time, so the same files always
 * give the same records.
 */
import { EndReason } from '../flow/feature.js'
import { IpfixExporter } from '../ipfix/exporter.js'
import { openExport, outputsDrained, transportReports } from './export-setup.js'
import { MeteringPipeline } from './pipeline.js'
import type { ProbeOptions, ProbeSummary } from './probe-options.js'

export { openCaptures } from './export-setup.js'

export { DEFAULT_PROBE_OPTIONS, type ProbeOptions, type ProbeSummary } from './probe-options.js'

/** Flows exported per step of the final flush, between which the outputs may drain. */
const FLUSH_STEP = 4096

/** Run the probe over capture files to the end, flushing every flow. */
export async function runProbe(opts: ProbeOptions): Promise<ProbeSummary> {
  const started = process.hrtime.bigint()
  const { source, transports, exporterOptions, firstPacketAt, batches, startUs } = await openExport(opts)
  const pipeline = new MeteringPipeline(
    {
      activeTimeout: opts.activeTimeout,
      inactiveTimeout: opts.inactiveTimeout,
      tcpEndLinger: opts.tcpEndLinger,
      maxFlows: opts.maxFlows,
      ...(opts.fields !== undefined ? { fields: opts.fields } : {}),
      ...(opts.onWarning !== undefined ? { onWarning: opts.onWarning } : {}),
      startUs,
    },
    (hooks) => new IpfixExporter({ ...exporterOptions, ...hooks }, transports),
  )
  const { exporter, cache, core, counters } = pipeline

  let lastProgress = 0
  try {
    for await (const batch of batches) {
      if (batch.count > 0) firstPacketAt(batch.tsUs[0]!)
      pipeline.processBatch(batch)
      if (opts.onProgress) {
        const t = Date.now()
        if (t - lastProgress >= 200) {
          lastProgress = t
          opts.onProgress(source.progress.done, source.progress.total)
        }
      }
      await outputsDrained(transports)
    }
    while (!pipeline.flushSome(EndReason.ForcedEnd, FLUSH_STEP)) await outputsDrained(transports)
  } finally {
    await exporter.close()
    await source.close()
  }
  opts.onProgress?.(source.progress.total, source.progress.total)

  const formatErrors: Record<string, number> = {}
  for (const [k, v] of source.stats.formatErrors) formatErrors[k] = v
  const l7 = pipeline.l7Summary()
  const ipReassembly = pipeline.ipReassembly()
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
    ...(ipReassembly !== undefined ? { ipReassembly } : {}),
    ...(l7 !== undefined ? { l7 } : {}),
    ...transportReports(transports),
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  }
}
