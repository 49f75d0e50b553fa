// Lazy physical columns of the DuckDB store (duckdb.ts "Lazy columns", schema/ddl.ts): a new file stores the
// core columns only and adds a column the first time a batch holds a value for it; `flows` (a view) shows
// every column, an absent one as NULL. Checked against a file of the full layout (what releases before lazy
// columns made): the same rows give the same answers to filters, top-N, listings and raw SQL; a column
// appearing later (in an open appender, after commits, after reopening, past the first chunk) is stored and
// read back; inserts and queries issued together see each other in order, in this thread and in the store
// thread; a full-layout file keeps its layout and keeps working.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { field, record } from '../../test/helpers/flow-records.js'
import { ipfixMessage, type IpfixFieldSpec } from '../../test/helpers/ipfix-messages.js'
import { FlowCollector } from '../collector/decode-message.js'
import type { DecodedField } from '../ipfix/decoder.js'
import { parseFilter } from '../query/filter.js'
import type { FlowQuery } from '../query/sql.js'
import { COLUMNS } from '../schema/columns.js'
import { CORE_COLUMNS, FLOWS_STORED, duckdbCreateTable } from '../schema/ddl.js'
import { DuckDbStore } from './duckdb.js'
import { storeRecords } from './ingest.js'
import { normalize, type FlowRow } from './normalize.js'
import { duckdbOptionsTable } from './options-store.js'
import { BatchWriter, emptyBatch, pushRow, type QueryResult } from './store.js'
import { WorkerStore } from './worker-store.js'

const dir = mkdtempSync(join(tmpdir(), 'flowtel-duckdb-lazy-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const names = COLUMNS.map((c) => c.name)
const f = field
let files = 0

/**
 * A migrated store in a new file; `full`: the file as a release before lazy columns left it (its migrate():
 * the migrations table, 0001_flows = the full table, the options table, the capped totals) first.
 */
async function create(layout: 'full' | 'lazy'): Promise<{ store: DuckDbStore; path: string }> {
  const path = join(dir, `s${++files}.duckdb`)
  const store = await DuckDbStore.open(path)
  if (layout === 'full') {
    await store.sql(
      'CREATE TABLE flowtel_migrations (name VARCHAR PRIMARY KEY, applied TIMESTAMP DEFAULT current_timestamp)',
    )
    await store.sql(duckdbCreateTable())
    await store.sql(duckdbOptionsTable())
    await store.sql(
      "INSERT INTO flowtel_migrations (name) VALUES ('0001_flows'), ('0002_options'), ('0003_totals_int64')",
    )
  }
  await store.migrate()
  return { store, path }
}

async function reopen(path: string): Promise<DuckDbStore> {
  const s = await DuckDbStore.open(path)
  await s.migrate()
  return s
}

async function storedColumns(s: DuckDbStore, table: string): Promise<string[]> {
  const r = await s.sql(
    `SELECT column_name FROM information_schema.columns WHERE table_name = '${table}' ORDER BY ordinal_position`,
  )
  return r.rows.map((x) => String(x.column_name))
}

const RECEIVED = 1_800_000_000_000_000n

/** A router-like record: 5-tuple, times, counters; `more` adds fields (absent columns in the base set). */
function flow(i: number, more: DecodedField[] = []): FlowRow {
  return normalize(
    record([
      f('flowStartMilliseconds', 'dateTimeMilliseconds', 1_700_000_000_000n + BigInt(i)),
      f('flowEndMilliseconds', 'dateTimeMilliseconds', 1_700_000_001_000n + BigInt(i)),
      f('sourceIPv4Address', 'ipv4Address', `10.0.${i % 3}.${i % 250}`),
      f('destinationIPv4Address', 'ipv4Address', `192.0.2.${i % 7}`),
      f('sourceTransportPort', 'unsigned16', 40000 + (i % 100)),
      f('destinationTransportPort', 'unsigned16', [53, 80, 443][i % 3]!),
      f('protocolIdentifier', 'unsigned8', i % 3 === 0 ? 17 : 6),
      f('octetDeltaCount', 'unsigned64', BigInt(100 + i)),
      f('packetDeltaCount', 'unsigned64', BigInt(1 + (i % 5))),
      ...more,
    ]),
    RECEIVED + BigInt(i),
  )
}

/** The same fields as extra elements of the later batches: columns a router-only file never had. */
function l7(i: number): DecodedField[] {
  return [
    f('vlanId', 'unsigned16', i % 4),
    f('tcpControlBits', 'unsigned16', i % 2 === 0 ? 0x12 : 0x10),
    f('httpRequestHost', 'string', `h${i % 5}.example.com`),
    f('httpStatusCode', 'unsigned16', i % 3 === 0 ? 503 : 200),
    f('sourceMacAddress', 'macAddress', new Uint8Array([0, 0x11, 0x22, 0x33, 0x44, 0x55])),
    f('flowtelTcpSackPermitted', 'boolean', i % 2 === 0),
    f('reverseOctetDeltaCount', 'unsigned64', BigInt(7 * i)),
    f('unknownThing', 'unsigned32', i),
  ]
}

async function addRows(store: DuckDbStore, rows: FlowRow[]): Promise<void> {
  const w = new BatchWriter(store, names, { maxRows: 1_000_000 })
  for (const r of rows) w.add(r)
  await w.flush()
}

/** Filters, top-N, listings and raw SQL over columns held and not held. */
const QUERIES: FlowQuery[] = [
  ...[
    'vlan = 1',
    'not vlan = 1',
    'vlan != 1',
    'vlan < 3',
    'http.host = "h1.example.com"',
    'not http.host ~ "h1*"',
    'http.status >= 500',
    'not http.status >= 500',
    'flags S',
    'not flags S',
    'flags A and proto tcp',
    'npm_tcp_retransmission > 0',
    'not npm_tcp_retransmission > 0',
    'tls.sni ~ "*.example.com"',
    'src_mac = "00:11:22:33:44:55"',
    'flowtel_tcp_sack_permitted = true',
    'bytes > 150 and not vlan = 2',
    'app = "x" or port 53',
  ].map((s) => ({ filter: parseFilter(s), limit: 1000, allColumns: true })),
  ...(['flows', 'bytes', 'packets'] as const).flatMap((by) =>
    [['vlan'], ['http_host'], ['tcp_flags', 'proto'], ['src_mac', 'dst_port'], ['tls_sni'], ['src_addr']].map(
      (top) => ({ top, by, limit: 50 }),
    ),
  ),
  { top: ['http_status'], filter: parseFilter('not vlan = 3'), limit: 50 },
  { columns: ['src_addr', 'vlan', 'http_host', 'extra', 'rev_bytes', 'total_bytes'], limit: 1000 },
  { allColumns: true, orderBy: 'bytes', limit: 1000 },
]

const RAW = [
  'SELECT * FROM flows ORDER BY time_start',
  'SELECT count(*) AS n, count(vlan) AS v, count(extra) AS e, sum(rev_bytes) AS r FROM flows',
  'SELECT http_host, count(*) AS n FROM flows GROUP BY http_host ORDER BY http_host NULLS FIRST',
  "SELECT count(*) AS n FROM flows WHERE coalesce(tls_sni, '') = ''",
]

async function answers(s: DuckDbStore): Promise<Array<QueryResult>> {
  const out: QueryResult[] = []
  for (const q of QUERIES) out.push(await s.query(q))
  for (const q of RAW) out.push(await s.sql(q))
  return out
}

describe('DuckDB lazy columns', () => {
  it('a new file stores the core columns only; flows shows every column with the full table types', async () => {
    const { store: lazy } = await create('lazy')
    const { store: full } = await create('full')
    expect(await storedColumns(lazy, FLOWS_STORED)).toEqual(names.filter((n) => CORE_COLUMNS.has(n)))
    const describe = async (s: DuckDbStore): Promise<unknown[]> =>
      (await s.sql('DESCRIBE flows')).rows.map((r) => [r.column_name, r.column_type])
    expect(await describe(lazy)).toEqual(await describe(full))
    expect((await describe(lazy)).length).toBe(COLUMNS.length)
    // Ingest always writes the totals and every query reads them: they are core.
    for (const c of COLUMNS) if (c.sumOf !== undefined) expect(CORE_COLUMNS.has(c.name)).toBe(true)
    expect(await full.storedTable()).toBe('flows')
    expect(await lazy.storedTable()).toBe(FLOWS_STORED)
    await lazy.close()
    await full.close()
  })

  it('gives the answers of the full layout, before and after absent columns appear', async () => {
    const { store: lazy, path } = await create('lazy')
    const { store: full } = await create('full')
    const first = Array.from({ length: 300 }, (_, i) => flow(i))
    for (const s of [lazy, full]) await addRows(s, first)
    // Only the core columns are stored; nothing absent was added for the NULL cells.
    expect(await storedColumns(lazy, FLOWS_STORED)).toEqual(names.filter((n) => CORE_COLUMNS.has(n)))
    const before = await answers(full)
    expect(await answers(lazy)).toEqual(before)
    // Several queries select nothing on the absent columns, others every row: not vacuous.
    expect(before[0]!.rows).toHaveLength(0)
    expect(before[1]!.rows).toHaveLength(300)
    const later = Array.from({ length: 300 }, (_, i) => flow(300 + i, l7(i)))
    for (const s of [lazy, full]) await addRows(s, later)
    const after = await answers(full)
    expect(await answers(lazy)).toEqual(after)
    expect(after[0]!.rows.length).toBeGreaterThan(0)
    const stored = await storedColumns(lazy, FLOWS_STORED)
    for (const n of ['vlan', 'tcp_flags', 'http_host', 'http_status', 'src_mac', 'rev_bytes', 'extra'])
      expect(stored).toContain(n)
    expect(stored).not.toContain('tls_sni')
    expect(stored).not.toContain('npm_tcp_retransmission')
    await lazy.close()
    // Reopened: the same answers.
    const again = await reopen(path)
    expect(await answers(again)).toEqual(after)
    await again.close()
    await full.close()
  })

  it('adds a column first held by a later batch: in an open appender, after commits, after reopening', async () => {
    const { store, path } = await create('lazy')
    // Rows still in the appender (not committed) when the next batch brings a new column.
    await store.insert(batchOf([flow(0), flow(1)]))
    await store.insert(batchOf([flow(2, [f('vlanId', 'unsigned16', 42)])]))
    expect((await store.sql('SELECT count(*) AS n, count(vlan) AS v FROM flows')).rows).toEqual([
      { n: 3n, v: 1n },
    ])
    // After a commit (the query above): a column in the last row of a batch longer than a chunk.
    const long = Array.from({ length: 5000 }, (_, i) => flow(10 + i))
    long[4999] = flow(5009, [f('dnsQname', 'string', 'example.org.')])
    await store.insert(batchOf(long))
    expect(
      (await store.query({ filter: parseFilter('dns.qname = "example.org."'), columns: ['src_port'] })).rows,
    ).toEqual([{ src_port: 40009 }])
    await store.close()
    // Reopened: a new column by the typed path (IPFIX data sets through the fast plan) and the record path.
    const again = await reopen(path)
    const w = new BatchWriter(again, names)
    const col = new FlowCollector()
    col.columnSink = w
    const fields: IpfixFieldSpec[] = [
      { id: 8, pen: 0, length: 4 },
      { id: 1, pen: 0, length: 8 },
      { id: 58, pen: 0, length: 2 },
      { id: 10, pen: 0, length: 4 },
      { id: 1, pen: 29305, length: 8 },
    ]
    const u64 = (v: bigint): Buffer => {
      const b = Buffer.alloc(8)
      b.writeBigUInt64BE(v)
      return b
    }
    const msg = ipfixMessage({
      templateId: 300,
      fields,
      records: [0, 1, 2].map((i) => [
        Buffer.from([10, 9, 9, i]),
        u64(1000n + BigInt(i)),
        Buffer.from([0, 7]),
        Buffer.from([0, 0, 0, 3]),
        u64(5n),
      ]),
      withTemplate: true,
    })
    const n = storeRecords(
      w,
      col.decode(msg, {
        protocol: 'udp',
        exporterAddress: '192.0.2.9',
        exporterPort: 4000,
        collectorAddress: '127.0.0.1',
        collectorPort: 4739,
      }),
    )
    expect(n).toBe(3)
    expect(w.fastStats.records).toBe(3)
    w.add(flow(9000, [f('applicationName', 'string', 'later-app')]))
    await w.flush()
    const stored = await storedColumns(again, FLOWS_STORED)
    for (const c of ['vlan', 'dns_qname', 'in_if', 'rev_bytes', 'application']) expect(stored).toContain(c)
    const r = await again.query({
      filter: parseFilter('in if 3 or app = "later-app"'),
      columns: ['src_addr', 'vlan', 'in_if', 'rev_bytes', 'total_bytes', 'application', 'dns_qname'],
      orderBy: 'bytes',
      limit: 10,
    })
    expect(r.rows).toEqual([
      {
        src_addr: '10.0.0.0',
        vlan: null,
        in_if: null,
        rev_bytes: null,
        total_bytes: 9100n,
        application: 'later-app',
        dns_qname: null,
      },
      {
        src_addr: '10.9.9.2',
        vlan: 7,
        in_if: 3,
        rev_bytes: 5n,
        total_bytes: 1007n,
        application: null,
        dns_qname: null,
      },
      {
        src_addr: '10.9.9.1',
        vlan: 7,
        in_if: 3,
        rev_bytes: 5n,
        total_bytes: 1006n,
        application: null,
        dns_qname: null,
      },
      {
        src_addr: '10.9.9.0',
        vlan: 7,
        in_if: 3,
        rev_bytes: 5n,
        total_bytes: 1005n,
        application: null,
        dns_qname: null,
      },
    ])
    expect(await again.count()).toBe(5003 + 4)
    // Retention deletes from the stored table; the view follows.
    expect(await again.retain({ maxRows: 4 })).toBe(5003)
    expect(await again.count()).toBe(4)
    await again.close()
  })

  it('runs inserts and queries issued together in order, columns appearing between them', async () => {
    const { store } = await create('lazy')
    const pending: Array<Promise<unknown>> = []
    const counts: Array<Promise<QueryResult>> = []
    const want: Array<{ n: bigint; v: bigint; h: bigint }> = []
    let n = 0
    let v = 0
    let h = 0
    for (let k = 0; k < 12; k++) {
      const rows = Array.from({ length: 100 }, (_, i) => {
        const more: DecodedField[] = []
        if (k >= 4) more.push(f('vlanId', 'unsigned16', k))
        if (k >= 8 && i % 2 === 0) more.push(f('httpRequestHost', 'string', `k${k}`))
        return flow(k * 100 + i, more)
      })
      n += rows.length
      v += k >= 4 ? rows.length : 0
      h += k >= 8 ? rows.length / 2 : 0
      pending.push(store.insert(batchOf(rows)))
      counts.push(store.sql('SELECT count(*) AS n, count(vlan) AS v, count(http_host) AS h FROM flows'))
      want.push({ n: BigInt(n), v: BigInt(v), h: BigInt(h) })
    }
    await Promise.all(pending)
    expect((await Promise.all(counts)).map((r) => r.rows[0])).toEqual(want)
    await store.close()
  })

  it('the store thread: queries queued between inserts see every row before them', async () => {
    const path = join(dir, 'worker.duckdb')
    const s = await WorkerStore.open(`duckdb:${path}`)
    const tops: Array<Promise<QueryResult>> = []
    const inserts: Array<Promise<void>> = []
    for (let k = 0; k < 6; k++) {
      inserts.push(
        s.insert(batchOf(Array.from({ length: 50 }, (_, i) => flow(k * 50 + i, k >= 3 ? l7(k) : [])))),
      )
      tops.push(s.query({ top: ['vlan'], by: 'flows' }))
    }
    await Promise.all(inserts)
    const groups = (await Promise.all(tops)).map((r) => r.rows.map((x) => [x.vlan, x.flows]))
    expect(groups).toEqual([
      [[null, 50n]],
      [[null, 100n]],
      [[null, 150n]],
      [
        [null, 150n],
        [3, 50n],
      ],
      [
        [null, 150n],
        [0, 50n],
        [3, 50n],
      ],
      [
        [null, 150n],
        [0, 50n],
        [1, 50n],
        [3, 50n],
      ],
    ])
    await s.close()
  })

  it('keeps a file of the full layout as it is, and it keeps working', async () => {
    const { store, path } = await create('full')
    await addRows(
      store,
      Array.from({ length: 20 }, (_, i) => flow(i, i % 2 === 0 ? l7(i) : [])),
    )
    await store.close()
    const again = await reopen(path)
    expect(await again.migrations()).toEqual(['0001_flows', '0002_options', '0003_totals_int64'])
    const tables = (
      await again.sql(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_name LIKE 'flows%'",
      )
    ).rows
    expect(tables).toEqual([{ table_name: 'flows', table_type: 'BASE TABLE' }])
    expect(await storedColumns(again, 'flows')).toEqual(names)
    await addRows(again, [flow(100, [f('tlsSni', 'string', 'a.example.com')])])
    expect((await again.query({ filter: parseFilter('tls.sni ~ "*.example.com"') })).rows).toHaveLength(1)
    expect((await again.query({ top: ['vlan'], by: 'flows' })).rows.map((r) => [r.vlan, r.flows])).toEqual([
      [null, 11n],
      [0, 5n],
      [2, 5n],
    ])
    expect(await again.retain({ maxRows: 5 })).toBe(16)
    await again.close()
  })

  it('keeps a stored column this release does not know (a later one added it) in flows, NULL in new rows', async () => {
    const { store, path } = await create('lazy')
    await addRows(store, [flow(1)])
    await store.sql(`ALTER TABLE ${FLOWS_STORED} ADD COLUMN future_metric UINTEGER`)
    await store.sql(`UPDATE ${FLOWS_STORED} SET future_metric = 9`)
    await store.close()
    const again = await reopen(path)
    await addRows(again, [flow(2, [f('vlanId', 'unsigned16', 4)])])
    expect(
      (await again.sql('SELECT src_port, vlan, future_metric FROM flows ORDER BY src_port')).rows,
    ).toEqual([
      { src_port: 40001, vlan: null, future_metric: 9 },
      { src_port: 40002, vlan: 4, future_metric: null },
    ])
    await again.close()
  })

  it('storedTable(names) adds the columns an INSERT … SELECT writes', async () => {
    const { store } = await create('lazy')
    const t = await store.storedTable(['vlan', 'time_received', 'no_such_column'])
    await store.sql(`INSERT INTO ${t} (time_received, vlan, total_bytes) SELECT now(), 5, 1 FROM range(3)`)
    expect((await store.query({ top: ['vlan'], by: 'flows' })).rows.map((r) => [r.vlan, r.flows])).toEqual([
      [5, 3n],
    ])
    await store.close()
  })
})

/** Rows as a plain column batch (the record path's). */
function batchOf(rows: FlowRow[]): ReturnType<typeof emptyBatch> {
  const b = emptyBatch(names)
  for (const r of rows) pushRow(b, r, names)
  return b
}
