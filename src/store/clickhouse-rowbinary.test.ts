// RowBinary encoding byte by byte for one row: Nullable flags, little-endian integers, a 64-bit counter above
// 2^53, a 16-byte address key in network order, LEB128-prefixed UTF-8, and NULL for values a column can't hold.
import { describe, expect, it } from 'vitest'
import { COLUMN_BY_NAME, type Column } from '../schema/columns.js'
import { encodeRowBinary } from './clickhouse-rowbinary.js'
import { emptyBatch, pushRow } from './store.js'

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
