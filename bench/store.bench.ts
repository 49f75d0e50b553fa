// Flow store benchmark, DuckDB and ClickHouse side by side, and nfcapd for ingest. Prints only.
//
// 1. Ingest (the first figure): a recorded IPFIX stream (bench/lib/ipfix-stream.ts, INGEST_FLOWS
//    records of the probe's biflow shape) replayed over loopback UDP at each rate in RATES records/s to
//    nfcapd and to `flowtel collect --store duckdb:…` / `clickhouse:…`, each receiver pinned to core 1 and
//    the sender to core 0 (bench/lib/ingest-race.ts). Printed per receiver and rate: rows stored of sent,
//    and records per CPU second of the receiver (the one-core capacity, steady under load from others).
//    bench/lib/ingest-inprocess.ts feeds the same stream to the decoder and a store without sockets, for
//    profiling the decode → store path (node --cpu-prof). For a before/after of a change on this shared
//    machine, bench/ingest-ab.bench.ts runs two builds side by side on one core instead (receiving-thread
//    and process CPU per stored record, and their ratio).
// 2. Stored flows for queries: GEN_FLOWS rows generated inside each engine with INSERT … SELECT (DuckDB
//    range(), ClickHouse numbers()) with skewed, realistic distributions (bench/lib/generated-flows.ts), the same in both
//    engines; then top-10 latency (median of BENCH_QUERY_RUNS; ClickHouse also its server CPU time) and
//    bytes per stored flow (DuckDB file size after CHECKPOINT; ClickHouse active parts on disk).
//
// node --import tsx bench/store.bench.ts
// Environment: INGEST_FLOWS=N (default 300 000), RATES=r1,r2 (default 10000,25000,50000,200000),
// RECEIVERS=nfcapd,duckdb,clickhouse,duckdb-floor (empty: no ingest part; duckdb-floor: DuckDB's own cost of
// storing the stream's rows, bench/lib/duckdb-floor.ts), GEN_FLOWS=N (default 10 000 000), BENCH_QUERY_RUNS=N (default 5),
// STORES=duckdb,clickhouse (query part), CLICKHOUSE_URL=http://HOST:PORT (default: a private
// clickhouse-server started for the run, test/helpers).
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseFilter } from '../src/query/filter.js'
import { ClickHouseStore } from '../src/store/clickhouse.js'
import { DuckDbStore } from '../src/store/duckdb.js'
import type { FlowStore } from '../src/store/store.js'
import { startClickHouse, type ClickHouseServer } from '../test/helpers/clickhouse-server.js'
import { duckdbFloor } from './lib/duckdb-floor.js'
import { generateClickHouse, generateDuckDb } from './lib/generated-flows.js'
import { buildIpfixStream, RECORD_LENGTH } from './lib/ipfix-stream.js'
import {
  cpuMs,
  flowtelReceiver,
  hasTaskset,
  nfcapdReceiver,
  pinSelf,
  race,
  unpinSelf,
  type Receiver,
} from './lib/ingest-race.js'

const ingestFlows = Number(process.env['INGEST_FLOWS'] ?? 300_000)
const rates = (process.env['RATES'] ?? '10000,25000,50000,200000').split(',').map(Number)
const receivers = (process.env['RECEIVERS'] ?? 'nfcapd,duckdb,clickhouse,duckdb-floor').split(',')
const genFlows = Number(process.env['GEN_FLOWS'] ?? 10_000_000)
const queryRuns = Number(process.env['BENCH_QUERY_RUNS'] ?? 5)
const stores = (process.env['STORES'] ?? 'duckdb,clickhouse').split(',')

const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
const line = (label: string, value: string): void => console.log(`${label.padEnd(60)} ${value}`)
const n = (x: number): string => Math.round(x).toLocaleString('en-US')

/** ClickHouse server CPU ms (all threads), when the server is ours (its pid from /proc). */
function serverPid(server: ClickHouseServer | undefined): number | undefined {
  if (server === undefined) return undefined
  for (const p of readdirSync('/proc'))
    if (/^\d+$/.test(p))
      try {
        if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(server.dir)) return Number(p)
      } catch {
        // gone
      }
  return undefined
}

async function queries(name: string, store: FlowStore, cpuPid?: number): Promise<void> {
  const time = async (label: string, run: () => Promise<unknown>): Promise<void> => {
    const ms: number[] = []
    const cpu: number[] = []
    for (let r = 0; r < queryRuns; r++) {
      const c0 = cpuPid !== undefined ? cpuMs(cpuPid) : 0
      const u0 = process.cpuUsage()
      const s = process.hrtime.bigint()
      await run()
      ms.push(Number(process.hrtime.bigint() - s) / 1e6)
      const u = process.cpuUsage(u0)
      cpu.push(cpuPid !== undefined ? cpuMs(cpuPid) - c0 : (u.user + u.system) / 1000)
    }
    line(
      `${name}: ${label}`,
      `${med(ms).toFixed(0)} ms (median of ${queryRuns}; ${cpuPid !== undefined ? 'server' : 'process'} CPU ` +
        `${med(cpu).toFixed(0)} ms; load average ${loadavg()[0]?.toFixed(1) ?? '?'})`,
    )
  }
  await time('top-10 src_addr by bytes', () => store.query({ top: ['src_addr'], by: 'bytes', limit: 10 }))
  await time('top-10 dst_addr by flows', () => store.query({ top: ['dst_addr'], by: 'flows', limit: 10 }))
  await time('top-10 dst_port,proto by flows', () => store.query({ top: ['dst_port', 'proto'], by: 'flows' }))
  await time('top-10 dst_addr, filtered (src net 10.0.0.0/16 and tcp)', () =>
    store.query({ top: ['dst_addr'], filter: parseFilter('src net 10.0.0.0/16 and proto tcp') }),
  )
}

const dir = mkdtempSync(join(tmpdir(), 'flowtel-store-bench-'))
let server: ClickHouseServer | undefined
const clickhouseUrl = async (): Promise<string> => {
  const env = process.env['CLICKHOUSE_URL']
  if (env !== undefined) return env
  if (server === undefined) {
    server = await startClickHouse()
    line('ClickHouse: private server started', `${server.startMs} ms, ${server.rssKiB() ?? '?'} KiB resident`)
  }
  return server.url
}
try {
  // A private ClickHouse server first: started after pinSelf it would inherit core 0 alone.
  if (receivers.includes('clickhouse') || stores.includes('clickhouse')) await clickhouseUrl()
  pinSelf(0)
  console.log(
    `ingest: ${n(ingestFlows)} IPFIX records (${RECORD_LENGTH} octets each) at ${rates.map(n).join(', ')} records/s; ` +
      `stored for queries (${stores.filter((x) => x === 'duckdb' || x === 'clickhouse').join(', ') || 'none'}): ` +
      `${n(genFlows)} flows; ${hasTaskset ? 'receivers on core 1, sender on core 0' : 'no taskset: not pinned'}`,
  )
  const stream = buildIpfixStream(ingestFlows)
  const racers: Receiver[] = []
  if (receivers.includes('nfcapd')) racers.push(nfcapdReceiver)
  if (receivers.includes('duckdb'))
    racers.push(
      flowtelReceiver(
        'flowtel → DuckDB',
        (d) => `duckdb:${join(d, 'ingest.duckdb')}`,
        async (url) => {
          const s = await DuckDbStore.open(url.slice('duckdb:'.length))
          const c = await s.count()
          await s.close()
          return c
        },
      ),
    )
  if (receivers.includes('clickhouse')) {
    const base = await clickhouseUrl()
    let k = 0
    racers.push(
      flowtelReceiver(
        'flowtel → ClickHouse',
        () => `clickhouse:${base}/bench_ingest_${++k}`,
        async (url) => {
          const s = await ClickHouseStore.open(url.slice('clickhouse:'.length))
          const c = await s.count()
          await s.dropDatabase()
          await s.close()
          return c
        },
      ),
    )
  }
  for (const rate of rates)
    for (const rc of racers) {
      const d = join(dir, `ingest-${rate}-${rc.name.replace(/\W+/g, '_')}`)
      mkdirSync(d, { recursive: true })
      const r = await race(rc, stream, rate, d)
      line(
        `ingest ${n(rate)}/s → ${r.receiver}`,
        `stored ${n(r.stored)} of ${n(r.sent)} (${((100 * r.stored) / r.sent).toFixed(1)} %), sent at ${n(r.sentRate)}/s, ` +
          `${(r.cpuMs / 1000).toFixed(2)} CPU s = ${n(r.stored / (r.cpuMs / 1000))} records/CPU s ` +
          `(to exit: ${(r.cpuToExitMs / 1000).toFixed(2)} CPU s = ${n(r.stored / (r.cpuToExitMs / 1000))}), ` +
          `peak RSS ${n(r.peakRssKiB / 1024)} MiB (to exit: ${n(r.peakRssToExitKiB / 1024)}), load average ${loadavg()[0]?.toFixed(1) ?? '?'}`,
      )
      rmSync(d, { recursive: true, force: true })
    }
  if (receivers.includes('duckdb-floor')) {
    // DuckDB alone, no Flowtel code: what storing these rows costs at the least (bench/lib/duckdb-floor.ts).
    pinSelf(1)
    for (const which of ['filled', 'all'] as const) {
      const f = await duckdbFloor(ingestFlows, which)
      line(
        `DuckDB floor: INSERT … SELECT, ${f.columns} columns${which === 'filled' ? ' (those filled)' : ' (all)'}`,
        `${n(f.rows)} rows, ${(f.storeCpuMs / 1000).toFixed(2)} CPU s = ${n(f.rows / (f.storeCpuMs / 1000))} ` +
          `rows/CPU s (generating the values: ${(f.generateCpuMs / 1000).toFixed(2)} CPU s, not counted), ` +
          `one DuckDB thread, load average ${loadavg()[0]?.toFixed(1) ?? '?'}`,
      )
    }
    pinSelf(0)
  }

  unpinSelf()
  if (stores.includes('duckdb')) {
    const gpath = join(dir, 'generated.duckdb')
    const g = await DuckDbStore.open(gpath)
    await g.migrate()
    const t0 = process.hrtime.bigint()
    await generateDuckDb(g, genFlows, Date.now() - 4 * 86_400_000)
    line('DuckDB: generate (INSERT … SELECT)', `${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`)
    line('DuckDB: flows stored', (await g.count()).toLocaleString('en-US'))
    line(
      'DuckDB: distinct src_addr / dst_addr',
      (await g.sql('SELECT count(DISTINCT src_ip_key) AS s, count(DISTINCT dst_ip_key) AS d FROM flows')).rows
        .map((r) => `${String(r.s)} / ${String(r.d)}`)
        .join(''),
    )
    await queries('DuckDB', g)
    await g.close()
    const bytes = statSync(gpath).size
    line('DuckDB: file size', `${(bytes / 2 ** 20).toFixed(1)} MiB`)
    line('DuckDB: bytes per stored flow', (bytes / genFlows).toFixed(1))
  }
  if (stores.includes('clickhouse')) {
    const url = await clickhouseUrl()
    const g = await ClickHouseStore.open(`${url}/bench_gen`, { requestTimeoutMs: 1_800_000 })
    await g.dropDatabase()
    await g.migrate()
    line('ClickHouse: server version', `${g.version.text} (${g.generation} schema)`)
    const t0 = process.hrtime.bigint()
    await generateClickHouse(g, genFlows, Date.now() - 4 * 86_400_000)
    line(
      'ClickHouse: generate (INSERT … SELECT)',
      `${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`,
    )
    line('ClickHouse: flows stored', (await g.count()).toLocaleString('en-US'))
    await g.command(`OPTIMIZE TABLE ${g.table} FINAL`)
    await queries('ClickHouse', g, serverPid(server))
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
