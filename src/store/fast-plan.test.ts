// The fast path (fast-plan.ts: IPFIX data sets straight into typed columns) against the record path
// (records → record-plan.ts): for random templates and values, encoded as real IPFIX messages, the rows
// stored must be the same, column by column (time_received aside: each path reads the clock itself), and
// a template the fast path does not take must still reach the store through the record path.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ipfixMessage } from '../../test/helpers/ipfix-messages.js'
import { FlowCollector } from '../collector/decode-message.js'
import { COLUMNS } from '../schema/columns.js'
import type { RowValue } from './normalize.js'
import { ipv4Text } from '../util/address-text.js'
import { Ipv4TextCache, compileFastPlan } from './fast-plan.js'
import { storeRecords } from './ingest.js'
import { BatchWriter, type ColumnBatch, type FlowStore } from './store.js'
import type { TypedBatch } from './typed-batch.js'

const REV = 29305
/** [name, id, pen, lengths it may be sent with, value bytes maker]. */
type Spec = readonly [number, number, readonly number[]]
const SPECS: readonly Spec[] = [
  [152, 0, [8]], // flowStartMilliseconds
  [153, 0, [8]], // flowEndMilliseconds
  [150, 0, [4]], // flowStartSeconds (not the column's canonical element: record path)
  [8, 0, [4]], // sourceIPv4Address
  [12, 0, [4]], // destinationIPv4Address
  [27, 0, [16]], // sourceIPv6Address
  [28, 0, [16]], // destinationIPv6Address
  [7, 0, [2, 1]], // sourceTransportPort, also reduced-size
  [11, 0, [2, 4]], // destinationTransportPort, also wider than its column (record path)
  [4, 0, [1]], // protocolIdentifier
  [1, 0, [8, 4, 2]], // octetDeltaCount
  [2, 0, [8, 4]], // packetDeltaCount
  [1, REV, [8, 3]], // reverseOctetDeltaCount
  [2, REV, [8]], // reversePacketDeltaCount
  [6, 0, [2, 1]], // tcpControlBits
  [6, REV, [2]], // reverseTcpControlBits
  [136, 0, [1]], // flowEndReason
  [58, 0, [2]], // vlanId
  [10, 0, [4, 2]], // ingressInterface
  [14, 0, [4]], // egressInterface
  [96, 0, [8]], // applicationName (a string: record path)
  [56, 0, [6]], // sourceMacAddress (record path)
  [1, 99999, [4]], // an unknown element (no column: record path, kept in extra)
]

interface FieldPick {
  readonly spec: Spec
  readonly length: number
}

const pick = fc
  .constantFrom(...SPECS)
  .chain((spec) => fc.constantFrom(...spec[2]).map((length): FieldPick => ({ spec, length })))

function message(
  fields: readonly FieldPick[],
  values: Uint8Array[][],
  seq: number,
  withTemplate: boolean,
): Buffer {
  return ipfixMessage({
    templateId: 300,
    fields: fields.map((f) => ({ id: f.spec[0], pen: f.spec[1], length: f.length })),
    records: values,
    withTemplate,
    sequence: seq,
  })
}

/** A store that keeps what it is given, as plain rows by column name. */
class MemoryStore implements FlowStore {
  rows: Array<Record<string, RowValue>> = []
  typedBatches = 0
  private take(b: ColumnBatch): void {
    for (let i = 0; i < b.length; i++) {
      const row: Record<string, RowValue> = {}
      for (const c of COLUMNS) row[c.name] = b.columns[c.name]?.[i] ?? null
      this.rows.push(row)
    }
  }
  insert(b: ColumnBatch): Promise<void> {
    this.take(b)
    return Promise.resolve()
  }
  insertTyped(b: TypedBatch): Promise<void> {
    this.typedBatches++
    this.take(b.toColumnBatch())
    return Promise.resolve()
  }
  migrate = (): Promise<void> => Promise.resolve()
  query = (): Promise<never> => Promise.reject(new Error('no'))
  insertOptions = (): Promise<void> => Promise.resolve()
  options = (): Promise<never> => Promise.reject(new Error('no'))
  retain = (): Promise<number> => Promise.resolve(0)
  count = (): Promise<number> => Promise.resolve(this.rows.length)
  close = (): Promise<void> => Promise.resolve()
}

const key = {
  protocol: 'udp' as const,
  exporterAddress: '192.0.2.9',
  exporterPort: 4000,
  collectorAddress: '127.0.0.1',
  collectorPort: 4739,
}

async function ingest(msgs: readonly Buffer[], fast: boolean): Promise<MemoryStore> {
  const store = new MemoryStore()
  const writer = new BatchWriter(
    store,
    COLUMNS.map((c) => c.name),
  )
  const col = new FlowCollector()
  if (fast) col.columnSink = writer
  for (const m of msgs) storeRecords(writer, col.decode(m, key))
  await writer.flush()
  return store
}

const strip = (rows: ReadonlyArray<Record<string, RowValue>>): Array<Record<string, RowValue>> =>
  rows.map((r) => ({ ...r, time_received: r.time_received === null ? 'null' : 'set' }))

describe('fast path (IPFIX data sets straight into typed columns)', () => {
  it('stores the same rows as the record path, for any template and values', async () => {
    let fastSets = 0
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(pick, { minLength: 1, maxLength: 12, selector: (f) => `${f.spec[0]}/${f.spec[1]}` }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 3 }),
        async (fields, n, seed, dataFirst, copies) => {
          let s = seed
          const rnd = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0)
          const values = Array.from({ length: n }, () =>
            fields.map((f) => {
              const b = Buffer.alloc(f.length)
              for (let i = 0; i < b.length; i++) b[i] = rnd() & 255
              // Times in a plausible range most of the time, huge now and then.
              if (f.spec[0] === 152 || f.spec[0] === 153)
                if ((rnd() & 7) !== 0) b.writeBigUInt64BE(BigInt(1_700_000_000_000 + (rnd() % 1_000_000)))
              return b
            }),
          )
          // Data before its template (the pending buffer) or after it; then more copies of the data set, so
          // later sets start mid-batch (rows not on a whole validity octet).
          const msgs = dataFirst
            ? [message(fields, values, 0, false), message(fields, [], n, true)]
            : [message(fields, values, 0, true)]
          for (let c = 1; c < copies; c++) msgs.push(message(fields, values, c * n, false))
          const slow = await ingest(msgs, false)
          const fast = await ingest(msgs, true)
          expect(fast.rows.length).toBe(n * copies)
          expect(strip(fast.rows)).toEqual(strip(slow.rows))
          fastSets += fast.typedBatches
        },
      ),
      { numRuns: 300 },
    )
    // The fast path was taken in a good share of the runs (not only the record path compared with itself).
    expect(fastSets).toBeGreaterThan(30)
  })

  it('takes the probe-shaped template and leaves others to the record path', async () => {
    const probe: FieldPick[] = [152, 153, 8, 12, 7, 11, 4, 1, 2].map((id) => {
      const spec = SPECS.find((x) => x[0] === id && x[1] === 0)!
      return { spec, length: spec[2][0]! }
    })
    const values = [
      probe.map((f) => {
        const b = Buffer.alloc(f.length, 1)
        if (f.length === 8 && f.spec[0] >= 152) b.writeBigUInt64BE(1_700_000_000_123n)
        return b
      }),
    ]
    const fast = await ingest([message(probe, values, 0, true)], true)
    expect(fast.typedBatches).toBe(1)
    expect(fast.rows[0]?.src_addr).toBe('1.1.1.1')
    expect(fast.rows[0]?.src_ip_key).toBe(0xffff_0101_0101n)
    expect(fast.rows[0]?.total_bytes).toBe(0x0101010101010101n)
    expect(fast.rows[0]?.flow_version).toBe('ipfix')
    expect(fast.rows[0]?.time_start).toBe(1_700_000_000_123_000n)
    // An element without a column (an unknown one) sends the template to the record path: it lands in extra.
    const withName = [...probe, { spec: SPECS.find((x) => x[1] === 99999)!, length: 4 }]
    const other = await ingest(
      [message(withName, [withName.map((f) => Buffer.alloc(f.length, 0x41))], 0, true)],
      true,
    )
    expect(other.typedBatches).toBe(0)
    expect(other.rows.length).toBe(1)
    expect(String(other.rows[0]?.extra)).toContain('"99999.1":"41414141"')
  })

  it('compiles no plan for options templates or variable-length fields', () => {
    const f = { pen: 0, id: 8, length: 4, name: 'sourceIPv4Address', type: 'ipv4Address' as const }
    const base = { id: 300, version: 10 as const, scopeCount: 0, options: false, fields: [f], minLength: 4 }
    expect(compileFastPlan(base)).toBeDefined()
    expect(compileFastPlan({ ...base, options: true, scopeCount: 1 })).toBeUndefined()
    expect(compileFastPlan({ ...base, fields: [{ ...f, length: 0xffff }] })).toBeUndefined()
    expect(compileFastPlan({ ...base, version: 9 })).toBeUndefined()
  })
})

describe('IPv4 text cache', () => {
  const text = (v: number): string => ipv4Text(v)

  it('gives each address its own text, also when two addresses share a slot', () => {
    const c = new Ipv4TextCache()
    const slot = (v: number): number => Math.imul(v, 0x9e3779b1) >>> 20
    const a = 0xc0000201 // 192.0.2.1
    let b = a + 1
    while (slot(b) !== slot(a)) b++
    for (const v of [a, b, a, 0, b, 0xffffffff, 0, 0x01020304, 0x0a000a0a, 0xc0a864c8])
      expect(c.text(v), `address ${v.toString(16)}`).toBe(text(v))
  })
})
