// The shared store suite (store-suite.ts) on ClickHouse, then what only ClickHouse has: version detection and
// the table's generation, literals through the server (the injection guard), the same answers as DuckDB for
// the same rows, upgrade of an older table, the cluster layout (Distributed over a local table), and the CLI
// (collect/query/store ddl) with clickhouse: URLs. One private clickhouse-server (test/helpers) serves this
// file; each store is its own database, dropped at the end. Skipped, with the reason, without the binary.
import fc from 'fast-check'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { collectCommand } from '../../src/cli/commands/collect.js'
import { queryCommand } from '../../src/cli/commands/query.js'
import { storeCommand } from '../../src/cli/commands/store.js'
import { parseFilter } from '../../src/query/filter.js'
import { compileQuery, type FlowQuery } from '../../src/query/sql.js'
import { COLUMNS, COLUMN_BY_NAME, COMPUTED_COLUMNS } from '../../src/schema/columns.js'
import { ClickHouseStore } from '../../src/store/clickhouse.js'
import { clusterDdl } from '../../src/store/clickhouse-ddl.js'
import { ClickHouseDialect, chString } from '../../src/store/clickhouse-sql.js'
import { generationFor, parseVersion, supportsSkipIndexes } from '../../src/store/clickhouse-version.js'
import { DuckDbStore } from '../../src/store/duckdb.js'
import { normalize } from '../../src/store/normalize.js'
import { BatchWriter } from '../../src/store/store.js'
import { TypedBatch } from '../../src/store/typed-batch.js'
import { WorkerStore } from '../../src/store/worker-store.js'
import { CLICKHOUSE_SKIP, startClickHouse, type ClickHouseServer } from '../helpers/clickhouse-server.js'
import { exportBundledCaptures } from '../helpers/probe-run.js'
import {
  FILTER_CASES,
  NAMES,
  dataset,
  defineStoreSuite,
  everyTypeRows,
  field,
  record,
} from './store-suite.js'

let server: ClickHouseServer | undefined
const databases: string[] = []

beforeAll(async () => {
  if (CLICKHOUSE_SKIP === undefined) server = await startClickHouse()
})
afterAll(async () => {
  if (server === undefined) return
  const s = await ClickHouseStore.open(`${server.url}/default`)
  for (const db of databases) await s.command(`DROP DATABASE IF EXISTS ${db}`)
  await s.close()
  await server.stop()
})

async function open(db: string): Promise<ClickHouseStore> {
  if (server === undefined) throw new Error('no ClickHouse server')
  const s = await ClickHouseStore.open(`${server.url}/${db}`)
  await s.migrate()
  return s
}

/** A typed batch of n rows: src_addr 10.0.0.(i % 250), bytes = first + i, and proto when given. */
function typedRows(n: number, first: number, proto: number | undefined): TypedBatch {
  const b = new TypedBatch()
  b.reserve(n)
  const src = b.column(COLUMN_BY_NAME.get('src_addr')!)
  const bytes = b.column(COLUMN_BY_NAME.get('bytes')!)
  const view = new DataView(bytes.bytes.buffer)
  const p = proto === undefined ? undefined : b.column(COLUMN_BY_NAME.get('proto')!)
  for (let i = 0; i < n; i++) {
    src.strings[i] = `10.0.0.${i % 250}`
    src.valid[i >> 3]! |= 1 << (i & 7)
    view.setBigUint64(i * 8, BigInt(first + i), true)
    bytes.valid[i >> 3]! |= 1 << (i & 7)
    if (p !== undefined && proto !== undefined) {
      p.bytes[i] = proto
      p.valid[i >> 3]! |= 1 << (i & 7)
    }
  }
  b.length = n
  return b
}

defineStoreSuite({
  name: 'ClickHouse',
  skip: CLICKHOUSE_SKIP,
  create: async () => {
    const db = `suite_${databases.length + 1}`
    databases.push(db)
    return { store: await open(db), reopen: () => open(db) }
  },
})

describe.skipIf(CLICKHOUSE_SKIP !== undefined)('ClickHouse backend', () => {
  const url = (db: string): string => {
    if (server === undefined) throw new Error('no ClickHouse server')
    return `${server.url}/${db}`
  }
  const track = (db: string): string => {
    databases.push(db)
    return db
  }

  it('the store thread merges typed batches that queue up behind an insert into fewer inserts', async () => {
    const db = track('merge_thread')
    const s = await WorkerStore.open(`clickhouse:${url(db)}`)
    // 20 batches of 1000 rows queued back to back; the even ones have a protocol, the odd ones none.
    for (let k = 0; k < 20; k++) await s.insertTyped(typedRows(1000, k * 1000, k % 2 === 0 ? 6 : undefined))
    await s.close()
    expect(s.stats).toMatchObject({ queued: 0, stored: 20_000, dropped: 0, failed: 0 })
    const c = await ClickHouseStore.open(url(db))
    const r = await c.sql(
      `SELECT count() AS n, sum(bytes) AS b, countIf(proto = 6) AS tcp, countIf(isNull(proto)) AS none FROM ${c.table}`,
    )
    expect(r.rows[0]).toMatchObject({
      n: 20_000n,
      b: BigInt((19_999 * 20_000) / 2),
      tcp: 10_000n,
      none: 10_000n,
    })
    // Each insert makes one part at level 0 (merges make higher levels): fewer inserts than batches.
    const parts = await c.sql(
      `SELECT count() AS p FROM system.parts WHERE database = '${db}' AND table = 'flows' AND level = 0`,
    )
    expect(Number(parts.rows[0]?.['p'])).toBeGreaterThan(0)
    expect(Number(parts.rows[0]?.['p'])).toBeLessThan(20)
    await c.close()
  })

  it('detects the server version and creates the table in its generation', async () => {
    const s = await open(track('version'))
    expect(s.generation).toBe(generationFor(parseVersion(s.version.text)))
    const types = (
      await s.sql("SELECT name, type FROM system.columns WHERE database = 'version' AND table = 'flows'")
    ).rows
    const type = (n: string): unknown => types.find((t) => t.name === n)?.type
    // The stored columns, and on 18.16 tables the computed IPv4 ones.
    expect(types).toHaveLength(COLUMNS.length + (s.generation === 'legacy' ? COMPUTED_COLUMNS.length : 0))
    if (s.generation === 'legacy') {
      expect(type('src_ip_key')).toBe('Nullable(FixedString(16))')
      expect(type('time_received')).toBe('UInt64')
      for (const t of types) expect(String(t.type)).not.toMatch(/LowCardinality|DateTime64|IPv6|Bool/)
    } else {
      expect(type('src_ip_key')).toBe('Nullable(IPv6)')
      expect(String(type('time_received'))).toMatch(/^DateTime64\(6/)
    }
    await s.close()
  })

  it('sends every string through the literal writer and gets it back from the server', async () => {
    const s = await open(track('literals'))
    const nasty = [
      "it's",
      "\\'",
      "x'; DROP TABLE literals.flows; --",
      "1' OR '1'='1",
      'back\\slash \\x41 \\n',
      'tab\tnl\ncr\rnul\0del\x7f',
      'ünïcødé 🚀 ' + '\u2028',
      '',
    ]
    const random = fc.sample(fc.string({ unit: 'grapheme', maxLength: 40 }), { numRuns: 300, seed: 7 })
    const all = [...nasty, ...random]
    for (let i = 0; i < all.length; i += 50) {
      const part = all.slice(i, i + 50)
      const r = await s.sql(`SELECT [${part.map(chString).join(', ')}] AS a`)
      expect(JSON.parse(String(r.rows[0]?.a ?? 'null'))).toEqual(part)
    }
    expect(await s.count()).toBe(0)
    await s.close()
  })

  it('gives the same answers as DuckDB for the same rows', async () => {
    const ch = await open(track('same'))
    const duck = await DuckDbStore.open(':memory:')
    await duck.migrate()
    // Not the row with 2^64−1 counters: DuckDB refuses to add two of them (overflow error), ClickHouse wraps.
    const rows = [...dataset(), ...everyTypeRows(1_800_000_000_000_000n).slice(1)]
    for (let i = 0; i < 300; i++)
      rows.push(
        normalize(
          record([
            field('flowStartMilliseconds', 'dateTimeMilliseconds', 1_700_000_000_000n + BigInt(i * 7)),
            field('sourceIPv4Address', 'ipv4Address', `10.${i % 3}.${i % 7}.${i % 11}`),
            field('destinationIPv6Address', 'ipv6Address', `2001:db8::${(i % 5).toString(16)}`),
            field('destinationTransportPort', 'unsigned16', [443, 80, 53, 22][i % 4] ?? 0),
            field('protocolIdentifier', 'unsigned8', i % 4 === 2 ? 17 : 6),
            field('octetDeltaCount', 'unsigned64', BigInt((i * 7919) % 100_000)),
            field('packetDeltaCount', 'unsigned64', BigInt(1 + (i % 13))),
            field('tcpControlBits', 'unsigned16', i % 32),
            field('applicationName', 'string', ['https', 'dns', "it's", 'ssh'][i % 4] ?? ''),
          ]),
          1_800_000_000_000_000n + BigInt(i),
        ),
      )
    for (const st of [ch, duck]) {
      const w = new BatchWriter(st, NAMES, { maxRows: 128 })
      for (const r of rows) w.add(r)
      await w.flush()
    }
    const queries: FlowQuery[] = [
      ...FILTER_CASES.map(([f]) => ({ filter: parseFilter(f), allColumns: true, limit: 1000 })),
      { allColumns: true, orderBy: 'bytes', limit: 50 },
      { since: 1_700_000_000_500_000n, until: 1_700_000_001_000_000n, limit: 1000 },
      ...(['bytes', 'packets', 'flows'] as const).flatMap((by) => [
        { top: ['srcip'], by, limit: 10 },
        { top: ['dstip', 'dstport'], by, limit: 10 },
        { top: ['app', 'proto'], by, filter: parseFilter('not port 53 and flags S') },
        { top: ['src_mac'], by },
        { top: ['time_start', 'flowtel_tcp_sack_permitted'], by, limit: 5 },
      ]),
    ]
    for (const q of queries) {
      const [a, b] = [await ch.query(q), await duck.query(q)]
      expect(
        a.columns,
        JSON.stringify(q, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
      ).toEqual(b.columns)
      expect(a.rows).toEqual(b.rows)
    }
    await ch.close()
    await duck.close()
  })

  it('time windows: minmax indexes on the flow times where the server takes them, and the rows a window reads', async () => {
    const db = track('pruning')
    const s = await open(db)
    const indexed = supportsSkipIndexes(s.version)
    expect(await s.indexes()).toEqual(indexed ? new Set(['time_start_minmax', 'time_end_minmax']) : new Set())
    // Three inserts (three parts, merges stopped) of 100 flows each, starting in hours 0, 1 and 2 but all
    // received in the same second: the sort key (time_received) cannot tell them apart.
    if (indexed) await s.command(`SYSTEM STOP MERGES ${db}.flows`)
    const w = new BatchWriter(s, NAMES)
    const hour = 3_600_000n
    for (let h = 0n; h < 3n; h++) {
      for (let i = 0n; i < 100n; i++)
        w.add(
          normalize(
            record([
              field('flowStartMilliseconds', 'dateTimeMilliseconds', 1_700_000_000_000n + h * hour + i),
              field('protocolIdentifier', 'unsigned8', 6),
            ]),
            1_700_010_000_000_000n + i,
          ),
        )
      await w.flush()
    }
    const q: FlowQuery = {
      top: ['proto'],
      by: 'flows',
      since: (1_700_000_000_000n + hour) * 1000n,
      until: (1_700_000_000_000n + 2n * hour) * 1000n,
    }
    expect((await s.query(q)).rows.map((r) => r.flows)).toEqual([100n])
    // What the server read for the query the store sends (the HTTP JSON format's statistics): the one part of
    // the hour asked for with the index, all three without (18.16).
    const sql = compileQuery(q, new ClickHouseDialect(s.table, s.generation)).sql
    expect(sql).toContain('time_start >= ')
    const res = await fetch(`${server?.url ?? ''}/?database=${db}`, {
      method: 'POST',
      body: `${sql} FORMAT JSON`,
    })
    expect(res.ok).toBe(true)
    const body = (await res.json()) as { statistics: { rows_read: number } }
    expect(body.statistics.rows_read).toBe(indexed ? 100 : 300)
    await w.close()
  })

  it('upgrades a table made by an older column table in place', async () => {
    const db = track('upgrade')
    const s = await ClickHouseStore.open(url(db))
    await s.command(`CREATE DATABASE ${db}`)
    await s.command(`CREATE TABLE ${db}.flowtel_migrations (name String, applied UInt32) ENGINE = TinyLog`)
    await s.command(`INSERT INTO ${db}.flowtel_migrations VALUES ('0001_flows', 0)`)
    await s.command(
      `CREATE TABLE ${db}.flows (time_received UInt64, exporter String, src_addr Nullable(String), ` +
        'bytes Nullable(UInt64)) ENGINE = MergeTree() ORDER BY (time_received, exporter)',
    )
    await s.command(`INSERT INTO ${db}.flows VALUES (1, '192.0.2.1', '10.0.0.1', 42)`)
    await s.migrate()
    expect(s.generation).toBe('legacy') // the table's, whatever the server
    const w = new BatchWriter(s, NAMES)
    w.add(normalize(record([field('sourceIPv4Address', 'ipv4Address', '10.0.0.2')]), 2n))
    await w.flush()
    const back = (await s.query({ allColumns: true })).rows
    expect(back.map((r) => [r.src_addr, r.bytes, r.proto, r.time_received])).toEqual([
      ['10.0.0.1', 42n, null, 1n],
      ['10.0.0.2', null, null, 2n],
    ])
    // The computed IPv4 columns are added (old parts compute them on read) and top-N groups by them.
    const kinds = await s.sql(
      `SELECT name, default_kind FROM system.columns WHERE database = '${db}' AND table = 'flows' ` +
        "AND name IN ('src_ip4', 'dst_ip4') ORDER BY name",
    )
    expect(kinds.rows).toEqual([
      { name: 'dst_ip4', default_kind: 'MATERIALIZED' },
      { name: 'src_ip4', default_kind: 'MATERIALIZED' },
    ])
    // The old row has no address key (the key column came later): it is the no-address group.
    const top = await s.query({ top: ['src_addr'], by: 'flows' })
    expect(top.rows.map((r) => [r.src_addr, r.flows, r.bytes])).toEqual([
      ['10.0.0.2', 1n, 0n],
      [null, 1n, 42n],
    ])
    await w.close()
  })

  it('runs the cluster layout (replication left out) with a Distributed table over one shard', async () => {
    const db = track('cluster')
    const admin = await ClickHouseStore.open(url('default'))
    const ddl = clusterDdl({ cluster: 'flowtel_test', database: db, generation: admin.serverGeneration })
    for (const statement of ddl)
      await admin.command(
        statement
          .replace(/ ON CLUSTER flowtel_test/g, '')
          .replace(/ReplicatedMergeTree\([^)]*\)/, 'MergeTree()'),
      )
    await admin.close()
    const s = await ClickHouseStore.open(url(db))
    await s.migrate()
    expect(s.engine).toBe('Distributed')
    const w = new BatchWriter(s, NAMES)
    for (const r of dataset()) w.add(r)
    await w.flush()
    // Inserts into a Distributed table reach the shards in the background.
    const deadline = Date.now() + 30_000
    while ((await s.count()) < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    expect(await s.count()).toBe(6)
    const top = await s.query({ top: ['dst_addr'], by: 'flows', filter: parseFilter('proto tcp') })
    expect(top.rows.map((r) => [r.dst_addr, r.flows])).toEqual([
      ['192.0.2.80', 2n],
      ['198.51.100.7', 2n],
    ])
    await w.close()
  })

  it('flowtel collect --store clickhouse: and flowtel query give what DuckDB gives', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowtel-ch-cli-'))
    try {
      const ipfix = join(dir, 'flows.ipfix')
      await exportBundledCaptures(ipfix)
      const chUrl = `clickhouse:${url(track('cli'))}`
      const duckUrl = `duckdb:${join(dir, 'flows.duckdb')}`
      for (const store of [chUrl, duckUrl])
        await quiet(() =>
          collectCommand().parseAsync(['--read', ipfix, '--store', store, '--no-summary'], { from: 'user' }),
        )
      for (const args of [
        ['--top', 'srcip,dstport', '--by', 'bytes', '-n', '5'],
        ['-f', 'proto udp and port 53', '--format', 'json', '-n', '100'],
        ['--top', 'proto', '--by', 'flows', '--format', 'csv'],
      ]) {
        const a = await quiet(() => queryCommand().parseAsync(['--store', chUrl, ...args], { from: 'user' }))
        const b = await quiet(() =>
          queryCommand().parseAsync(['--store', duckUrl, ...args], { from: 'user' }),
        )
        expect(a.trim().split('\n').length).toBeGreaterThan(1)
        expect(a).toBe(b)
      }
      await expect(
        quiet(() =>
          queryCommand().parseAsync(['--store', `clickhouse:${url('nothing_here')}`], { from: 'user' }),
        ),
      ).rejects.toThrow(/no flow store at .*nothing_here: table nothing_here\.flows does not exist/)
      // `store ddl` asks the server for its generation; what it prints runs.
      const ddl = await quiet(() =>
        storeCommand().parseAsync(['ddl', '--store', `clickhouse:${url(track('ddl_cli'))}`], {
          from: 'user',
        }),
      )
      const admin = await ClickHouseStore.open(url('default'))
      for (const statement of ddl
        .split(';\n')
        .map((x) => x.trim())
        .filter((x) => x !== ''))
        await admin.command(statement)
      await admin.close()
      const made = await ClickHouseStore.open(url('ddl_cli'))
      expect(made.exists).toBe(true)
      await made.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

async function quiet(f: () => Promise<unknown>): Promise<string> {
  let out = ''
  const w = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s)
    return true
  })
  const e = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
  try {
    await f()
  } finally {
    w.mockRestore()
    e.mockRestore()
  }
  return out
}
