/**
 * `flowtel demo` (what `npm start` runs): the whole pipeline on embedded defaults. The probe reads the
 * captures bundled in the repository and exports IPFIX over UDP to a collector listening on loopback (an
 * ephemeral port, same process); the collector stores the records in DuckDB (a temporary file unless
 * --store is given); then the summary and the top flows by bytes are read back from the store.
 */
import { Command } from 'commander'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { FlowCollector } from '../../collector/decode-message.js'
import { listen } from '../../collector/listener.js'
import { DEFAULT_PROBE_OPTIONS, runProbe } from '../../probe/probe.js'
import { openStoreWriter, storeRecords } from '../../store/ingest.js'
import { formatSummary } from '../summary.js'
import { ProgressBar } from '../progress.js'

/** The bundled captures: test/fixtures/pcap in the package root. */
export function bundledCaptures(): string {
  return resolve(fileURLToPath(import.meta.url), '../../../../test/fixtures/pcap')
}

interface JsonFlow {
  sourceIPv4Address?: string
  destinationIPv4Address?: string
  sourceIPv6Address?: string
  destinationIPv6Address?: string
  sourceTransportPort?: number
  destinationTransportPort?: number
  protocolIdentifier?: number
  octetDeltaCount?: number
  reverseOctetDeltaCount?: number
  packetDeltaCount?: number
  reversePacketDeltaCount?: number
}

function endpoint(addr: string | undefined, port: number | undefined): string {
  const a = addr ?? '?'
  return a.includes(':') ? `[${a}]:${port ?? 0}` : `${a}:${port ?? 0}`
}

export function topFlowsTable(flows: JsonFlow[], n: number): string {
  const total = (f: JsonFlow): number => (f.octetDeltaCount ?? 0) + (f.reverseOctetDeltaCount ?? 0)
  const top = [...flows].sort((a, b) => total(b) - total(a)).slice(0, n)
  const rows = top.map((f) => [
    endpoint(f.sourceIPv4Address ?? f.sourceIPv6Address, f.sourceTransportPort),
    endpoint(f.destinationIPv4Address ?? f.destinationIPv6Address, f.destinationTransportPort),
    String(f.protocolIdentifier ?? ''),
    String((f.packetDeltaCount ?? 0) + (f.reversePacketDeltaCount ?? 0)),
    String(total(f)),
  ])
  const head = ['initiator', 'responder', 'proto', 'packets', 'bytes']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: string[]): string =>
    r.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ')
  return [line(head), ...rows.map(line)].join('\n') + '\n'
}

/** Flow rows from the store in the shape topFlowsTable takes. */
function rowToFlow(r: Record<string, unknown>): JsonFlow {
  const num = (v: unknown): number | undefined =>
    typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : undefined
  const src = typeof r.src_addr === 'string' ? r.src_addr : undefined
  const dst = typeof r.dst_addr === 'string' ? r.dst_addr : undefined
  const f: JsonFlow = {}
  if (src !== undefined) f[src.includes(':') ? 'sourceIPv6Address' : 'sourceIPv4Address'] = src
  if (dst !== undefined) f[dst.includes(':') ? 'destinationIPv6Address' : 'destinationIPv4Address'] = dst
  const set = (
    k:
      | (keyof JsonFlow & `${string}Count`)
      | 'sourceTransportPort'
      | 'destinationTransportPort'
      | 'protocolIdentifier',
    v: unknown,
  ): void => {
    const n = num(v)
    if (n !== undefined) f[k] = n
  }
  set('sourceTransportPort', r.src_port)
  set('destinationTransportPort', r.dst_port)
  set('protocolIdentifier', r.proto)
  set('octetDeltaCount', r.bytes)
  set('reverseOctetDeltaCount', r.rev_bytes)
  set('packetDeltaCount', r.packets)
  set('reversePacketDeltaCount', r.rev_packets)
  return f
}

export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'probe the bundled captures, export over UDP to the collector on loopback, store in DuckDB, show the top flows',
    )
    .option('--top <n>', 'how many flows to list', '15')
    .option('--store <url>', 'keep the flows in this store (duckdb:PATH) instead of a temporary file')
    .action(async (flags: { top: string; store?: string }) => {
      const dir = await mkdtemp(join(tmpdir(), 'flowtel-demo-'))
      const url = flags.store ?? `duckdb:${join(dir, 'flowtel.duckdb')}`
      const writer = await openStoreWriter(url)
      const col = new FlowCollector()
      let stored = 0
      const listener = await listen({ protocol: 'udp', host: '127.0.0.1', port: 0 }, col, (o) => {
        stored += storeRecords(writer, o)
      })
      try {
        const bar = new ProgressBar('reading')
        const captures = bundledCaptures()
        process.stdout.write(
          `flowtel demo: probe over ${captures}\n  → IPFIX/UDP → collector on 127.0.0.1:${listener.port} → ${url}\n\n`,
        )
        const summary = await runProbe({
          ...DEFAULT_PROBE_OPTIONS,
          reads: [captures],
          destinations: [{ kind: 'udp', host: '127.0.0.1', port: listener.port }],
          onProgress: (d, t) => bar.update(d, t),
          onWarning: (m) => process.stderr.write(`flowtel: warning: ${m}\n`),
        })
        bar.done()
        // Wait until the collector has every record the exporter sent (loopback, so normally at once).
        const deadline = Date.now() + 5000
        while ((col.counters.records ?? 0) < summary.export.records && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 10))
        await writer.flush()
        process.stdout.write(formatSummary(summary))
        const received = col.counters.records ?? 0
        const fmt = (n: number): string => n.toLocaleString('en-US')
        process.stdout.write(
          `collector          ${fmt(col.counters.messages ?? 0)} messages, ${fmt(received)} records, ` +
            `${fmt(stored)} flow records stored (${fmt(await writer.store.count())} rows in the store)\n`,
        )
        if (received < summary.export.records)
          process.stderr.write(
            `flowtel: warning: ${summary.export.records - received} exported records did not arrive\n`,
          )
        const top = await writer.store.query({ limit: Number(flags.top), orderBy: 'bytes' })
        process.stdout.write(`\ntop ${flags.top} of ${stored} flow records by bytes (from the store):\n`)
        process.stdout.write(topFlowsTable(top.rows.map(rowToFlow), Number(flags.top)))
      } finally {
        await listener.close()
        await writer.close()
        await rm(dir, { recursive: true, force: true })
      }
    })
}
