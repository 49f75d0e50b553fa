// Runs the probe in-process over captures and returns its summary and the exported flow records as JSON
// objects (decoded from the IPFIX stream by the JSON transport, exactly as `--json` writes them).
import { Writable } from 'node:stream'
import { bundledCaptures } from '../../src/cli/commands/demo.js'
import { JsonTransport } from '../../src/ipfix/transport-json.js'
import {
  DEFAULT_PROBE_OPTIONS,
  runProbe,
  type ProbeOptions,
  type ProbeSummary,
} from '../../src/probe/probe.js'
import type { Transport } from '../../src/ipfix/transport.js'

export type JsonRecord = Record<string, unknown>

export interface ProbeRun {
  summary: ProbeSummary
  records: JsonRecord[]
}

export async function probeRecords(
  reads: string[],
  overrides: Partial<ProbeOptions> = {},
  extraTransports: Transport[] = [],
  /** Also return options data records (exporter statistics, RFC 5610, application catalogue). */
  withOptions = false,
): Promise<ProbeRun> {
  const lines: string[] = []
  let partial = ''
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = partial + chunk.toString('utf8')
      const parts = text.split('\n')
      partial = parts.pop() ?? ''
      lines.push(...parts.filter((l) => l !== ''))
      cb()
    },
  })
  const json = new JsonTransport('memory', { stream, options: withOptions })
  const summary = await runProbe({
    ...DEFAULT_PROBE_OPTIONS,
    destinations: [],
    ...overrides,
    reads,
    extraTransports: [json, ...extraTransports],
  })
  if (partial !== '') lines.push(partial)
  return { summary, records: lines.map((l) => JSON.parse(l) as JsonRecord) }
}

/** Sum of a numeric field over records (missing = 0). */
export function total(records: readonly JsonRecord[], field: string): number {
  let n = 0
  for (const r of records) {
    const v = r[field]
    if (typeof v === 'number') n += v
  }
  return n
}

/**
 * Runs the probe over the bundled captures (what `npm start` reads) and writes its IPFIX export to `path` as
 * an RFC 5655 file, the input the collector and store tests read back. Returns the probe's summary.
 */
export async function exportBundledCaptures(
  path: string,
  overrides: Partial<ProbeOptions> = {},
): Promise<ProbeSummary> {
  return runProbe({
    ...DEFAULT_PROBE_OPTIONS,
    ...overrides,
    reads: [bundledCaptures()],
    destinations: [{ kind: 'ipfix-file', path, host: '' }],
  })
}
