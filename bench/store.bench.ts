// Flow store benchmark, DuckDB and ClickHouse side by side, and nfcapd for ingest. Prints only.
//
// 1. Ingest (the first figure): a recorded IPFIX stream (bench/lib/ipfix-stream.ts, INGEST_FLOWS
//    records of the probe's biflow shape) replayed over loopback UDP at each rate in RATES records/s to
//    nfcapd and to `flowtel collect --store duckdb:…` / `clickhouse:…`, each receiver pinned to core 1 and
//    the sender to core 0 (bench/lib/ingest-race.ts). Printed per receiver and rate: rows stored of sent,
//    and records per CPU second of the receiver (the one-core capacity, steady under load from others).
//    bench/lib/ingest-inprocess.ts feeds the same stream to the decoder and a store without sockets, for
//    profiling the decode → store path (node --cpu-prof).
// 2. Stored flows for queries: GEN_FLOWS rows generated inside each engine with INSERT … SELECT (DuckDB
//    range(), ClickHouse numbers()) with skewed, realistic distributions (below), identical in both
//    engines; then top-10 latency (median of BENCH_QUERY_RUNS; ClickHouse also its server CPU time) and
//    bytes per stored flow (DuckDB file size after CHECKPOINT; ClickHouse active parts on disk).
//
// node --import tsx bench/store.bench.ts
// Environment: INGEST_FLOWS=N (default 300 000), RATES=r1,r2 (default 10000,25000,50000,200000),
// RECEIVERS=nfcapd,duckdb,clickhouse, GEN_FLOWS=N (default 10 000 000), BENCH_QUERY_RUNS=N (default 5),
// STORES=duckdb,clickhouse (query part), CLICKHOUSE_URL=http://HOST:PORT (default: a private
// clickhouse-server started for the run, test/helpers).
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseFilter } from '../src/query/filter.js'
import { ClickHouseStore } from '../src/store/clickhouse.js'
import { DuckDbStore } from '../src/store/duckdb.js'
import type { FlowStore } from '../src/store/store.js'
import { startClickHouse, type ClickHouseServer } from '../test/helpers/clickhouse-server.js'
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
const receivers = (process.env['RECEIVERS'] ?? 'nfcapd,duckdb,clickhouse').split(',')
const genFlows = Number(process.env['GEN_FLOWS'] ?? 10_000_000)
const queryRuns = Number(process.env['BENCH_QUERY_RUNS'] ?? 5)
const stores = (process.env['STORES'] ?? 'duckdb,clickhouse').split(',')

/**
 * The generated flows as SQL over the row number `i`, the same values in both engines (only integer
 * arithmetic on i, no engine hash): pseudo-random draws r1..r6 (multiplicative hashing of i), then
 * - sources: half the flows from 1 000 busy hosts, half spread over 200 000 (10.0.0.0/8);
 * - destinations: 60 % to 500 popular servers, 40 % over 1 000 000 addresses;
 * - destination port 443 (40 %), 80 (15 %), 53 (15 %, UDP), 22 (5 %), else ephemeral; source port ephemeral;
 * - bytes 40..~9 000 per direction, packets 1..40; flows 30 ms apart (10 M flows: 3.5 days), stored
 *   60 s after they start; four exporters.
 * `ipText(n)` / `ipKey(n)` turn an IPv4 number into the engine's address text and key.
 */
function generatedColumns(e: {
  time: (msExpr: string) => string
  ipText: (n: string) => string
  ipKey: (n: string) => string
  str: (nExpr: string) => string
  cat: (...parts: string[]) => string
  baseMs: number
}): Array<[string, string]> {
  const r = (k: number): string =>
    `((i * ${[2654435761, 2246822519, 3266489917, 668265263, 374761393, 1103515245][k - 1]} + ${k * 7919}) % 4294967296)`
  const src = `(CASE WHEN ${r(1)} % 2 = 0 THEN 167772160 + ${r(2)} % 1000 ELSE 167772160 + 4096 + ${r(2)} % 200000 END)`
  const dst = `(CASE WHEN ${r(3)} % 10 < 6 THEN 3325256704 + ${r(4)} % 500 ELSE 536870912 + ${r(4)} % 1000000 END)`
  const dport = `(CASE WHEN ${r(5)} % 100 < 40 THEN 443 WHEN ${r(5)} % 100 < 55 THEN 80 WHEN ${r(5)} % 100 < 70 THEN 53 WHEN ${r(5)} % 100 < 75 THEN 22 ELSE 1024 + ${r(6)} % 60000 END)`
  const bytes = `(40 + ${r(6)} % 1500 * (1 + ${r(5)} % 6))`
  const revBytes = `(${r(4)} % 9000)`
  const packets = `(1 + ${r(6)} % 40)`
  const revPackets = `(${r(4)} % 30)`
  const start = `(${e.baseMs} + i * 30)`
  return [
    ['time_received', e.time(`(${start} + 60000)`)],
    ['time_start', e.time(start)],
    ['time_end', e.time(`(${start} + ${r(6)} % 120000)`)],
    ['exporter', e.cat("'192.0.2.'", e.str('(i % 4)'))],
    ['observation_domain', '0'],
    ['template_id', '256'],
    ['flow_version', "'ipfix'"],
    ['ip_version', '4'],
    ['src_addr', e.ipText(src)],
    ['dst_addr', e.ipText(dst)],
    ['src_ip_key', e.ipKey(src)],
    ['dst_ip_key', e.ipKey(dst)],
    ['src_port', `(1024 + ${r(6)} % 64000)`],
    ['dst_port', dport],
    ['proto', `(CASE WHEN ${dport} = 53 THEN 17 ELSE 6 END)`],
    ['bytes', bytes],
    ['packets', packets],
    ['rev_bytes', revBytes],
    ['rev_packets', revPackets],
    ['total_bytes', `(${bytes} + ${revBytes})`],
    ['total_packets', `(${packets} + ${revPackets})`],
    ['tcp_flags', '27'],
    ['rev_tcp_flags', '26'],
    ['flow_end_reason', '3'],
    ['biflow_direction', '1'],
    ['vlan', '(i % 8)'],
    ['in_if', '1'],
  ]
}

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
      `${med(ms).toFixed(0)} ms (median of ${queryRuns}; ${cpuPid !== undefined ? 'server' : 'process'} CPU ${med(cpu).toFixed(0)} ms)`,
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
          `${(r.cpuMs / 1000).toFixed(2)} CPU s = ${n(r.stored / (r.cpuMs / 1000))} records/CPU s`,
      )
      rmSync(d, { recursive: true, force: true })
    }

  unpinSelf()
  if (stores.includes('duckdb')) {
    const gpath = join(dir, 'generated.duckdb')
    const g = await DuckDbStore.open(gpath)
    await g.migrate()
    const cols = generatedColumns({
      time: (ms) => `make_timestamp((${ms})::BIGINT * 1000)`,
      ipText: (a) =>
        `concat((${a}) // 16777216, '.', (${a}) // 65536 % 256, '.', (${a}) // 256 % 256, '.', (${a}) % 256)`,
      ipKey: (a) => `(281470681743360 + ${a})::UHUGEINT`,
      str: (x) => `CAST(${x} AS VARCHAR)`,
      cat: (...p) => `(${p.join(' || ')})`,
      baseMs: Date.now() - 4 * 86_400_000,
    })
    const t0 = process.hrtime.bigint()
    await g.sql(
      `INSERT INTO flows (${cols.map(([n]) => n).join(', ')}) SELECT ${cols.map(([, e]) => e).join(', ')} ` +
        `FROM (SELECT range::UBIGINT AS i FROM range(${Math.floor(genFlows)}))`,
    )
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
    const legacy = g.generation === 'legacy'
    const cols = generatedColumns({
      time: (ms) =>
        legacy ? `toUInt64((${ms}) * 1000)` : `fromUnixTimestamp64Micro(toInt64((${ms}) * 1000))`,
      ipText: (a) => `IPv4NumToString(toUInt32(${a}))`,
      ipKey: (a) => `IPv4ToIPv6(toUInt32(${a}))`,
      str: (x) => `toString(${x})`,
      cat: (...p) => `concat(${p.join(', ')})`,
      baseMs: Date.now() - 4 * 86_400_000,
    })
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
