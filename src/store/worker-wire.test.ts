// A typed batch across the thread boundary (worker-wire.ts): toWire then fromWire gives the same rows,
// a text column with one string in every row crosses as that string once, and any other (different
// strings, NULL rows) crosses as its array.
import { describe, expect, it } from 'vitest'
import { COLUMN_BY_NAME } from '../schema/columns.js'
import { TypedBatch } from './typed-batch.js'
import { fromWire, toWire, wireBytes } from './worker-wire.js'

const column = (name: string) => COLUMN_BY_NAME.get(name)!

/** n rows: exporter the same in all, src_addr different, flow_version NULL in odd rows, bytes = i. */
function batch(n: number): TypedBatch {
  const b = new TypedBatch(n)
  const exporter = b.column(column('exporter'))
  const src = b.column(column('src_addr'))
  const version = b.column(column('flow_version'))
  const bytes = b.column(column('bytes'))
  const view = new DataView(bytes.bytes.buffer)
  for (let i = 0; i < n; i++) {
    const bit = 1 << (i & 7)
    exporter.strings.push('192.0.2.1')
    exporter.valid[i >> 3]! |= bit
    src.strings.push(`10.0.${i >> 8}.${i & 255}`)
    src.valid[i >> 3]! |= bit
    version.strings.push('ipfix')
    if (i % 2 === 0) version.valid[i >> 3]! |= bit
    view.setBigUint64(i * 8, BigInt(i), true)
    bytes.valid[i >> 3]! |= bit
  }
  b.length = n
  return b
}

describe('worker wire (typed batches between threads)', () => {
  it('gives the same rows back, constant text columns sent once', () => {
    const n = 1000
    const expected = batch(n).toColumnBatch()
    const { wire, transfer } = toWire(batch(n))
    const by = new Map(wire.columns.map((c) => [c.name, c]))
    expect(by.get('exporter')).toMatchObject({ constant: '192.0.2.1', strings: [] })
    // Every row holds 'ipfix' (the odd ones are NULL by their validity bit): sent once as well.
    expect(by.get('flow_version')).toMatchObject({ constant: 'ipfix', strings: [] })
    expect(by.get('src_addr')?.constant).toBeUndefined()
    expect(by.get('src_addr')?.strings).toHaveLength(n)
    expect(transfer.length).toBeGreaterThan(0)
    const back = fromWire(structuredClone(wire, { transfer }))
    expect(back.toColumnBatch()).toEqual(expected)
    expect(expected.columns['flow_version']?.[1]).toBeNull()
    expect(expected.columns['flow_version']?.[0]).toBe('ipfix')
  })

  it('sends a text column whose rows differ, or that has unset rows, as its array', () => {
    const b = batch(10)
    const exporter = b.column(column('exporter'))
    exporter.strings[9] = '192.0.2.2'
    const version = b.column(column('flow_version'))
    version.strings.length = 5 // rows 5.. never set (NULL)
    for (let i = 5; i < 10; i++) version.valid[i >> 3]! &= ~(1 << (i & 7))
    const expected = b.toColumnBatch()
    const { wire, transfer } = toWire(b)
    for (const c of wire.columns) expect(c.constant).toBeUndefined()
    expect(fromWire(structuredClone(wire, { transfer })).toColumnBatch()).toEqual(expected)
  })

  it('cuts the columns of a batch that filled a small part of its room to its rows', () => {
    // 10 rows in room for 131 072 (a flush by time of a batch sized for a whole flush): the 8-octet column
    // crosses as 64 rows' worth, not 1 MiB, and the rows come back the same.
    const b = new TypedBatch(131_072)
    const bytes = b.column(column('bytes'))
    const view = new DataView(bytes.bytes.buffer)
    for (let i = 0; i < 10; i++) {
      view.setBigUint64(i * 8, BigInt(i + 1), true)
      bytes.valid[i >> 3]! |= 1 << (i & 7)
    }
    b.length = 10
    const expected = b.toColumnBatch()
    const { wire, transfer } = toWire(b)
    const c = wire.columns.find((w) => w.name === 'bytes')!
    expect(c.bytes.byteLength).toBe(64 * 8)
    expect(c.valid.byteLength).toBe(8)
    expect(wireBytes(wire)).toBeLessThan(2048)
    expect(fromWire(structuredClone(wire, { transfer })).toColumnBatch()).toEqual(expected)
  })
})
