// Typed columns into DuckDB vectors (duckdb-chunk.ts): the all-valid test of a bitmap range, and chunks of a
// typed batch whose columns are valid in every row of some chunks (no validity mask set) and not of others,
// read back row for row.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { COLUMN_BY_NAME } from '../schema/columns.js'
import { allValid, CHUNK_ROWS } from './duckdb-chunk.js'
import { DuckDbStore } from './duckdb.js'
import { TypedBatch } from './typed-batch.js'

const dir = mkdtempSync(join(tmpdir(), 'flowtel-duckdb-chunk-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('allValid', () => {
  it('looks at exactly the bits of the range', () => {
    const v = new Uint8Array(8).fill(0xff)
    expect(allValid(v, 0, 64)).toBe(true)
    expect(allValid(v, 8, 13)).toBe(true)
    v[3] = 0xfe // bit 24 clear
    expect(allValid(v, 0, 64)).toBe(false)
    expect(allValid(v, 0, 24)).toBe(true)
    expect(allValid(v, 0, 25)).toBe(false)
    expect(allValid(v, 32, 32)).toBe(true)
    v[5] = 0x7f // bit 47 clear: inside 40..46 all set
    expect(allValid(v, 40, 7)).toBe(true)
    expect(allValid(v, 40, 8)).toBe(false)
  })
})

describe('typed chunks', () => {
  it('stores columns valid in every row of a chunk and columns with NULLs alike', async () => {
    const s = await DuckDbStore.open(join(dir, 'chunks.duckdb'))
    await s.migrate()
    // Three chunks and a part: bytes valid everywhere; packets NULL in every 5th row of the second chunk
    // only; src_port NULL in the last row only (a final partial chunk, not a multiple of 8).
    const rows = 3 * CHUNK_ROWS + 13
    const b = new TypedBatch()
    b.reserve(rows)
    const bytes = b.column(COLUMN_BY_NAME.get('bytes')!)
    const packets = b.column(COLUMN_BY_NAME.get('packets')!)
    const port = b.column(COLUMN_BY_NAME.get('src_port')!)
    const bv = new DataView(bytes.bytes.buffer)
    const pv = new DataView(packets.bytes.buffer)
    const sv = new DataView(port.bytes.buffer)
    const packetsNull = (i: number): boolean => i >= CHUNK_ROWS && i < 2 * CHUNK_ROWS && i % 5 === 0
    for (let i = 0; i < rows; i++) {
      bv.setBigUint64(i * 8, BigInt(i), true)
      bytes.valid[i >> 3]! |= 1 << (i & 7)
      if (!packetsNull(i)) {
        pv.setBigUint64(i * 8, BigInt(i * 2), true)
        packets.valid[i >> 3]! |= 1 << (i & 7)
      }
      if (i !== rows - 1) {
        sv.setUint16(i * 2, i % 65536, true)
        port.valid[i >> 3]! |= 1 << (i & 7)
      }
    }
    b.length = rows
    await s.insertTyped(b)
    const r = await s.sql('SELECT bytes, packets, src_port FROM flows ORDER BY bytes')
    expect(r.rows).toHaveLength(rows)
    const bad = r.rows.filter(
      (x, i) =>
        x.bytes !== BigInt(i) ||
        x.packets !== (packetsNull(i) ? null : BigInt(i * 2)) ||
        x.src_port !== (i === rows - 1 ? null : i % 65536),
    )
    expect(bad).toEqual([])
    await s.close()
  })
})
