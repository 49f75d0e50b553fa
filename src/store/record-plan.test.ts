// The column-first ingest path (record-plan.ts) against normalize(): for any record, the row it writes into
// a batch must be exactly normalize()'s row, also when the same layout repeats with values that do not fit.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { field, record } from '../../test/helpers/flow-records.js'
import type { DecodedField } from '../ipfix/decoder.js'
import { COLUMNS } from '../schema/columns.js'
import { ipKey } from '../schema/ip-key.js'
import { normalize, type FlowRow } from './normalize.js'
import { RecordPlanner, addressKey } from './record-plan.js'
import { emptyBatch } from './store.js'

const names = COLUMNS.map((c) => c.name)
const f = field

/** Fields a record may hold: every kind of column, aliases, values that do not fit, unknown elements. */
const POOL: ReadonlyArray<fc.Arbitrary<DecodedField>> = [
  fc.bigInt(0n, 1n << 44n).map((v) => f('flowStartMilliseconds', 'dateTimeMilliseconds', v)),
  fc.integer({ min: 0, max: 2 ** 31 }).map((v) => f('flowStartSeconds', 'dateTimeSeconds', v)),
  fc.bigInt(0n, 1n << 60n).map((v) => f('flowEndNanoseconds', 'dateTimeNanoseconds', v)),
  fc.ipV4().map((v) => f('sourceIPv4Address', 'ipv4Address', v)),
  fc
    .constantFrom('2001:db8::1', '::ffff:10.1.2.3', '::', 'fe80::1')
    .map((v) => f('sourceIPv6Address', 'ipv6Address', v)),
  fc.ipV4().map((v) => f('destinationIPv4Address', 'ipv4Address', v)),
  fc.constantFrom('2001:db8::53', '::1').map((v) => f('destinationIPv6Address', 'ipv6Address', v)),
  fc.integer({ min: 0, max: 65535 }).map((v) => f('sourceTransportPort', 'unsigned16', v)),
  // A port sent wider than the column: out of range sends the record to normalize().
  fc.integer({ min: 0, max: 70000 }).map((v) => f('destinationTransportPort', 'unsigned32', v)),
  fc.integer({ min: 0, max: 255 }).map((v) => f('protocolIdentifier', 'unsigned8', v)),
  fc.bigInt(0n, (1n << 64n) - 1n).map((v) => f('octetDeltaCount', 'unsigned64', v)),
  fc.bigInt(0n, (1n << 64n) - 1n).map((v) => f('reverseOctetDeltaCount', 'unsigned64', v)),
  fc.bigInt(0n, 1000n).map((v) => f('packetDeltaCount', 'unsigned64', v)),
  fc.integer({ min: 0, max: 65535 }).map((v) => f('icmpTypeCodeIPv4', 'unsigned16', v)),
  fc.integer({ min: 0, max: 65535 }).map((v) => f('icmpTypeCodeIPv6', 'unsigned16', v)),
  fc.integer({ min: 0, max: 4095 }).map((v) => f('vlanId', 'unsigned16', v)),
  fc.boolean().map((v) => f('flowtelTcpSackPermitted', 'boolean', v)),
  fc.string().map((v) => f('applicationName', 'string', v)),
  fc.string().map((v) => f('sslServerName', 'string', v)),
  fc.constant(f('sourceMacAddress', 'macAddress', new Uint8Array([0, 1, 2, 3, 4, 5]))),
  fc.constant(f('sourceMacAddress', 'macAddress', null)),
  fc.string().map((v) => f('interfaceName', 'string', v)),
  fc.uint8Array({ maxLength: 4 }).map((v) => f('32473.99', 'octetArray', v)),
]

/** A layout (list of pool indexes, repeats allowed) and, per record, values for it. */
const layoutAndRecords = fc
  .array(fc.integer({ min: 0, max: POOL.length - 1 }), { maxLength: 12 })
  .chain((layout) =>
    fc.tuple(
      fc.constant(layout),
      fc.array(fc.tuple(...layout.map((i) => POOL[i]!)), { minLength: 1, maxLength: 4 }),
    ),
  )

function rowOf(batch: ReturnType<typeof emptyBatch>, i: number): FlowRow {
  const row: FlowRow = {}
  for (const n of names) row[n] = batch.columns[n]?.[i] ?? null
  return row
}

describe('record plan', () => {
  it('writes exactly the row normalize() makes, record after record of one layout', () => {
    fc.assert(
      fc.property(layoutAndRecords, ([, records]) => {
        const planner = new RecordPlanner()
        const batch = emptyBatch()
        const rows = records.map((fields, i) => {
          const r = record(fields)
          planner.append(batch, r, 1_000n + BigInt(i), names)
          return normalize(r, 1_000n + BigInt(i))
        })
        expect(batch.length).toBe(rows.length)
        rows.forEach((row, i) => expect(rowOf(batch, i)).toEqual(row))
      }),
      { numRuns: 400 },
    )
  })

  it('recompiles when a template is redefined, and bounds its cache', () => {
    const planner = new RecordPlanner(2)
    const batch = emptyBatch()
    const a = record([f('sourceIPv4Address', 'ipv4Address', '10.0.0.1')])
    const b = record([f('octetDeltaCount', 'unsigned64', 5n)])
    for (const r of [a, a, b, record([], { templateId: 257 }), record([], { templateId: 258 })])
      planner.append(batch, r, 0n, names)
    expect(planner.stats.compiled).toBe(4)
    expect(planner.stats.planned).toBe(5)
    expect(rowOf(batch, 2).bytes).toBe(5n)
    expect(rowOf(batch, 2).src_addr).toBe(null)
  })

  it('keys addresses as ipKey does', () => {
    for (const t of [
      '0.0.0.0',
      '255.255.255.255',
      '10.1.2.3',
      '2001:db8::1',
      '::ffff:1.2.3.4',
      '01.2.3.4',
      '1.2.3',
      'x',
    ])
      expect(addressKey(t), t).toBe(ipKey(t) ?? null)
  })
})
