// The store in a thread of its own (worker-store.ts): rows queued from the main thread are stored in
// order, a query sees every row queued before it, a full queue drops whole batches and counts them, and
// close stores what is queued. DuckDB files in a temporary directory.
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { field, record } from '../../test/helpers/flow-records.js'
import { COLUMNS, COLUMN_BY_NAME } from '../schema/columns.js'
import { DuckDbStore } from './duckdb.js'
import { normalize } from './normalize.js'
import { emptyBatch, pushRow } from './store.js'
import { TypedBatch } from './typed-batch.js'
import { WorkerStore } from './worker-store.js'

const dir = mkdtempSync(join(tmpdir(), 'flowtel-worker-store-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const names = COLUMNS.map((c) => c.name)

/** A typed batch of n rows: src_addr 10.0.0.(i % 250) and bytes = first + i. */
function typed(n: number, first: number): TypedBatch {
  const b = new TypedBatch()
  b.reserve(n)
  const src = b.column(COLUMN_BY_NAME.get('src_addr')!)
  const bytes = b.column(COLUMN_BY_NAME.get('bytes')!)
  const view = new DataView(bytes.bytes.buffer)
  for (let i = 0; i < n; i++) {
    src.strings[i] = `10.0.0.${i % 250}`
    src.valid[i >> 3]! |= 1 << (i & 7)
    view.setBigUint64(i * 8, BigInt(first + i), true)
    bytes.valid[i >> 3]! |= 1 << (i & 7)
  }
  b.length = n
  return b
}

describe('WorkerStore (the store in a thread)', () => {
  it('stores typed and plain batches in order; queries see everything queued before them', async () => {
    const url = `duckdb:${join(dir, 'a.duckdb')}`
    const s = await WorkerStore.open(url)
    await s.insertTyped(typed(3000, 0))
    const plain = emptyBatch(names)
    pushRow(plain, normalize(record([field('octetDeltaCount', 'unsigned64', 7n)])), names)
    await s.insert(plain)
    expect(await s.count()).toBe(3001)
    // One group (no row has a protocol): every row queued before the query.
    const top = await s.query({ top: ['proto'], by: 'flows' })
    expect(top.rows.map((r) => r.flows)).toEqual([3001n])
    expect(s.stats).toMatchObject({ queued: 0, stored: 3001, dropped: 0, failed: 0 })
    await s.close()
    // Closed in time: checkpointed, the file alone holds the rows.
    expect(existsSync(join(dir, 'a.duckdb.wal'))).toBe(false)
    // The file holds the same rows as a store opened in this thread sees.
    const again = await DuckDbStore.open(join(dir, 'a.duckdb'))
    const r = await again.sql('SELECT count(*) AS n, sum(bytes) AS b, min(src_addr) AS m FROM flows')
    expect(r.rows[0]).toEqual({ n: 3001n, b: BigInt((2999 * 3000) / 2 + 7), m: '10.0.0.0' })
    await again.close()
  })

  it('drops whole batches past the queue bound, counts them, and stores the rest at close', async () => {
    const url = `duckdb:${join(dir, 'b.duckdb')}`
    const s = await WorkerStore.open(url, { maxQueuedRows: 2500 })
    // Queued back to back (nothing stored yet): 1000 + 1000 fit, the third 1000 does not.
    await s.insertTyped(typed(1000, 0))
    await s.insertTyped(typed(1000, 1000))
    await s.insertTyped(typed(1000, 2000))
    expect(s.stats.dropped).toBe(1000)
    await s.close()
    expect(s.stats).toMatchObject({ queued: 0, stored: 2000, dropped: 1000 })
    const again = await DuckDbStore.open(join(dir, 'b.duckdb'))
    expect(await again.count()).toBe(2000)
    await again.close()
  })

  it('bounds the queue in octets too: a batch past it is dropped whole and counted', async () => {
    const url = `duckdb:${join(dir, 'c.duckdb')}`
    // 1000 rows of one 8-octet column and one text column take about 42 000 octets each while queued: two
    // fit in 100 000, the third does not (the row bound would take all three).
    const s = await WorkerStore.open(url, { maxQueuedRows: 1_000_000, maxQueuedBytes: 100_000 })
    await s.insertTyped(typed(1000, 0))
    await s.insertTyped(typed(1000, 1000))
    expect(s.stats.queuedBytes).toBeGreaterThan(60_000)
    await s.insertTyped(typed(1000, 2000))
    expect(s.stats).toMatchObject({ dropped: 1000, droppedBatches: 1, droppedForBytes: 1000 })
    expect(s.stats.peakQueuedBytes).toBeLessThanOrEqual(100_000)
    // Plain batches are counted by their values.
    const plain = emptyBatch(names)
    for (let i = 0; i < 1000; i++)
      pushRow(plain, normalize(record([field('octetDeltaCount', 'unsigned64', BigInt(i))])), names)
    await s.insert(plain)
    expect(s.stats.droppedBatches).toBe(2)
    await s.close()
    expect(s.stats).toMatchObject({ queued: 0, queuedBytes: 0, stored: 2000, dropped: 2000 })
    const again = await DuckDbStore.open(join(dir, 'c.duckdb'))
    expect(await again.count()).toBe(2000)
    await again.close()
  })

  it('abandons and counts the inserts not yet begun once the close deadline passed', async () => {
    const url = `duckdb:${join(dir, 'd.duckdb')}`
    const s = await WorkerStore.open(url)
    await s.insertTyped(typed(500, 0))
    expect(await s.count()).toBe(500)
    // Deadline already passed: what is queued from now on is acknowledged as abandoned, not stored.
    s.closeWithin(0)
    await s.insertTyped(typed(1000, 500))
    await s.insertTyped(typed(1000, 1500))
    await s.close()
    expect(s.stats).toMatchObject({ queued: 0, stored: 500, abandoned: 2000, dropped: 0, failed: 0 })
    // Past the deadline the store closed without a checkpoint: the committed rows wait in the WAL, which
    // the next open replays (a checkpoint takes seconds per million rows).
    expect(statSync(join(dir, 'd.duckdb.wal')).size).toBeGreaterThan(0)
    const again = await DuckDbStore.open(join(dir, 'd.duckdb'))
    expect(await again.count()).toBe(500)
    await again.close()
  })

  it('reports a store that cannot be opened', async () => {
    await expect(WorkerStore.open('clickhouse:http://127.0.0.1:1/x')).rejects.toThrow(/ClickHouse/)
  })
})
