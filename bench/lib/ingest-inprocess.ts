// In-process ingest harness: the recorded IPFIX stream (ipfix-stream.ts) fed datagram by datagram to the
// collector's decoder and a store writer (no sockets), for profiling the decode → store path
// (node --cpu-prof --import tsx bench/lib/ingest-inprocess.ts). Prints records per CPU second of the process.
//
// With a DuckDB store, also prints the file's bytes per stored flow after close (which checkpoints).
//
// Environment: INGEST_FLOWS=N (default 300 000), STORE=duckdb:PATH|clickhouse:URL|clickhouse (a private
// server, test/helpers)|none (default a temporary DuckDB file), DUCKDB_SETTINGS=ingest_threads=N&… (the
// temporary file's URL settings, store/duckdb.ts parseStoreUrl), BATCH_ROWS=N (default 10 000).
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FlowCollector } from '../../src/collector/decode-message.js'
import { DuckDbStore } from '../../src/store/duckdb.js'
import { openStoreWriter, storeRecords } from '../../src/store/ingest.js'
import { startClickHouse, type ClickHouseServer } from '../../test/helpers/clickhouse-server.js'
import { buildIpfixStream } from './ipfix-stream.js'

const flows = Number(process.env['INGEST_FLOWS'] ?? 300_000)
const dir = mkdtempSync(join(tmpdir(), 'flowtel-ingest-inproc-'))
let server: ClickHouseServer | undefined
const settings = process.env['DUCKDB_SETTINGS']
let url =
  process.env['STORE'] ??
  `duckdb:${join(dir, 'ingest.duckdb')}${settings !== undefined ? `?${settings}` : ''}`
if (url === 'clickhouse') {
  server = await startClickHouse()
  url = `clickhouse:${server.url}/bench_inproc`
}
const stream = buildIpfixStream(flows)
const col = new FlowCollector()
const writer =
  url === 'none'
    ? undefined
    : await openStoreWriter(url, { maxRows: Number(process.env['BATCH_ROWS'] ?? 10_000) })
// DUCKDB_SQL: a statement run on the store first (SET …), for experiments (threads: DUCKDB_SETTINGS, as
// sql() runs with the query threads and sets the ingest threads back after it).
if (writer !== undefined && process.env['DUCKDB_SQL'] !== undefined && writer.store instanceof DuckDbStore)
  await writer.store.sql(process.env['DUCKDB_SQL'])
if (writer !== undefined && process.env['FAST'] !== '0') col.columnSink = writer
const key = {
  protocol: 'udp' as const,
  exporterAddress: '127.0.0.1',
  exporterPort: 40000,
  collectorAddress: '127.0.0.1',
  collectorPort: 4739,
}
const u0 = process.cpuUsage()
const t0 = process.hrtime.bigint()
let stored = 0
for (let d = 0; d < stream.datagrams.length; d++) {
  const o = col.decode(stream.datagrams[d]!, key)
  if (writer !== undefined) stored += storeRecords(writer, o)
  else stored += o.records.length
  // Let flushes run as they would between datagrams.
  if (d % 64 === 0) await new Promise((r) => setImmediate(r))
}
if (writer !== undefined) await writer.flush()
// count() commits what the store still holds, so it is part of the measured work.
const count = writer !== undefined ? await writer.store.count() : stored
const u = process.cpuUsage(u0)
const wallMs = Number(process.hrtime.bigint() - t0) / 1e6
const cpuS = (u.user + u.system) / 1e6
console.log(
  `${url.split(':')[0]}: ${stored} records decoded, ${count} stored, ${cpuS.toFixed(2)} CPU s ` +
    `(${wallMs.toFixed(0)} ms wall) = ${Math.round(stored / cpuS).toLocaleString('en-US')} records/CPU s`,
)
if (writer !== undefined) await writer.close()
if (writer?.store instanceof DuckDbStore && writer.store.path !== ':memory:' && count > 0)
  console.log(
    `duckdb: file ${statSync(writer.store.path).size} bytes = ${(statSync(writer.store.path).size / count).toFixed(1)} bytes per stored flow`,
  )
await server?.stop()
rmSync(dir, { recursive: true, force: true })
