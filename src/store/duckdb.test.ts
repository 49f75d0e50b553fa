// DuckDB-only store behaviour: store URLs, the migrations table, and upgrading a file made by an older column
// table. What every backend must do (round trips, filters, retention, flush on close) is in
// test/store/store-suite.ts, run for DuckDB by test/store/duckdb.test.ts.
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { field, record } from '../../test/helpers/flow-records.js'
import { COLUMNS, COLUMN_BY_NAME } from '../schema/columns.js'
import { DuckDbStore, MEMORY_LIMIT, parseStoreUrl } from './duckdb.js'
import { TOTAL_MAX, normalize, type FlowRow } from './normalize.js'
import { BatchWriter, emptyBatch } from './store.js'
import { TypedBatch } from './typed-batch.js'

const dir = mkdtempSync(join(tmpdir(), 'flowtel-duckdb-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const names = COLUMNS.map((c) => c.name)

const f = field

function flow(i: number, receivedMs: number): FlowRow {
  return normalize(
    record([
      f('flowStartMilliseconds', 'dateTimeMilliseconds', 1_700_000_000_000n + BigInt(i)),
      f('sourceIPv4Address', 'ipv4Address', `10.0.0.${i % 250}`),
      f('destinationIPv6Address', 'ipv6Address', '2001:db8::1'),
      f('octetDeltaCount', 'unsigned64', BigInt(100 * i)),
    ]),
    BigInt(receivedMs) * 1000n,
  )
}

async function openStore(name: string): Promise<DuckDbStore> {
  const s = await DuckDbStore.open(join(dir, name))
  await s.migrate()
  return s
}

describe('DuckDB store', () => {
  it('parses store URLs', () => {
    expect(parseStoreUrl('duckdb:/tmp/x.duckdb')).toEqual({
      kind: 'duckdb',
      path: '/tmp/x.duckdb',
      options: {},
    })
    expect(parseStoreUrl('duckdb').path).toBe('./data/flowtel.duckdb')
    expect(() => parseStoreUrl('mysql://x')).toThrow(/unsupported store/)
    expect(parseStoreUrl('duckdb:/tmp/x.duckdb?ingest_threads=2&query_threads=8')).toEqual({
      kind: 'duckdb',
      path: '/tmp/x.duckdb',
      options: { ingestThreads: 2, queryThreads: 8 },
    })
    expect(parseStoreUrl('duckdb:?query_threads=3')).toEqual({
      kind: 'duckdb',
      path: './data/flowtel.duckdb',
      options: { queryThreads: 3 },
    })
    // A ? not followed by settings is part of the path.
    expect(parseStoreUrl('duckdb:/tmp/what?.duckdb').path).toBe('/tmp/what?.duckdb')
    expect(() => parseStoreUrl('duckdb:/tmp/x.duckdb?threads=2')).toThrow(/unknown setting threads/)
    expect(() => parseStoreUrl('duckdb:/tmp/x.duckdb?ingest_threads=0')).toThrow(/1 to 9999/)
    expect(() => parseStoreUrl('duckdb:/tmp/x.duckdb?ingest_threads=x')).toThrow(/1 to 9999/)
  })

  it('parses and checks the memory limit and checkpoint rows of a store URL', () => {
    expect(parseStoreUrl('duckdb:/tmp/x.duckdb?memory_limit=512MB&checkpoint_rows=0').options).toEqual({
      memoryLimit: '512MB',
      checkpointRows: 0,
    })
    expect(parseStoreUrl('duckdb:?memory_limit=2GiB&checkpoint_rows=1000000').options).toEqual({
      memoryLimit: '2GiB',
      checkpointRows: 1_000_000,
    })
    for (const bad of ['512', '0MB', 'lots', "1GB'; DROP TABLE flows; --", '1.5GB', ''])
      expect(() => parseStoreUrl(`duckdb:/tmp/x.duckdb?memory_limit=${bad}`)).toThrow(/memory limit/)
    for (const bad of ['-1', 'x', '1e6', ''])
      expect(() => parseStoreUrl(`duckdb:/tmp/x.duckdb?checkpoint_rows=${bad}`)).toThrow(/checkpoint_rows/)
  })

  it('sets DuckDB memory_limit from the option, and MEMORY_LIMIT unless given', async () => {
    const limit = async (s: DuckDbStore): Promise<unknown> =>
      (await s.sql("SELECT current_setting('memory_limit') AS m")).rows[0]?.m
    const set = await DuckDbStore.open(':memory:', { memoryLimit: '300MB' })
    expect(await limit(set)).toBe('286.1 MiB') // DuckDB prints sizes in MiB
    await set.close()
    const dflt = await DuckDbStore.open(':memory:')
    expect(await limit(dflt)).toBe('953.6 MiB') // MEMORY_LIMIT, 1GB
    await dflt.close()
    expect(MEMORY_LIMIT).toBe('1GB')
  })

  it('checkpoints every checkpointRows committed rows, so the write-ahead log is emptied while ingesting', async () => {
    const wal = join(dir, 'steps.duckdb.wal')
    const walSize = (): number => (existsSync(wal) ? statSync(wal).size : 0)
    const insert = async (s: DuckDbStore, n: number): Promise<void> => {
      const w = new BatchWriter(s, names)
      for (let i = 0; i < n; i++) w.add(flow(i, 1_700_000_000_000))
      await w.flush()
      await s.count() // commits the appended rows
    }
    // Commits of 100 rows go through the log (smaller than a row group).
    const s = await DuckDbStore.open(join(dir, 'steps.duckdb'), { commitRows: 100, checkpointRows: 300 })
    await s.migrate()
    await s.sql('CHECKPOINT')
    await insert(s, 100)
    await insert(s, 100)
    expect(walSize()).toBeGreaterThan(0)
    await insert(s, 100) // 300 rows committed: checkpointed at this commit
    await insert(s, 1) // the checkpoint ran after that commit, before this insert
    const afterCheckpoint = walSize()
    await s.close({ checkpoint: false })
    // Without steps (0): the log only grows until close.
    const never = await DuckDbStore.open(join(dir, 'steps.duckdb'), { commitRows: 100, checkpointRows: 0 })
    await never.migrate()
    await never.sql('CHECKPOINT')
    for (let k = 0; k < 4; k++) await insert(never, 100)
    const withoutSteps = walSize()
    await never.close()
    expect(afterCheckpoint).toBeLessThan(withoutSteps / 2)
  })

  it('appends with the ingest threads and queries with the query threads', async () => {
    const threads = async (s: DuckDbStore): Promise<unknown> =>
      (await s.sql("SELECT current_setting('threads') AS t")).rows[0]?.t
    const s = await DuckDbStore.open(join(dir, 'threads.duckdb'), { ingestThreads: 1, queryThreads: 3 })
    await s.migrate()
    expect(s.threads).toEqual({ ingest: 1, query: 3 })
    // A query runs with the query threads.
    expect(await threads(s)).toBe(3n)
    const w = new BatchWriter(s, names)
    w.add(flow(1, Date.now()))
    await w.flush()
    expect(await s.count()).toBe(1)
    await s.close()
    // Defaults: one thread for ingest, DuckDB's own for queries.
    const d = await openStore('threads.duckdb')
    expect(d.threads.ingest).toBe(1)
    expect(BigInt(d.threads.query)).toBe(await threads(d))
    await d.close()
  })

  it('closes without its checkpoint when asked (a shutdown past its deadline); the next open replays the log', async () => {
    const s = await openStore('interrupted.duckdb')
    const w = new BatchWriter(s, names)
    for (let i = 0; i < 100; i++) w.add(flow(i, 1_700_000_000_000))
    await w.flush()
    await s.close({ checkpoint: false })
    expect(statSync(join(dir, 'interrupted.duckdb.wal')).size).toBeGreaterThan(0)
    const again = await openStore('interrupted.duckdb')
    expect(await again.count()).toBe(100)
    await again.close()
    expect(existsSync(join(dir, 'interrupted.duckdb.wal'))).toBe(false)
  })

  it('migrates idempotently, also reopening the file', async () => {
    const s = await openStore('m.duckdb')
    await s.migrate()
    await s.migrate()
    // A new file: the lazy layout's table, never the full one (0001_flows).
    expect(await s.migrations()).toEqual(['0002_options', '0003_totals_int64', '0004_flows_lazy'])
    await s.close()
    const again = await openStore('m.duckdb')
    expect(await again.migrations()).toEqual(['0002_options', '0003_totals_int64', '0004_flows_lazy'])
    await again.close()
  })

  it('caps totals stored above 2^63-1 (before the cap moved) once, at migrate', async () => {
    const s = await openStore('cap.duckdb')
    const w = new BatchWriter(
      s,
      COLUMNS.map((c) => c.name),
    )
    w.add(normalize(record([field('octetDeltaCount', 'unsigned64', 5n)])))
    await w.close()
    const s2 = await openStore('cap.duckdb')
    // What an older version stored, and its migration list without the step.
    await s2.sql(`UPDATE ${await s2.storedTable()} SET total_bytes = ${(1n << 64n) - 1n}`)
    await s2.sql(`DELETE FROM flowtel_migrations WHERE name = '0003_totals_int64'`)
    await s2.close()
    const s3 = await openStore('cap.duckdb')
    expect((await s3.sql('SELECT total_bytes FROM flows')).rows).toEqual([{ total_bytes: TOTAL_MAX }])
    expect((await s3.query({ top: ['proto'], by: 'bytes' })).rows[0]?.bytes).toBe(TOTAL_MAX)
    await s3.close()
  })

  it('upgrades a file made by an older column table in place', async () => {
    const path = join(dir, 'old.duckdb')
    const old = await DuckDbStore.open(path)
    // The saved state of an older release: the migrations table and a flows table with fewer columns.
    await old.sql('CREATE TABLE flowtel_migrations (name VARCHAR PRIMARY KEY, applied TIMESTAMP)')
    await old.sql("INSERT INTO flowtel_migrations VALUES ('0001_flows', now())")
    await old.sql('CREATE TABLE flows (time_received TIMESTAMP, src_addr VARCHAR, bytes UBIGINT)')
    await old.sql("INSERT INTO flows VALUES (now(), '10.0.0.1', 42)")
    await old.close()
    const s = await openStore('old.duckdb')
    const cols = (await s.sql('DESCRIBE flows')).rows.map((r) => r.column_name)
    expect(cols).toEqual(expect.arrayContaining(names))
    expect((await s.sql('SELECT src_addr, bytes, proto FROM flows')).rows).toEqual([
      { src_addr: '10.0.0.1', bytes: 42n, proto: null },
    ])
    const w = new BatchWriter(s, names)
    w.add(flow(1, Date.now()))
    await w.close()
    const again = await openStore('old.duckdb')
    expect(await again.count()).toBe(2)
    await again.close()
  })

  it('stores text as given, inline-short, long, non-ASCII and NULL, by both insert paths', async () => {
    const samples = [
      '',
      'a',
      '10.0.0.1',
      'abcdefghijkl',
      'abcdefghijklm',
      'é',
      '日本語',
      'abcdefghijké',
      null,
    ]
    // More rows than one 2048-row chunk, every sample at varied offsets.
    const texts = Array.from({ length: 5000 }, (_, i) => samples[(i * 7) % samples.length] ?? null)
    const s = await openStore('text.duckdb')
    const plain = emptyBatch(names)
    plain.length = texts.length
    plain.columns['src_addr'] = texts
    plain.columns['bytes'] = texts.map((_, i) => BigInt(i))
    await s.insert(plain)
    const typed = new TypedBatch()
    typed.reserve(texts.length)
    const src = typed.column(COLUMN_BY_NAME.get('src_addr')!)
    const bytes = typed.column(COLUMN_BY_NAME.get('bytes')!)
    texts.forEach((t, i) => {
      if (t !== null) {
        src.strings[i] = t
        src.valid[i >> 3]! |= 1 << (i & 7)
      }
      new DataView(bytes.bytes.buffer).setBigUint64(i * 8, BigInt(texts.length + i), true)
      bytes.valid[i >> 3]! |= 1 << (i & 7)
    })
    typed.length = texts.length
    await s.insertTyped(typed)
    const rows = (await s.sql('SELECT src_addr FROM flows ORDER BY bytes')).rows.map((r) => r.src_addr)
    expect(rows).toEqual([...texts, ...texts])
    // Inline strings compare and group like any other (zero padded as DuckDB's own).
    const n = (await s.sql("SELECT count(*) AS n FROM flows WHERE src_addr = 'abcdefghijkl'")).rows[0]?.n
    expect(n).toBe(BigInt(2 * texts.filter((t) => t === 'abcdefghijkl').length))
    const groups = await s.sql('SELECT src_addr, count(*) AS n FROM flows GROUP BY src_addr')
    expect(groups.rows.length).toBe(samples.length)
    await s.close()
  })
})
