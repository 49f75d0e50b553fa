// The column table and the DuckDB DDL generated from it (run twice); ClickHouse DDL: store/clickhouse-ddl.test.ts.
import { DuckDBInstance } from '@duckdb/node-api'
import { describe, expect, it } from 'vitest'
import { COLUMNS, COLUMN_BY_IE } from './columns.js'
import {
  CORE_COLUMNS,
  duckdbAddColumns,
  duckdbCreateStoredTable,
  duckdbCreateTable,
  duckdbFlowsView,
  duckdbValueType,
} from './ddl.js'
import { cidrRange, ipKey } from './ip-key.js'

describe('column table', () => {
  it('has unique column names and elements', () => {
    expect(new Set(COLUMNS.map((c) => c.name)).size).toBe(COLUMNS.length)
    const ies = COLUMNS.flatMap((c) => c.ies)
    expect(new Set(ies).size).toBe(ies.length)
    expect(COLUMN_BY_IE.get('reverseOctetDeltaCount')?.name).toBe('rev_bytes')
    expect(COLUMN_BY_IE.get('npnRoundTripTime')?.name).toBe('npn_round_trip_time')
  })
})

describe('DDL', () => {
  it('DuckDB runs the table and the column upgrade, twice', async () => {
    const db = await DuckDBInstance.create(':memory:')
    const c = await db.connect()
    for (let i = 0; i < 2; i++) {
      await c.run(duckdbCreateTable())
      for (const s of duckdbAddColumns()) await c.run(s)
    }
    const r = await c.runAndReadAll('DESCRIBE flows')
    expect(r.getRowObjectsJS().map((x) => x.column_name)).toEqual(COLUMNS.map((x) => x.name))
    c.closeSync()
  })

  it('DuckDB lazy layout: the stored table and the view of every column over it', async () => {
    const db = await DuckDBInstance.create(':memory:')
    const c = await db.connect()
    await c.run(duckdbCreateStoredTable())
    await c.run('ALTER TABLE flows_stored ADD COLUMN "later col" INTEGER')
    const stored = [...COLUMNS.filter((x) => CORE_COLUMNS.has(x.name)).map((x) => x.name), 'later col']
    await c.run(duckdbFlowsView(stored))
    await c.run(duckdbFlowsView(stored)) // replaced, not an error
    const r = await c.runAndReadAll('DESCRIBE flows')
    const described = r.getRowObjectsJS().map((x) => [x.column_name, x.column_type])
    // Every column in the column table's order and type, then the stored column it does not know.
    expect(described).toEqual([...COLUMNS.map((x) => [x.name, duckdbValueType(x)]), ['later col', 'INTEGER']])
    expect(duckdbValueType(COLUMNS.find((x) => x.kind === 'ipkey')!)).toBe('UHUGEINT')
    c.closeSync()
  })
})

describe('ip keys', () => {
  it('maps IPv4 into IPv4-mapped IPv6 and parses IPv6 forms', () => {
    expect(ipKey('10.0.0.1')).toBe(0xffff0a000001n)
    expect(ipKey('::ffff:10.0.0.1')).toBe(0xffff0a000001n)
    expect(ipKey('2001:db8::1')).toBe(0x20010db8000000000000000000000001n)
    expect(ipKey('::')).toBe(0n)
    expect(ipKey('1.2.3')).toBeUndefined()
    expect(ipKey('300.1.1.1')).toBeUndefined()
  })
  it('turns prefixes into ranges', () => {
    expect(cidrRange('10.0.0.0/8')).toEqual({ lo: 0xffff0a000000n, hi: 0xffff0affffffn })
    expect(cidrRange('10.1.2.3/8')).toEqual({ lo: 0xffff0a000000n, hi: 0xffff0affffffn })
    expect(cidrRange('2001:db8::/32')?.lo).toBe(0x20010db8n << 96n)
    expect(cidrRange('10.0.0.0/33')).toBeUndefined()
  })
})
