// The DuckDB store: idempotent migrations, batched appends with size/time triggers, flush on close (nothing
// accepted is lost), retention by age and by row count, and rows read back equal to the rows written.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { CollectedRecord } from '../collector/decode-message.js'
import type { DecodedField } from '../ipfix/decoder.js'
import { COLUMNS } from '../schema/columns.js'
import { DuckDbStore, parseStoreUrl } from './duckdb.js'
import { normalize, rowToJson, type FlowRow } from './normalize.js'
import { BatchWriter } from './store.js'

const dir = mkdtempSync(join(tmpdir(), 'flowtel-duckdb-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const names = COLUMNS.map((c) => c.name)

function record(fields: DecodedField[]): CollectedRecord {
  return {
    version: 10,
    exporter: '192.0.2.1',
    exportTime: 0,
    sequence: 0,
    deferred: false,
    odid: 7,
    templateId: 256,
    isOptions: false,
    scopeCount: 0,
    fields,
  }
}

const f = (name: string, type: DecodedField['type'], value: DecodedField['value'], id = 0): DecodedField => ({
  pen: 0,
  id,
  name,
  type,
  value,
})

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
    expect(parseStoreUrl('duckdb:/tmp/x.duckdb')).toEqual({ kind: 'duckdb', path: '/tmp/x.duckdb' })
    expect(parseStoreUrl('duckdb').path).toBe('./data/flowtel.duckdb')
    expect(() => parseStoreUrl('mysql://x')).toThrow(/unsupported store/)
  })

  it('migrates idempotently, also reopening the file', async () => {
    const s = await openStore('m.duckdb')
    await s.migrate()
    await s.migrate()
    expect(await s.migrations()).toEqual(['0001_flows'])
    await s.close()
    const again = await openStore('m.duckdb')
    expect(await again.migrations()).toEqual(['0001_flows'])
    await again.close()
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

  it('keeps elements without a column, repeats and aliases in extra', async () => {
    const rec = record([
      f('flowStartSeconds', 'dateTimeSeconds', 1_700_000_000),
      f('sourceIPv6Address', 'ipv6Address', '2001:db8::5'),
      f('icmpTypeCodeIPv6', 'unsigned16', 0x8000),
      f('vlanId', 'unsigned16', 10),
      f('vlanId', 'unsigned16', 20),
      f('interfaceName', 'string', 'eth0'),
      f('32473.99', 'octetArray', new Uint8Array([1, 2])),
    ])
    const row = normalize(rec, 0n)
    expect(row.time_start).toBe(1_700_000_000_000_000n)
    expect(row.vlan).toBe(10)
    expect(JSON.parse(String(row.extra))).toEqual({
      flowStartSeconds: '2023-11-14T22:13:20.000Z',
      vlanId: [10, 20],
      interfaceName: 'eth0',
      '32473.99': '0102',
      '@derived': ['time_start'],
    })
    const s = await openStore('extra.duckdb')
    const w = new BatchWriter(s, names)
    w.add(row)
    await w.flush()
    const back = (await s.query({ allColumns: true })).rows[0]
    expect(back).toBeDefined()
    expect(rowToJson(back!)).toEqual({
      flowStartSeconds: '2023-11-14T22:13:20.000Z',
      sourceIPv6Address: '2001:db8::5',
      icmpTypeCodeIPv6: 0x8000,
      vlanId: [10, 20],
      interfaceName: 'eth0',
      '32473.99': '0102',
    })
    await w.close()
  })

  it('flushes on the size trigger, the time trigger and on close', async () => {
    const path = join(dir, 'flush.duckdb')
    const s = await DuckDbStore.open(path)
    await s.migrate()
    const w = new BatchWriter(s, names, { maxRows: 3, maxDelayMs: 30 })
    for (let i = 0; i < 3; i++) w.add(flow(i, Date.now()))
    await w.flush() // the size trigger already started this flush; wait for it
    expect(await s.count()).toBe(3)
    w.add(flow(3, Date.now()))
    await new Promise((r) => setTimeout(r, 120))
    expect(w.pending).toBe(0)
    expect(await s.count()).toBe(4)
    for (let i = 4; i < 6; i++) w.add(flow(i, Date.now()))
    await w.close() // below the size trigger and before the timer: close must store them
    const again = await openStore('flush.duckdb')
    expect(await again.count()).toBe(6)
    await again.close()
  })

  it('applies retention by age and by row count', async () => {
    const s = await openStore('retain.duckdb')
    const w = new BatchWriter(s, names)
    const now = 1_800_000_000_000
    for (let i = 0; i < 10; i++) w.add(flow(i, now - i * 60_000)) // received 0..9 minutes ago
    await w.flush()
    expect(await s.retain({ maxAgeMs: 5.5 * 60_000 }, now)).toBe(4) // 6..9 minutes old
    expect(await s.count()).toBe(6)
    expect(await s.retain({ maxRows: 4 }, now)).toBe(2) // the two oldest left (4 and 5 minutes)
    const left = (await s.sql('SELECT bytes FROM flows ORDER BY bytes')).rows.map((r) => r.bytes)
    expect(left).toEqual([0n, 100n, 200n, 300n])
    expect(await s.retain({}, now)).toBe(0)
    await w.close()
  })
})
