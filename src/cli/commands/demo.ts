/**
 * `flowtel demo` (what `npm start` runs): the probe over the captures bundled in the repository, then a
 * summary and the top flows by bytes read back from the exported records.
 */
import { Command } from 'commander'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEFAULT_PROBE_OPTIONS, runProbe } from '../../probe/probe.js'
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

export function demoCommand(): Command {
  return new Command('demo')
    .description('run the probe over the bundled captures and show a summary and the top flows')
    .option('--top <n>', 'how many flows to list', '15')
    .action(async (flags: { top: string }) => {
      const dir = await mkdtemp(join(tmpdir(), 'flowtel-demo-'))
      try {
        const jsonPath = join(dir, 'flows.jsonl')
        const bar = new ProgressBar('reading')
        const captures = bundledCaptures()
        process.stdout.write(`flowtel demo: probe over ${captures}\n\n`)
        const summary = await runProbe({
          ...DEFAULT_PROBE_OPTIONS,
          reads: [captures],
          destinations: [{ kind: 'json', path: jsonPath, host: '' }],
          onProgress: (d, t) => bar.update(d, t),
          onWarning: (m) => process.stderr.write(`flowtel: warning: ${m}\n`),
        })
        bar.done()
        process.stdout.write(formatSummary(summary))
        const flows = (await readFile(jsonPath, 'utf8'))
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as JsonFlow)
        process.stdout.write(`\ntop ${flags.top} of ${flows.length} flow records by bytes:\n`)
        process.stdout.write(topFlowsTable(flows, Number(flags.top)))
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })
}
