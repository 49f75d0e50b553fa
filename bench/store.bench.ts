// Flow store benchmark, DuckDB and ClickHouse side by side. Prints only.
//
// 1. Client path (what the collector does): decoded records → normalize → batched appends (DuckDB appender;
//    ClickHouse RowBinary over HTTP), rows/s on one core, for FLOWS synthetic probe-like flows.
// 2. Stored flows for queries: GEN_FLOWS rows of the same shape generated inside each engine with one
//    INSERT … SELECT (DuckDB range(), ClickHouse numbers()), because pushing 10 M rows through the client
//    path takes minutes per store on this 2-core machine; then top-10 query latency (median of
//    BENCH_QUERY_RUNS) and bytes per stored flow (DuckDB file size; ClickHouse active parts on disk).
//
// node --import tsx bench/store.bench.ts
// Environment: FLOWS=N (client path, default 1 000 000), GEN_FLOWS=N (default 10 000 000: the issue's
// top-10 target), BENCH_QUERY_RUNS=N (default 5), STORES=duckdb,clickhouse, CLICKHOUSE_URL=http://HOST:PORT
// (an existing server; default: a private clickhouse-server started for the run, test/helpers).
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CollectedRecord } from '../src/collector/decode-message.js'
import type { DecodedField } from '../src/ipfix/decoder.js'
import { parseFilter } from '../src/query/filter.js'
import { COLUMNS } from '../src/schema/columns.js'
import { ClickHouseStore } from '../src/store/clickhouse.js'
import { DuckDbStore } from '../src/store/duckdb.js'
import { normalize } from '../src/store/normalize.js'
import { BatchWriter, type FlowStore } from '../src/store/store.js'
import { startClickHouse, type ClickHouseServer } from '../test/helpers/clickhouse-server.js'

const flows = Number(process.env['FLOWS'] ?? 1_000_000)
const genFlows = Number(process.env['GEN_FLOWS'] ?? 10_000_000)
const queryRuns = Number(process.env['BENCH_QUERY_RUNS'] ?? 5)
const stores = (process.env['STORES'] ?? 'duckdb,clickhouse').split(',')
const NAMES = COLUMNS.map((c) => c.name)

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

/**
 * record(i) as SQL expressions over the row number `i` (the same values normalize() gives), per engine:
 * column name → expression. `time(ms)`, `key(text)` and `cat(...)` are the engine's forms.
 */
function generatedColumns(e: {
  time: (msExpr: string) => string
  key: (textExpr: string) => string
  str: (nExpr: string) => string
  cat: (...parts: string[]) => string
  nowUs: bigint
}): Array<[string, string]> {
  const src = e.cat(
    "'10.'",
    e.str('((i >> 16) & 255)'),
    "'.'",
    e.str('((i >> 8) & 255)'),
    "'.'",
    e.str('(i & 255)'),
  )
  const dst = e.cat("'198.51.100.'", e.str('(i % 97)'))
  return [
    ['time_received', e.time(`${e.nowUs / 1000n}`)],
    ['time_start', e.time('(1700000000000 + i * 3)')],
    ['time_end', e.time('(1700000000000 + i * 3 + 1500)')],
    ['exporter', e.cat("'192.0.2.'", e.str('(i % 4)'))],
    ['observation_domain', '0'],
    ['template_id', '256'],
    ['flow_version', "'ipfix'"],
    ['ip_version', '4'],
    ['src_addr', src],
    ['dst_addr', dst],
    ['src_ip_key', e.key(src)],
    ['dst_ip_key', e.key(dst)],
    ['src_port', '(1024 + i % 50000)'],
    ['dst_port', '(CASE i % 4 WHEN 0 THEN 443 WHEN 1 THEN 80 WHEN 2 THEN 53 ELSE 22 END)'],
    ['proto', '(CASE WHEN i % 4 = 2 THEN 17 ELSE 6 END)'],
    ['bytes', '(60 + i % 9000)'],
    ['packets', '(1 + i % 40)'],
    ['rev_bytes', '(i % 20000)'],
    ['rev_packets', '(i % 30)'],
    ['tcp_flags', '27'],
    ['rev_tcp_flags', '26'],
    ['flow_end_reason', '3'],
    ['biflow_direction', '1'],
    ['vlan', '(i % 8)'],
    ['in_if', '1'],
  ]
}

const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
const line = (label: string, value: string): void => console.log(`${label.padEnd(52)} ${value}`)

async function clientPath(name: string, store: FlowStore): Promise<void> {
  const writer = new BatchWriter(store, NAMES, { maxRows: 100_000 })
  const now = BigInt(Date.now()) * 1000n
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < flows; i++) {
    writer.add(normalize(record(i), now))
    if (i % 100_000 === 99_999) await writer.flush() // bounded memory: wait for each full batch
  }
  await writer.flush()
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  line(
    `${name}: ingest ${flows.toLocaleString('en-US')} (normalize + append)`,
    `${Math.round(flows / s).toLocaleString('en-US')} rows/s (${s.toFixed(2)} s)`,
  )
}

async function queries(name: string, store: FlowStore): Promise<void> {
  const time = async (label: string, run: () => Promise<unknown>): Promise<void> => {
    const ms: number[] = []
    for (let r = 0; r < queryRuns; r++) {
      const s = process.hrtime.bigint()
      await run()
      ms.push(Number(process.hrtime.bigint() - s) / 1e6)
    }
    line(`${name}: ${label}`, `${med(ms).toFixed(1)} ms (median of ${queryRuns})`)
  }
  await time('top-10 src_addr by bytes', () => store.query({ top: ['src_addr'], by: 'bytes', limit: 10 }))
  await time('top-10 dst_port,proto by flows', () => store.query({ top: ['dst_port', 'proto'], by: 'flows' }))
  await time('top-10 dst_addr, filtered (net 10.0.0.0/16 and tcp)', () =>
    store.query({ top: ['dst_addr'], filter: parseFilter('src net 10.0.0.0/16 and proto tcp') }),
  )
}

const dir = mkdtempSync(join(tmpdir(), 'flowtel-store-bench-'))
let server: ClickHouseServer | undefined
try {
  console.log(
    `client path: ${flows.toLocaleString('en-US')} flows; stored for queries: ${genFlows.toLocaleString('en-US')} flows`,
  )
  if (stores.includes('duckdb')) {
    const path = join(dir, 'client.duckdb')
    const store = await DuckDbStore.open(path)
    await store.migrate()
    await clientPath('DuckDB', store)
    await store.close()

    const gpath = join(dir, 'generated.duckdb')
    const g = await DuckDbStore.open(gpath)
    await g.migrate()
    const cols = generatedColumns({
      time: (ms) => `make_timestamp((${ms}) * 1000)`,
      key: (text) =>
        `(281470681743360 + (split_part(${text}, '.', 1)::UBIGINT << 24) + (split_part(${text}, '.', 2)::UBIGINT << 16) + (split_part(${text}, '.', 3)::UBIGINT << 8) + split_part(${text}, '.', 4)::UBIGINT)::UHUGEINT`,
      str: (n) => `CAST(${n} AS VARCHAR)`,
      cat: (...p) => `(${p.join(' || ')})`,
      nowUs: BigInt(Date.now()) * 1000n,
    })
    const t0 = process.hrtime.bigint()
    await g.sql(
      `INSERT INTO flows (${cols.map(([n]) => n).join(', ')}) SELECT ${cols.map(([, e]) => e).join(', ')} ` +
        `FROM (SELECT range AS i FROM range(${Math.floor(genFlows)}))`,
    )
    line('DuckDB: generate (INSERT … SELECT)', `${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`)
    line('DuckDB: flows stored', (await g.count()).toLocaleString('en-US'))
    await queries('DuckDB', g)
    await g.close()
    const bytes = statSync(gpath).size
    line('DuckDB: file size', `${(bytes / 2 ** 20).toFixed(1)} MiB`)
    line('DuckDB: bytes per stored flow', (bytes / genFlows).toFixed(1))
  }
  if (stores.includes('clickhouse')) {
    let url = process.env['CLICKHOUSE_URL']
    if (url === undefined) {
      server = await startClickHouse()
      url = server.url
      line(
        'ClickHouse: private server started',
        `${server.startMs} ms, ${server.rssKiB() ?? '?'} KiB resident`,
      )
    }
    const store = await ClickHouseStore.open(`${url}/bench_client`)
    line('ClickHouse: server version', `${store.version.text} (${store.serverGeneration} schema)`)
    await store.dropDatabase()
    await store.migrate()
    await clientPath('ClickHouse', store)
    await store.dropDatabase()
    await store.close()

    const g = await ClickHouseStore.open(`${url}/bench_gen`, { requestTimeoutMs: 1_800_000 })
    await g.dropDatabase()
    await g.migrate()
    const legacy = g.generation === 'legacy'
    const cols = generatedColumns({
      time: (ms) =>
        legacy ? `toUInt64((${ms}) * 1000)` : `fromUnixTimestamp64Micro(toInt64((${ms}) * 1000))`,
      key: (text) => (legacy ? `IPv4ToIPv6(IPv4StringToNum(${text}))` : `toIPv6(${text})`),
      str: (n) => `toString(${n})`,
      cat: (...p) => `concat(${p.join(', ')})`,
      nowUs: BigInt(Date.now()) * 1000n,
    }).map(
      ([n, e]) =>
        [
          n,
          e
            .replace(/\(\(i >> (\d+)\) & 255\)/g, 'bitAnd(bitShiftRight(i, $1), 255)')
            .replace(/\(i & 255\)/g, 'bitAnd(i, 255)'),
        ] as const,
    )
    const t0 = process.hrtime.bigint()
    // In steps of a million rows: each INSERT is one part per day partition, merged in the background.
    for (let from = 0; from < genFlows; from += 1_000_000)
      await g.command(
        `INSERT INTO ${g.table} (${cols.map(([n]) => n).join(', ')}) SELECT ${cols.map(([, e]) => e).join(', ')} ` +
          `FROM (SELECT number + ${from} AS i FROM system.numbers LIMIT ${Math.min(1_000_000, genFlows - from)})`,
      )
    line(
      'ClickHouse: generate (INSERT … SELECT)',
      `${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`,
    )
    line('ClickHouse: flows stored', (await g.count()).toLocaleString('en-US'))
    await queries('ClickHouse', g)
    const parts = (
      await g.sql(
        `SELECT sum(bytes_on_disk) AS b, sum(rows) AS r, count() AS parts FROM system.parts ` +
          `WHERE database = 'bench_gen' AND table = 'flows' AND active`,
      )
    ).rows[0]
    const bytes = Number(parts?.b ?? 0)
    line('ClickHouse: parts on disk', `${(bytes / 2 ** 20).toFixed(1)} MiB in ${String(parts?.parts)} parts`)
    line('ClickHouse: bytes per stored flow', (bytes / genFlows).toFixed(1))
    line('ClickHouse: server resident memory', `${server?.rssKiB() ?? '?'} KiB`)
    await g.dropDatabase()
    await g.close()
  }
} finally {
  await server?.stop()
  rmSync(dir, { recursive: true, force: true })
}
