// Flow store benchmark (DuckDB): rows/s from decoded records to stored rows (normalize + batched appends),
// bytes per stored flow, and top-10 query latency. Prints only.
//
// node --import tsx bench/store.bench.ts            1 M synthetic probe-like flows
// Environment: FLOWS=N (10000000 for the top-10 target), BENCH_QUERY_RUNS=N (median, default 5).
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CollectedRecord } from '../src/collector/decode-message.js'
import type { DecodedField } from '../src/ipfix/decoder.js'
import { parseFilter } from '../src/query/filter.js'
import { COLUMNS } from '../src/schema/columns.js'
import { DuckDbStore } from '../src/store/duckdb.js'
import { normalize } from '../src/store/normalize.js'
import { BatchWriter } from '../src/store/store.js'

const flows = Number(process.env['FLOWS'] ?? 1_000_000)
const queryRuns = Number(process.env['BENCH_QUERY_RUNS'] ?? 5)

const f = (name: string, type: DecodedField['type'], value: DecodedField['value']): DecodedField => ({
  pen: 0,
  id: 0,
  name,
  type,
  value,
})

/** A record shaped like the probe's default template (core + l2), varied by i. */
function record(i: number): CollectedRecord {
  const t = 1_700_000_000_000n + BigInt(i * 3)
  return {
    version: 10,
    exporter: `192.0.2.${i % 4}`,
    exportTime: 0,
    sequence: 0,
    deferred: false,
    odid: 0,
    templateId: 256,
    isOptions: false,
    scopeCount: 0,
    fields: [
      f('flowStartMilliseconds', 'dateTimeMilliseconds', t),
      f('flowEndMilliseconds', 'dateTimeMilliseconds', t + 1500n),
      f('sourceIPv4Address', 'ipv4Address', `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`),
      f('destinationIPv4Address', 'ipv4Address', `198.51.100.${i % 97}`),
      f('sourceTransportPort', 'unsigned16', 1024 + (i % 50000)),
      f('destinationTransportPort', 'unsigned16', [443, 80, 53, 22][i % 4] ?? 443),
      f('protocolIdentifier', 'unsigned8', i % 4 === 2 ? 17 : 6),
      f('ipVersion', 'unsigned8', 4),
      f('octetDeltaCount', 'unsigned64', BigInt(60 + (i % 9000))),
      f('packetDeltaCount', 'unsigned64', BigInt(1 + (i % 40))),
      f('reverseOctetDeltaCount', 'unsigned64', BigInt(i % 20000)),
      f('reversePacketDeltaCount', 'unsigned64', BigInt(i % 30)),
      f('tcpControlBits', 'unsigned16', 0x1b),
      f('reverseTcpControlBits', 'unsigned16', 0x1a),
      f('flowEndReason', 'unsigned8', 3),
      f('biflowDirection', 'unsigned8', 1),
      f('vlanId', 'unsigned16', i % 8),
      f('ingressInterface', 'unsigned32', 1),
    ],
  }
}

const dir = mkdtempSync(join(tmpdir(), 'flowtel-store-bench-'))
const path = join(dir, 'bench.duckdb')
try {
  const store = await DuckDbStore.open(path)
  await store.migrate()
  const writer = new BatchWriter(
    store,
    COLUMNS.map((c) => c.name),
    { maxRows: 100_000 },
  )
  const now = BigInt(Date.now()) * 1000n
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < flows; i++) {
    writer.add(normalize(record(i), now))
    if (i % 100_000 === 99_999) await writer.flush() // bounded memory: wait for each full batch
  }
  await writer.flush()
  const ingestS = Number(process.hrtime.bigint() - t0) / 1e9
  const time = async (label: string, run: () => Promise<unknown>): Promise<void> => {
    const ms: number[] = []
    for (let r = 0; r < queryRuns; r++) {
      const s = process.hrtime.bigint()
      await run()
      ms.push(Number(process.hrtime.bigint() - s) / 1e6)
    }
    ms.sort((a, b) => a - b)
    console.log(
      `${label.padEnd(44)} ${(ms[Math.floor(ms.length / 2)] ?? 0).toFixed(1)} ms (median of ${queryRuns})`,
    )
  }
  console.log(`flows stored                                 ${flows.toLocaleString('en-US')}`)
  console.log(
    `ingest (normalize + append, one core)        ${Math.round(flows / ingestS).toLocaleString('en-US')} rows/s (${ingestS.toFixed(2)} s)`,
  )
  await time('top-10 src_addr by bytes', () => store.query({ top: ['src_addr'], by: 'bytes', limit: 10 }))
  await time('top-10 dst_port,proto by flows', () => store.query({ top: ['dst_port', 'proto'], by: 'flows' }))
  await time('top-10 filtered (net 10.0.0.0/16 and tcp)', () =>
    store.query({ top: ['dst_addr'], filter: parseFilter('src net 10.0.0.0/16 and proto tcp') }),
  )
  await writer.close()
  const bytes = statSync(path).size
  console.log(`file size                                    ${(bytes / 2 ** 20).toFixed(1)} MiB`)
  console.log(`bytes per stored flow                        ${(bytes / flows).toFixed(1)}`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
