// RowBinary encoding byte by byte for one row: Nullable flags, little-endian integers, a 64-bit counter above
// 2^53, a 16-byte address key in network order, LEB128-prefixed UTF-8, and NULL for values a column can't hold.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ipfixMessage } from '../../test/helpers/ipfix-messages.js'
import { templateFromSpecs } from '../collector/data-set.js'
import { FlowCollector } from '../collector/decode-message.js'
import { COLUMNS, COLUMN_BY_NAME, type Column } from '../schema/columns.js'
import { encodeRowBinary, encodeRowBinaryTyped } from './clickhouse-rowbinary.js'
import { FastPlanner } from './fast-plan.js'
import { emptyBatch, pushRow } from './store.js'
import { TypedBatch } from './typed-batch.js'

const col = (name: string): Column => {
  const c = COLUMN_BY_NAME.get(name)
  if (c === undefined) throw new Error(name)
  return c
}

describe('RowBinary', () => {
  it('encodes one row exactly', () => {
    const names = [
      'observation_domain',
      'proto',
      'bytes',
      'src_ip_key',
      'src_addr',
      'flowtel_tcp_sack_permitted',
      'vlan',
    ]
    const b = emptyBatch(names)
    pushRow(
      b,
      {
        observation_domain: 7,
        proto: null,
        bytes: (1n << 53n) + 1n,
        src_ip_key: 0xffff0a000001n,
        src_addr: 'é',
        flowtel_tcp_sack_permitted: true,
        vlan: 70000, // does not fit UInt16: NULL
      },
      names,
    )
    const out = encodeRowBinary(b, [
      { column: col('observation_domain'), nullable: false },
      { column: col('proto'), nullable: true },
      { column: col('bytes'), nullable: true },
      { column: col('src_ip_key'), nullable: true },
      { column: col('src_addr'), nullable: true },
      { column: col('flowtel_tcp_sack_permitted'), nullable: true },
      { column: col('vlan'), nullable: true },
    ])
    expect(out.toString('hex')).toBe(
      [
        '07000000', // UInt32 7
        '01', // proto NULL
        '00' + '0100000000002000', // 2^53 + 1, little-endian
        '00' + '00000000000000000000ffff0a000001', // ::ffff:10.0.0.1
        '00' + '02' + 'c3a9', // "é": 2 bytes
        '00' + '01',
        '01', // vlan out of range → NULL
      ].join(''),
    )
  })

  it('writes the zero value for a missing value in a non-Nullable column', () => {
    const b = emptyBatch(['exporter'])
    pushRow(b, { exporter: null }, ['exporter'])
    expect(encodeRowBinary(b, [{ column: col('exporter'), nullable: false }]).toString('hex')).toBe('00')
  })
})

describe('RowBinary of typed batches', () => {
  it('is byte for byte the RowBinary of the same rows as a ColumnBatch', () => {
    const fields = [152, 153, 8, 28, 7, 11, 4, 1, 2, 58].map((id, i) => ({
      id,
      pen: 0,
      length: [8, 8, 4, 16, 2, 2, 1, 8, 4, 2][i]!,
    }))
    let x = 99
    const rnd = (): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0)
    const records = Array.from({ length: 1100 }, () =>
      fields.map((f) => {
        const b = Buffer.alloc(f.length)
        if (f.length === 8 && f.id >= 152) b.writeBigUInt64BE(BigInt(1_700_000_000_000 + (rnd() % 1e6)))
        else for (let i = 0; i < b.length; i++) b[i] = rnd() & 255
        return b
      }),
    )
    const msg = ipfixMessage({ templateId: 300, fields, records, withTemplate: false })
    const col = new FlowCollector()
    const t = templateFromSpecs(
      10,
      300,
      0,
      fields.map((f) => [f.pen, f.id, f.length] as const),
      col.count,
    )
    const planner = new FastPlanner()
    const plan = planner.plan(t)
    expect(plan).toBeDefined()
    const batch = new TypedBatch(16)
    const ctx = {
      version: 10 as const,
      session: 's',
      exporter: '192.0.2.1',
      domain: 7,
      exportTime: 0,
      sequence: 0,
      sysUptime: 0,
    }
    expect(planner.decode(plan!, ctx, 300, msg, 20, msg.length, 1_700_000_000_000_000, batch)).toBe(1100)
    // Strings the ASCII shortcut does not take: non-ASCII, and 128 characters or more.
    const addr = batch.columns.get('src_addr')!
    addr.strings[1] = 'adresse-ü'
    addr.strings[2] = 'x'.repeat(300)
    const columns = COLUMNS.map((c, i) => ({ column: c, nullable: i % 3 !== 0 }))
    expect(encodeRowBinaryTyped(batch, columns).equals(encodeRowBinary(batch.toColumnBatch(), columns))).toBe(
      true,
    )
  })

  it('matches the row encoder for any mix of text, NULLs and fixed-width cells', () => {
    const text = COLUMNS.filter((c) => c.kind === 'text').slice(0, 3)
    const fixed = ['bytes', 'proto', 'src_ip_key', 'vlan', 'time_start'].map(col)
    const cell = fc.option(fc.string({ unit: 'binary', maxLength: 300 }), { nil: null })
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.array(cell, { minLength: 3, maxLength: 3 }),
            fc.uint8Array({ minLength: 40, maxLength: 40 }),
            fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
          ),
          { maxLength: 40 },
        ),
        fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
        (rows, nullable) => {
          const batch = new TypedBatch(8)
          batch.reserve(rows.length)
          rows.forEach(([texts, bytes, present], i) => {
            text.forEach((c, k) => {
              const v = texts[k]
              if (v === null || v === undefined) return
              const t = batch.column(c)
              t.strings[i] = v
              t.valid[i >> 3]! |= 1 << (i & 7)
            })
            let at = 0
            fixed.forEach((c, k) => {
              const t = batch.column(c)
              if (present[k] === true) {
                t.bytes.set(bytes.subarray(at, at + t.width), i * t.width)
                t.valid[i >> 3]! |= 1 << (i & 7)
              }
              at += t.width
            })
          })
          batch.length = rows.length
          const columns = [...text, ...fixed].map((c, k) => ({ column: c, nullable: nullable[k] === true }))
          const typed = encodeRowBinaryTyped(batch, columns)
          expect(typed.equals(encodeRowBinary(batch.toColumnBatch(), columns))).toBe(true)
        },
      ),
      { numRuns: 300 },
    )
  })
})
