// The store test suite every backend runs (test/store/duckdb.test.ts, test/store/clickhouse.test.ts): the
// same data, the same calls through the FlowStore interface, the same expected results. It covers a round
// trip of every column type (IPv4/IPv6 addresses and their keys, 64-bit counters up to 2^64−1, booleans,
// text with quotes and control characters, times with microseconds), the map column (`extra`) for elements
// without a column, filters and top-N, retention by age and by size, the batch triggers and flush on close,
// and probe → UDP → collector → store: every field the probe exports comes back out unchanged.
import { describe, expect, it } from 'vitest'
import { bundledCaptures } from '../../src/cli/commands/demo.js'
import { FlowCollector, type CollectedRecord } from '../../src/collector/decode-message.js'
import { listen } from '../../src/collector/listener.js'
import type { DecodedField } from '../../src/ipfix/decoder.js'
import { FilterError, parseFilter } from '../../src/query/filter.js'
import type { FlowQuery } from '../../src/query/sql.js'
import { COLUMNS, type Column } from '../../src/schema/columns.js'
import { storeRecords } from '../../src/store/ingest.js'
import { TOTAL_MAX, normalize, rowToJson, type FlowRow } from '../../src/store/normalize.js'
import { BatchWriter, type FlowStore, type QueryResult, type RetentionPolicy } from '../../src/store/store.js'
import { field, record } from '../helpers/flow-records.js'
import { probeRecords } from '../helpers/probe-run.js'
import { OfflineReader } from '../../src/collector/offline-reader.js'
import { optionRows, type OptionRow } from '../../src/store/options-rows.js'
import { OptionsWriter } from '../../src/store/options-writer.js'
import { existsSync } from 'node:fs'
import { ipfixMessage } from '../helpers/ipfix-messages.js'

const HUAWEI = '/work/shared/exports/ipfix/netgauze__106-IPFIXv10-HUAWEI-vrf_name/traffic-00.pcap'
const CISCO_SRV6 = '/work/shared/exports/ipfix/netgauze__500-IPFIXv10-BGP-CISCO-SRv6/traffic-00.pcap'

export interface SuiteStore extends FlowStore {
  retain(policy: RetentionPolicy, nowMs?: number): Promise<number>
  /** A plain SELECT on the store's engine. */
  sql(text: string): Promise<QueryResult>
  /** The options table, qualified as the engine needs. */
  readonly optionsTable: string
}

/** Every name in the options table, history included, sorted. */
async function rawOptionNames(store: SuiteStore): Promise<string[]> {
  const r = await store.sql(`SELECT name FROM ${store.optionsTable}`)
  return r.rows.map((x) => String(x.name)).sort()
}

export interface StoreBackend {
  readonly name: string
  /** Why the backend cannot run here (the suite is skipped with it), or undefined. */
  readonly skip: string | undefined
  /** A fresh, migrated, empty store with its own storage; `reopen` opens that storage again. */
  create(): Promise<{ store: SuiteStore; reopen: () => Promise<SuiteStore> }>
}

export const NAMES = COLUMNS.map((c) => c.name)

export { field, record }

const TRICKY = `it's "q" \\ back\nline\ttab \u0001 ' OR 1=1 -- ünïcødé 🚀`

/** A field for a column's canonical element with a value near the top of its range (variant 0 or 1). */
function fieldFor(c: Column, variant: number): DecodedField | undefined {
  const ie = c.ies[0]
  if (ie === undefined) return undefined
  switch (c.kind) {
    case 'u8':
      return field(ie, 'unsigned8', variant === 0 ? 255 : 1)
    case 'u16':
      return field(ie, 'unsigned16', variant === 0 ? 65535 : 2)
    case 'u32':
      return field(ie, 'unsigned32', variant === 0 ? 0xffffffff : 3)
    case 'u64':
      // Above 2^53 (not exact as a double) and the largest UInt64.
      return field(ie, 'unsigned64', variant === 0 ? (1n << 64n) - 1n : (1n << 53n) + 1n)
    case 'bool':
      return field(ie, 'boolean', variant === 0)
    case 'time':
      return field(ie, 'dateTimeMilliseconds', 1_700_000_000_123n + BigInt(variant))
    case 'text':
      if (c.name === 'src_addr')
        return variant === 0
          ? field('sourceIPv4Address', 'ipv4Address', '255.255.255.255')
          : field('sourceIPv6Address', 'ipv6Address', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe')
      if (c.name === 'dst_addr')
        return variant === 0
          ? field('destinationIPv6Address', 'ipv6Address', '2001:db8::1')
          : field('destinationIPv4Address', 'ipv4Address', '0.0.0.0')
      if (c.name === 'src_mac' || c.name === 'dst_mac')
        return field(ie, 'macAddress', new Uint8Array([0, 0x1b, 0x21, 0xaa, 0xbb, variant]))
      return field(ie, 'string', variant === 0 ? TRICKY : `${c.name} ${variant}`)
    default:
      return undefined
  }
}

/** Rows that fill every column: both variants, an all-absent row and one with µs and an element kept in extra. */
export function everyTypeRows(receivedUs: bigint): FlowRow[] {
  const full = (v: number): FlowRow =>
    normalize(
      record([
        ...COLUMNS.flatMap((c) => {
          const f = fieldFor(c, v)
          return f !== undefined ? [f] : []
        }),
        field('interfaceName', 'string', TRICKY),
        field('32473.99', 'octetArray', new Uint8Array([1, 2, 0xff])),
      ]),
      receivedUs + BigInt(v),
    )
  const micro = normalize(
    record([
      field('flowStartMicroseconds', 'dateTimeMicroseconds', 1_700_000_000_123_456_000n),
      field('sourceIPv6Address', 'ipv6Address', '::ffff:10.1.2.3'),
    ]),
    receivedUs + 2n,
  )
  const empty = normalize(
    record([], { exporter: '2001:db8::9', odid: 0, templateId: 0, version: 9 }),
    receivedUs + 3n,
  )
  return [full(0), full(1), micro, empty]
}

export function dataset(): FlowRow[] {
  const rec = (src: string, dst: string, dport: number, proto: number, bytes: bigint, ms: bigint): FlowRow =>
    normalize(
      record([
        field('flowStartMilliseconds', 'dateTimeMilliseconds', ms),
        field(src.includes(':') ? 'sourceIPv6Address' : 'sourceIPv4Address', 'ipv4Address', src),
        field(dst.includes(':') ? 'destinationIPv6Address' : 'destinationIPv4Address', 'ipv4Address', dst),
        field('destinationTransportPort', 'unsigned16', dport),
        field('protocolIdentifier', 'unsigned8', proto),
        field('octetDeltaCount', 'unsigned64', bytes),
        field('packetDeltaCount', 'unsigned64', bytes / 100n + 1n),
        field('tcpControlBits', 'unsigned16', proto === 6 ? 0x12 : 0),
        field('applicationName', 'string', dport === 443 ? 'https' : "it's"),
        ...(dport === 443 ? [field('tlsSni', 'string', 'www.example.com')] : []),
        ...(dport === 80 ? [field('httpStatusCode', 'unsigned16', 503)] : []),
      ]),
      0n,
    )
  return [
    rec('10.0.0.1', '192.0.2.80', 443, 6, 5000n, 1000n),
    rec('10.0.0.2', '192.0.2.80', 80, 6, 500n, 2000n),
    rec('172.16.0.1', '8.8.8.8', 53, 17, 100n, 3000n),
    rec('2001:db8::1', '2001:db8::53', 53, 17, 200n, 4000n),
    // Counters above 2^53 in two flows of one group: the sum (2^61 + 2) must be exact.
    rec('10.9.0.1', '198.51.100.7', 8443, 6, (1n << 60n) + 1n, 5000n),
    rec('10.9.0.2', '198.51.100.7', 8443, 6, (1n << 60n) + 1n, 6000n),
  ]
}

/** Filters over dataset() and the number of rows each selects. */
export const FILTER_CASES: ReadonlyArray<readonly [string, number]> = [
  ['src ip 10.0.0.1 and dst port 443 and proto tcp and bytes > 1000', 1],
  ['net 10.0.0.0/8', 4],
  ['not net 10.0.0.0/8', 2],
  ['net 2001:db8::/32 or dst ip 8.8.8.8', 2],
  ['src net 10.0.0.0/30', 2],
  ['host 2001:db8::53', 1],
  ['proto udp and port 53', 2],
  ['flags S', 4],
  ['flags SA', 4],
  ['flags F', 0],
  ['app = "it\'s"', 5],
  ['app ~ "it*"', 5],
  ['app ~ "h?tps"', 1],
  ['app ~ "[gh]ttps"', 1],
  ['app ~ "[!h]*"', 5],
  ['tls.sni ~ "*.example.com"', 1],
  ['http.status >= 500', 1],
  ['not http.status >= 500', 5],
  ['bytes > 1g', 2],
  ['bytes >= 1152921504606846977', 2],
  ['bytes > 1152921504606846977', 0],
  ['packets < 3', 1],
  ['dst port != 53 and dst port < 1000', 2],
  ['exporter 192.0.2.1', 6],
  ["exporter \"1' OR '1'='1\"", 0],
  [`app = "x'; DROP TABLE flows; --"`, 0],
  [`app = "\\\\' OR 1=1 --"`, 0],
]

const canon = (o: Record<string, unknown>): string =>
  JSON.stringify(Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))))

function waitFor(cond: () => boolean, ms = 20_000): Promise<void> {
  const start = Date.now()
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (cond()) resolve()
      else if (Date.now() - start > ms) reject(new Error('timed out'))
      else setTimeout(tick, 5)
    }
    tick()
  })
}

async function fill(store: FlowStore, rows: FlowRow[]): Promise<void> {
  const w = new BatchWriter(store, NAMES)
  for (const r of rows) w.add(r)
  await w.flush()
}

const all: FlowQuery = { allColumns: true, limit: 1_000_000 }

/** An options data record of exporter/domain, its first field the scope. */
function optionsRecord(fields: DecodedField[], over: Partial<CollectedRecord> = {}): CollectedRecord {
  return record(fields, { isOptions: true, scopeCount: 1, templateId: 400, ...over })
}

const octets = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'))

/** Options facts of two exporters (192.0.2.1 domain 7 and 192.0.2.9 domain 7), received at t0 and t1. */
export function optionsDataset(): OptionRow[] {
  const t0 = 1_000_000n
  const t1 = 2_000_000n
  const app = (id: string, name: string, category: string): CollectedRecord =>
    optionsRecord([
      field('applicationId', 'octetArray', octets(id)),
      field('applicationName', 'string', name),
      field('applicationDescription', 'string', `${name} (RFC 6759)`),
      field('applicationCategoryName', 'string', category),
    ])
  const iface = (
    idx: number,
    name: string,
    descr: string,
    over: Partial<CollectedRecord> = {},
  ): CollectedRecord =>
    optionsRecord(
      [
        field('ingressInterface', 'unsigned32', idx),
        field('interfaceName', 'string', name),
        field('interfaceDescription', 'string', descr),
      ],
      over,
    )
  return [
    ...optionRows(app('0d000001', 'OldTube', 'Video'), t0), // superseded by the later row of the same id
    ...optionRows(app('0d000001', 'YouTube', 'Streaming'), t1),
    ...optionRows(app('0d000002', 'it\'s "quoted"', 'Other'), t1),
    ...optionRows(iface(3, 'eth0', 'uplink'), t0),
    ...optionRows(iface(4, 'eth1', "to 'core'"), t0),
    ...optionRows(iface(3, 'ge-0/0/0', 'other exporter'), t0).map((r) => ({ ...r, exporter: '192.0.2.9' })),
    ...optionRows(
      optionsRecord([
        field('ingressVRFID', 'unsigned32', 5),
        field('egressVRFID', 'unsigned32', 5),
        field('VRFname', 'string', 'blue'),
      ]),
      t0,
    ),
    ...optionRows(
      optionsRecord([
        field('observationDomainId', 'unsigned32', 7),
        field('samplingPacketInterval', 'unsigned32', 1),
        field('samplingPacketSpace', 'unsigned32', 99),
      ]),
      t0,
    ),
    ...optionRows(
      optionsRecord([
        field('samplerId', 'unsigned32', 2),
        field('samplerRandomInterval', 'unsigned32', 1000),
        field('samplerName', 'string', 'sampler-2'),
      ]),
      t0,
    ),
    ...optionRows(
      optionsRecord([
        field('exportingProcessId', 'unsigned32', 11),
        field('exportedMessageTotalCount', 'unsigned64', 1234n),
        field('exportedFlowRecordTotalCount', 'unsigned64', 56789n),
      ]),
      t1,
    ),
  ]
}

/** Flows that the options of optionsDataset() name (by time_start: 1..7 s). */
export function joinFlows(): FlowRow[] {
  const flow = (s: number, fields: DecodedField[], over: Partial<CollectedRecord> = {}): FlowRow =>
    normalize(
      record(
        [
          field('flowStartMilliseconds', 'dateTimeMilliseconds', BigInt(s * 1000)),
          field('sourceIPv4Address', 'ipv4Address', `10.0.0.${s}`),
          field('octetDeltaCount', 'unsigned64', BigInt(s * 100)),
          ...fields,
        ],
        over,
      ),
      0n,
    )
  return [
    flow(1, [
      field('applicationId', 'octetArray', octets('0d000001')),
      field('ingressInterface', 'unsigned32', 3),
      field('egressInterface', 'unsigned32', 4),
      field('egressVRFID', 'unsigned32', 5),
    ]),
    flow(2, [field('applicationId', 'octetArray', octets('0d000002')), field('samplerId', 'unsigned32', 2)]),
    flow(3, [field('applicationName', 'string', 'own'), field('samplingInterval', 'unsigned32', 10)]),
    flow(4, [
      field('applicationId', 'octetArray', octets('0d0000ff')),
      field('ingressVRFID', 'unsigned32', 5),
    ]),
    flow(5, [field('ingressInterface', 'unsigned32', 3)], { exporter: '192.0.2.9' }),
    flow(6, [field('ingressInterface', 'unsigned32', 3)], { odid: 8 }),
    flow(7, [field('applicationId', 'octetArray', octets('0d000001'))]),
  ]
}

/** The joined fields of each joinFlows() row, in time order. */
export const JOINED_EXPECTED = [
  ['10.0.0.1', 'YouTube', 'Streaming', 'eth0', 'eth1', 'uplink', null, 'blue', 100n],
  ['10.0.0.2', 'it\'s "quoted"', 'Other', null, null, null, null, null, 1000n],
  ['10.0.0.3', 'own', null, null, null, null, null, null, 10n],
  ['10.0.0.4', null, null, null, null, null, 'blue', null, 100n],
  ['10.0.0.5', null, null, 'ge-0/0/0', null, 'other exporter', null, null, null],
  ['10.0.0.6', null, null, null, null, null, null, null, null],
  ['10.0.0.7', 'YouTube', 'Streaming', null, null, null, null, null, 100n],
]
const JOINED_COLUMNS = [
  'src_addr',
  'app_name',
  'app_category',
  'in_if_name',
  'out_if_name',
  'in_if_description',
  'vrf_name',
  'out_vrf_name',
  'sampling_rate',
]

/** Filters on joined fields over joinFlows() and the source addresses (last octet) each selects. */
export const JOINED_FILTERS: ReadonlyArray<readonly [string, number[]]> = [
  ['app youtube', [1, 7]],
  ['app YouTube and in if eth0', [1]],
  ['not app youtube', [2, 3, 4, 5, 6]],
  ['app ~ "*quoted*"', [2]],
  ['app own', [3]],
  ['app_category = Streaming', [1, 7]],
  ['in if eth0', [1]],
  ['out if eth1', [1]],
  ['if ~ "eth*"', [1]],
  ['in if ~ "ge-*"', [5]],
  ['in if 3', [1, 5, 6]],
  ['vrf blue', [1, 4]],
  ['out_vrf_name = blue and bytes > 50', [1]],
  ['sampling_rate >= 100', [1, 2, 4, 7]],
  ['sampling_rate = 10', [3]],
  ['in_if_description = "to \'core\'" or out_if_description = "to \'core\'"', [1]],
  [`app = "x'; DROP TABLE flow_options; --"`, []],
]

export function defineStoreSuite(b: StoreBackend): void {
  describe.skipIf(b.skip !== undefined)(
    `store suite: ${b.name}${b.skip !== undefined ? ` (skipped: ${b.skip})` : ''}`,
    () => {
      it('migrates idempotently, also reopened', async () => {
        const { store, reopen } = await b.create()
        await store.migrate()
        await store.migrate()
        expect(await store.count()).toBe(0)
        await store.close()
        const again = await reopen()
        await again.migrate()
        expect(await again.count()).toBe(0)
        await again.close()
      })

      it('IPFIX data sets straight into typed columns store the rows the record path stores', async () => {
        // Two templates the fast path takes (IPv4 and IPv6 biflows) and one it does not (an unknown
        // element, kept in extra), 3 000 records over several batches and 2048-row chunks.
        const v4 = [152, 153, 8, 12, 7, 11, 4, 1, 2, 1, 2, 6, 58, 10].map((id, i) => ({
          id,
          pen: i === 9 || i === 10 ? 29305 : 0,
          length: [8, 8, 4, 4, 2, 2, 1, 8, 8, 8, 4, 2, 2, 4][i]!,
        }))
        const v6 = v4.map((f) =>
          f.id === 8 ? { ...f, id: 27, length: 16 } : f.id === 12 ? { ...f, id: 28, length: 16 } : f,
        )
        const odd = [...v4, { id: 1, pen: 99999, length: 3 }]
        let x = 12345
        const rnd = (): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0)
        const recordOf = (fields: typeof v4): Uint8Array[] =>
          fields.map((f) => {
            const b = Buffer.alloc(f.length)
            if (f.id === 152 || f.id === 153)
              b.writeBigUInt64BE(BigInt(1_700_000_000_000 + (rnd() % 100_000_000)))
            else for (let i = 0; i < b.length; i++) b[i] = rnd() & 255
            return b
          })
        const msgs: Buffer[] = []
        for (let m = 0; m < 150; m++) {
          const [id, fields] = m % 3 === 0 ? [300, v4] : m % 3 === 1 ? [301, v6] : [302, odd]
          msgs.push(
            ipfixMessage({
              templateId: id,
              fields,
              records: Array.from({ length: 20 }, () => recordOf(fields)),
              withTemplate: m < 3,
              sequence: m * 20,
            }),
          )
        }
        const key = {
          protocol: 'udp' as const,
          exporterAddress: '192.0.2.5',
          exporterPort: 4000,
          collectorAddress: '127.0.0.1',
          collectorPort: 4739,
        }
        const rowsVia = async (fast: boolean): Promise<string[]> => {
          const { store } = await b.create()
          const writer = new BatchWriter(store, NAMES, { maxRows: 1000 })
          const col = new FlowCollector()
          if (fast) col.columnSink = writer
          let n = 0
          for (const m of msgs) n += storeRecords(writer, col.decode(m, key))
          await writer.flush()
          expect(n).toBe(3000)
          if (fast) expect(writer.fastStats.records).toBe(2000)
          const rows = (await store.query(all)).rows.map((r) =>
            JSON.stringify(
              Object.entries({ ...r, time_received: null }).sort(([a], [b]) => (a < b ? -1 : 1)),
              (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v),
            ),
          )
          await store.close()
          return rows.sort()
        }
        const fast = await rowsVia(true)
        expect(fast).toHaveLength(3000)
        expect(fast).toEqual(await rowsVia(false))
      })

      it('stores every column type and reads back the same row', async () => {
        const { store } = await b.create()
        const rows = everyTypeRows(1_800_000_000_000_000n)
        // Every column is filled by at least one row (so every type is round-tripped).
        for (const c of COLUMNS)
          expect(
            rows.some((r) => r[c.name] !== null),
            c.name,
          ).toBe(true)
        expect(rows[2]?.time_start).toBe(1_700_000_000_123_456n)
        await fill(store, rows)
        const back = (await store.query(all)).rows
        const byReceived = (r: Record<string, unknown>): bigint => r.time_received as bigint
        back.sort((x, y) => Number(byReceived(x) - byReceived(y)))
        expect(back).toEqual(rows)
        expect(back[0]?.bytes).toBe((1n << 64n) - 1n)
        expect(back[1]?.bytes).toBe((1n << 53n) + 1n)
        expect(back[0]?.src_ip_key).toBe(0xffffffffffffn)
        expect(back[1]?.src_ip_key).toBe((1n << 128n) - 2n)
        expect(back[0]?.flowtel_tcp_sack_permitted).toBe(true)
        expect(back[1]?.flowtel_tcp_sack_permitted).toBe(false)
        await store.close()
      })

      it('caps a flow total at 2^63-1 and sums the largest counters in top-N without an error', async () => {
        const { store } = await b.create()
        const rows = everyTypeRows(1_800_000_000_000_000n)
        // full(0): bytes and rev_bytes 2^64-1 each; full(1): 2^53+1 each.
        expect(rows[0]?.total_bytes).toBe(TOTAL_MAX)
        expect(rows[1]?.total_bytes).toBe(((1n << 53n) + 1n) * 2n)
        await fill(store, rows)
        const top = await store.query({ top: ['tos'], by: 'bytes' })
        const bytes = top.rows.map((r) => BigInt(r.bytes as bigint | number))
        expect(bytes).toContain(TOTAL_MAX)
        expect(bytes).toContain(((1n << 53n) + 1n) * 2n)
        await store.close()
      })

      it('keeps elements without a column, repeats and aliases in the map column', async () => {
        const { store } = await b.create()
        const row = normalize(
          record([
            field('flowStartSeconds', 'dateTimeSeconds', 1_700_000_000),
            field('sourceIPv6Address', 'ipv6Address', '2001:db8::5'),
            field('icmpTypeCodeIPv6', 'unsigned16', 0x8000),
            field('vlanId', 'unsigned16', 10),
            field('vlanId', 'unsigned16', 20),
            field('interfaceName', 'string', 'eth0'),
            field('32473.99', 'octetArray', new Uint8Array([1, 2])),
          ]),
          0n,
        )
        await fill(store, [row])
        const back = (await store.query(all)).rows[0]
        expect(back).toBeDefined()
        expect(rowToJson(back!)).toEqual({
          flowStartSeconds: '2023-11-14T22:13:20.000Z',
          sourceIPv6Address: '2001:db8::5',
          icmpTypeCodeIPv6: 0x8000,
          vlanId: [10, 20],
          interfaceName: 'eth0',
          '32473.99': '0102',
        })
        await store.close()
      })

      it('filters, time windows and top-N', async () => {
        const { store } = await b.create()
        await fill(store, dataset())
        for (const [f, n] of FILTER_CASES)
          expect((await store.query({ filter: parseFilter(f), limit: 100 })).rows.length, f).toBe(n)
        const count = async (f: string, since?: bigint, until?: bigint): Promise<number> =>
          (
            await store.query({
              filter: parseFilter(f),
              ...(since !== undefined ? { since } : {}),
              ...(until !== undefined ? { until } : {}),
            })
          ).rows.length
        expect(await count('src ip 10.0.0.1', 1_500_000n)).toBe(0)
        expect(await count('proto tcp', 1_500_000n, 2_500_000n)).toBe(1)
        expect(await count('proto tcp', 2_000_000n)).toBe(3)
        const top = await store.query({ top: ['dst_addr'], by: 'bytes' })
        expect(top.columns).toEqual(['dst_addr', 'flows', 'packets', 'bytes'])
        expect(top.rows.map((x) => [x.dst_addr, x.flows, x.bytes])).toEqual([
          ['198.51.100.7', 2n, (1n << 61n) + 2n],
          ['192.0.2.80', 2n, 5500n],
          ['2001:db8::53', 1n, 200n],
          ['8.8.8.8', 1n, 100n],
        ])
        const byFlows = await store.query({
          top: ['proto'],
          by: 'flows',
          filter: parseFilter('bytes >= 200'),
        })
        expect(byFlows.rows.map((x) => [x.proto, x.flows])).toEqual([
          [6, 4n],
          [17, 1n],
        ])
        const byPackets = await store.query({ top: ['srcip', 'dstport'], by: 'packets', limit: 2 })
        expect(byPackets.rows.map((x) => [x.src_addr, x.dst_port, x.packets])).toEqual([
          ['10.9.0.1', 8443, (1n << 60n) / 100n + 1n],
          ['10.9.0.2', 8443, (1n << 60n) / 100n + 1n],
        ])
        const listed = await store.query({ orderBy: 'bytes', limit: 3 })
        expect(listed.rows.map((r) => r.src_addr)).toEqual(['10.9.0.1', '10.9.0.2', '10.0.0.1'])
        expect(() => parseFilter("src ip 1.2.3.4' OR 1=1 --")).toThrow(FilterError)
        expect(await store.count()).toBe(6)
        await store.close()
      })

      it('top-N by address: IPv4, IPv6, 0.0.0.0, :: and no address are groups of their own', async () => {
        const { store } = await b.create()
        const flow = (src: string | undefined, bytes: number): FlowRow =>
          normalize(
            record([
              ...(src === undefined
                ? []
                : [
                    src.includes(':')
                      ? field('sourceIPv6Address', 'ipv6Address', src)
                      : field('sourceIPv4Address', 'ipv4Address', src),
                  ]),
              field('octetDeltaCount', 'unsigned64', BigInt(bytes)),
            ]),
            1_000_000n,
          )
        await fill(store, [
          flow('10.0.0.1', 300),
          flow('10.0.0.1', 200),
          flow('2001:db8::1', 500),
          flow('0.0.0.0', 400),
          flow('::', 400),
          flow(undefined, 400),
          flow('10.0.0.2', 300),
          flow('2001:db8::2', 100),
        ])
        // Ties by address key: IPv4-mapped (::ffff:…) before 2001:db8::, :: before 0.0.0.0, no address last.
        const top = await store.query({ top: ['src_addr'], by: 'bytes' })
        expect(top.rows.map((r) => [r.src_addr, r.flows, r.bytes])).toEqual([
          ['10.0.0.1', 2n, 500n],
          ['2001:db8::1', 1n, 500n],
          ['::', 1n, 400n],
          ['0.0.0.0', 1n, 400n],
          [null, 1n, 400n],
          ['10.0.0.2', 1n, 300n],
          ['2001:db8::2', 1n, 100n],
        ])
        const v4 = await store.query({
          top: ['src_addr'],
          filter: parseFilter('src net 10.0.0.0/8'),
          limit: 1,
        })
        expect(v4.rows.map((r) => [r.src_addr, r.bytes])).toEqual([['10.0.0.1', 500n]])
        const notV4 = await store.query({ top: ['src_addr'], filter: parseFilter('not src net 10.0.0.0/8') })
        expect(notV4.rows.map((r) => r.src_addr)).toEqual([
          '2001:db8::1',
          '::',
          '0.0.0.0',
          null,
          '2001:db8::2',
        ])
        const zero = await store.query({
          top: ['src_addr'],
          filter: parseFilter('src ip 0.0.0.0 or src net 0.0.0.0/31'),
        })
        expect(zero.rows.map((r) => [r.src_addr, r.bytes])).toEqual([['0.0.0.0', 400n]])
        const one = await store.query({ top: ['src_addr', 'proto'], filter: parseFilter('src ip 10.0.0.2') })
        expect(one.rows.map((r) => [r.src_addr, r.proto, r.bytes])).toEqual([['10.0.0.2', null, 300n]])
        // A cut through a tie: the lower addresses of equal counts, and every sum of the groups kept.
        await fill(store, [
          flow('10.0.0.9', 1),
          flow('10.0.0.9', 1),
          flow('10.0.0.3', 7),
          flow('10.0.0.5', 9),
          flow('10.0.0.4', 9),
        ])
        const cut = await store.query({ top: ['src_addr'], by: 'flows', limit: 3 })
        expect(cut.rows.map((r) => [r.src_addr, r.flows, r.bytes])).toEqual([
          ['10.0.0.1', 2n, 500n],
          ['10.0.0.9', 2n, 2n],
          ['::', 1n, 400n],
        ])
        const cutV4 = await store.query({
          top: ['src_addr'],
          filter: parseFilter('src net 10.0.0.0/8'),
          limit: 3,
        })
        expect(cutV4.rows.map((r) => [r.src_addr, r.flows, r.bytes])).toEqual([
          ['10.0.0.1', 2n, 500n],
          ['10.0.0.2', 1n, 300n],
          ['10.0.0.4', 1n, 9n],
        ])
        await store.close()
      })

      it('top-N by integer columns: NULL is a group apart from 0, every width', async () => {
        const { store } = await b.create()
        const flow = (
          port: number | undefined,
          proto: number | undefined,
          inIf: number | undefined,
        ): FlowRow =>
          normalize(
            record([
              ...(port !== undefined ? [field('destinationTransportPort', 'unsigned16', port)] : []),
              ...(proto !== undefined ? [field('protocolIdentifier', 'unsigned8', proto)] : []),
              ...(inIf !== undefined ? [field('ingressInterface', 'unsigned32', inIf)] : []),
              field('octetDeltaCount', 'unsigned64', 10n),
            ]),
            1_000_000n,
          )
        await fill(store, [
          flow(0, 0, 0),
          flow(0, 0, 0),
          flow(0, 0, 0),
          flow(undefined, undefined, undefined),
          flow(undefined, undefined, undefined),
          flow(65535, 255, 4294967295),
          flow(65535, 255, 4294967295),
          flow(443, 6, 1),
          flow(443, undefined, 1),
        ])
        const top = await store.query({ top: ['dst_port', 'proto', 'in_if'], by: 'flows' })
        expect(top.rows.map((r) => [r.dst_port, r.proto, r.in_if, r.flows])).toEqual([
          [0, 0, 0, 3n],
          [65535, 255, 4294967295, 2n],
          [null, null, null, 2n],
          [443, 6, 1, 1n],
          [443, null, 1, 1n],
        ])
        const ports = await store.query({ top: ['dst_port'], by: 'bytes' })
        expect(ports.rows.map((r) => [r.dst_port, r.bytes])).toEqual([
          [0, 30n],
          [443, 20n],
          [65535, 20n],
          [null, 20n],
        ])
        await store.close()
      })

      it('applies retention by age and by row count', async () => {
        const { store } = await b.create()
        const now = 1_800_000_000_000
        const rows = Array.from({ length: 10 }, (_, i) =>
          normalize(
            record([
              field('sourceIPv4Address', 'ipv4Address', `10.0.0.${i}`),
              field('octetDeltaCount', 'unsigned64', BigInt(100 * i)),
            ]),
            BigInt(now - i * 60_000) * 1000n, // received 0..9 minutes ago
          ),
        )
        // Two days back as well: a whole partition to drop.
        rows.push(
          normalize(
            record([field('octetDeltaCount', 'unsigned64', 7n)]),
            BigInt(now - 2 * 86_400_000) * 1000n,
          ),
        )
        await fill(store, rows)
        expect(await store.retain({ maxAgeMs: 5.5 * 60_000 }, now)).toBe(5) // 6..9 minutes and 2 days old
        expect(await store.count()).toBe(6)
        expect(await store.retain({ maxRows: 4 }, now)).toBe(2) // the two oldest left (4 and 5 minutes)
        const left = (await store.query({ limit: 100 })).rows
          .map((r) => r.bytes as bigint)
          .sort((x, y) => Number(x - y))
        expect(left).toEqual([0n, 100n, 200n, 300n])
        expect(await store.retain({}, now)).toBe(0)
        expect(await store.retain({ maxRows: 10, maxAgeMs: 3_600_000 }, now)).toBe(0)
        await store.close()
      })

      it('retention trims the options facts superseded before the oldest flow kept', async () => {
        const { store } = await b.create()
        const now = Date.UTC(2026, 0, 15, 12)
        const us = (msAgo: number): bigint => BigInt(now - msAgo) * 1000n
        const fact = (key: string, name: string, msAgo: number): OptionRow => ({
          time_received: us(msAgo),
          exporter: '192.0.2.1',
          observation_domain: 7,
          kind: 'interface',
          key,
          name,
          description: '',
          category: '',
          rate: 0n,
          data: '{}',
        })
        const hour = 3_600_000
        await store.insertOptions([
          fact('1', 'eth0-old', 5 * hour), // superseded, older than every flow kept: trimmed
          fact('1', 'eth0-mid', 3 * hour), // superseded, but newer than the oldest flow kept: kept
          fact('1', 'eth0', hour / 2), // the latest of key 1: kept
          fact('2', 'eth1', 6 * hour), // the latest of key 2, however old: kept
        ])
        const flow = (msAgo: number, ifIndex: number): FlowRow =>
          normalize(record([field('ingressInterface', 'unsigned32', ifIndex)]), us(msAgo))
        await fill(store, [flow(10 * hour, 1), flow(4 * hour, 1), flow(hour, 2)])
        // No retention asked: nothing trimmed.
        expect(await store.retain({}, now)).toBe(0)
        expect((await store.options({ kind: 'interface' })).rows).toHaveLength(2)
        expect(await store.retain({ maxAgeMs: 4.5 * hour }, now)).toBe(1) // the flow 10 hours old
        const names = await store.query({ columns: ['in_if', 'in_if_name'], limit: 10 })
        expect(names.rows.map((r) => [r.in_if, r.in_if_name]).sort()).toEqual([
          [1, 'eth0'],
          [2, 'eth1'],
        ])
        // What is left of the history: read through the options listing's source, all rows of the table.
        const left = await store.options({ kind: 'interface' })
        expect(left.rows.map((r) => [r.key, r.name])).toEqual([
          ['1', 'eth0'],
          ['2', 'eth1'],
        ])
        expect(await rawOptionNames(store)).toEqual(['eth0', 'eth0-mid', 'eth1'])
        // By row count: the oldest flow kept is 1 hour old, so eth0-mid (3 hours) goes too.
        expect(await store.retain({ maxRows: 1 }, now)).toBe(1)
        expect(await rawOptionNames(store)).toEqual(['eth0', 'eth1'])
        await store.close()
      })

      it('flushes on the size trigger, the time trigger and on close', async () => {
        const { store, reopen } = await b.create()
        const w = new BatchWriter(store, NAMES, { maxRows: 3, maxDelayMs: 30 })
        const row = (i: number): FlowRow =>
          normalize(record([field('octetDeltaCount', 'unsigned64', BigInt(i))]), BigInt(Date.now()) * 1000n)
        for (let i = 0; i < 3; i++) w.add(row(i))
        await w.flush() // the size trigger already started this flush; wait for it
        expect(await store.count()).toBe(3)
        w.add(row(3))
        await waitFor(() => w.pending === 0)
        await w.flush()
        expect(await store.count()).toBe(4)
        for (let i = 4; i < 6; i++) w.add(row(i))
        await w.close() // below the size trigger and before the timer: close must store them
        const again = await reopen()
        expect(await again.count()).toBe(6)
        await again.close()
      })

      it('joins options data onto flows at query time: names, rates, filters and top-N', async () => {
        const { store, reopen } = await b.create()
        await fill(store, joinFlows())
        // No options yet: the joined fields are empty, app_name is the flow's own applicationName.
        const before = await store.query({ columns: JOINED_COLUMNS, limit: 100 })
        expect(before.rows.map((r) => r.app_name)).toEqual([null, null, 'own', null, null, null, null])
        expect(before.rows.map((r) => r.sampling_rate)).toEqual([null, null, 10n, null, null, null, null])
        await store.insertOptions(optionsDataset())
        const joined = await store.query({ columns: JOINED_COLUMNS, limit: 100 })
        expect(joined.columns).toEqual(JOINED_COLUMNS)
        expect(joined.rows.map((r) => JOINED_COLUMNS.map((c) => r[c]))).toEqual(JOINED_EXPECTED)
        for (const [f, want] of JOINED_FILTERS) {
          const r = await store.query({ filter: parseFilter(f), columns: ['src_addr'], limit: 100 })
          expect(r.rows.map((x) => Number(String(x.src_addr).split('.')[3])).sort(), f).toEqual(want)
        }
        // The default listing carries the joined names; top-N groups by them.
        const listing = await store.query({ filter: parseFilter('app youtube'), limit: 10 })
        expect(listing.columns).toContain('app_name')
        expect(listing.rows.map((r) => [r.src_addr, r.app_name, r.in_if_name])).toEqual([
          ['10.0.0.1', 'YouTube', 'eth0'],
          ['10.0.0.7', 'YouTube', null],
        ])
        const top = await store.query({ top: ['app'], by: 'bytes' })
        expect(top.rows.map((r) => [r.app_name, r.flows, r.bytes])).toEqual([
          [null, 3n, 1500n],
          ['YouTube', 2n, 800n],
          ['own', 1n, 300n],
          ['it\'s "quoted"', 1n, 200n],
        ])
        const byIf = await store.query({
          top: ['inifname', 'vrf'],
          by: 'flows',
          filter: parseFilter('in if 3'),
        })
        expect(byIf.rows.map((r) => [r.in_if_name, r.vrf_name, r.flows])).toEqual([
          ['eth0', null, 1n],
          ['ge-0/0/0', null, 1n],
          [null, null, 1n],
        ])
        // The latest fact per key, for `flowtel query --options`.
        const apps = await store.options({ kind: 'application' })
        expect(apps.rows.map((r) => [r.key, r.name, r.category, r.received])).toEqual([
          ['0d000001', 'YouTube', 'Streaming', 2_000_000n],
          ['0d000002', 'it\'s "quoted"', 'Other', 2_000_000n],
        ])
        const stats = (await store.options({ kind: 'stats' })).rows
        expect(stats.map((r) => [r.exporter, r.key, JSON.parse(String(r.data)) as unknown])).toEqual([
          [
            '192.0.2.1',
            '11',
            { exportingProcessId: 11, exportedMessageTotalCount: 1234, exportedFlowRecordTotalCount: 56789 },
          ],
        ])
        expect((await store.options({})).rows).toHaveLength(9)
        await store.close()
        const again = await reopen()
        expect(
          (await again.query({ columns: JOINED_COLUMNS, limit: 100 })).rows.map((r) => r.app_name),
        ).toEqual(JOINED_EXPECTED.map((r) => r[1]))
        await again.close()
      })

      it.skipIf(!existsSync(HUAWEI))(
        'names VRFs and interfaces from real exports (Huawei, Cisco)',
        async () => {
          const { store } = await b.create()
          const writer = new BatchWriter(store, NAMES)
          const options = new OptionsWriter(store)
          const col = new FlowCollector()
          const reader = new OfflineReader(col, (o) => {
            storeRecords(writer, o)
            options.add(o)
          })
          await reader.read([HUAWEI])
          await writer.flush()
          await options.flush()
          // pmacct's golden decode of this capture: egress_vrf_name A4 for the two UDP flows (egressVRFID 1),
          // ingress_vrf_name A4 for the BGP one (ingressVRFID 1), and no name for VRF id 0.
          const rows = (
            await store.query({ columns: ['proto', 'src_addr', 'vrf_name', 'out_vrf_name'], limit: 10 })
          ).rows.map((r) => [r.proto, r.src_addr, r.vrf_name, r.out_vrf_name])
          expect(rows).toEqual([
            [4, '2001:db8:53::1', null, 'A4'],
            [4, '2001:db8:53::1', null, 'A4'],
            [6, 'fd00::2', 'A4', null],
          ])
          expect((await store.query({ filter: parseFilter('vrf A4'), limit: 10 })).rows).toHaveLength(3)
          if (existsSync(CISCO_SRV6)) {
            const col2 = new FlowCollector()
            const w2 = new BatchWriter(store, NAMES)
            const o2 = new OptionsWriter(store)
            await new OfflineReader(col2, (o) => {
              storeRecords(w2, o)
              o2.add(o)
            }).read([CISCO_SRV6])
            await w2.flush()
            await o2.flush()
            const ifs = (await store.options({ kind: 'interface' })).rows
            expect(ifs.length).toBeGreaterThan(0)
            const named = await store.query({
              filter: parseFilter('in if ~ "*"'),
              columns: ['exporter', 'observation_domain', 'in_if', 'in_if_name'],
              limit: 1000,
            })
            expect(named.rows.length).toBeGreaterThan(0)
            // Each name is the one the exporter gave that interface index in that domain.
            const byKey = new Map(
              ifs.map((r) => [
                `${String(r.exporter)}|${String(r.observation_domain)}|${String(r.key)}`,
                r.name,
              ]),
            )
            for (const r of named.rows)
              expect(r.in_if_name).toBe(
                byKey.get(`${String(r.exporter)}|${String(r.observation_domain)}|${String(r.in_if)}`),
              )
          }
          await store.close()
        },
      )

      it('probe → UDP → collector → store: flows named by the probe RFC 6759 catalogue (template 290)', async () => {
        const { store } = await b.create()
        const writer = new BatchWriter(store, NAMES, { maxRows: 200 })
        const options = new OptionsWriter(store)
        const col = new FlowCollector()
        let taken = 0
        const l = await listen({ protocol: 'udp', host: '127.0.0.1', port: 0 }, col, (o) => {
          taken += storeRecords(writer, o)
          options.add(o)
        })
        try {
          const run = await probeRecords(
            [bundledCaptures()],
            { fields: ['all'], destinations: [{ kind: 'udp', host: '127.0.0.1', port: l.port }] },
            [],
            true,
          )
          // Not the options records (catalogue, RFC 5610 types, statistics: RFC 7011 §4 scopes).
          const OPTION_FIELDS = [
            'applicationName',
            'informationElementId',
            'observationDomainId',
            'exportingProcessId',
          ]
          const flows = run.records.filter((r) => !OPTION_FIELDS.some((f) => f in r))
          const catalogue = new Map(
            run.records
              .filter((r) => typeof r.applicationName === 'string' && typeof r.applicationId === 'string')
              .map((r) => [r.applicationId as string, r.applicationName as string]),
          )
          expect(catalogue.size).toBeGreaterThan(100)
          await waitFor(() => taken >= flows.length)
          await writer.flush()
          await options.flush()
          const rows = (await store.query({ columns: ['src_addr', 'app_name'], limit: 1_000_000 })).rows
          expect(rows).toHaveLength(flows.length)
          // Every flow whose applicationId is in the catalogue gets that name, the others none.
          const want = flows.map((f) => catalogue.get(String(f.applicationId)) ?? null).sort()
          expect(rows.map((r) => r.app_name).sort()).toEqual(want)
          const named = want.filter((n) => n !== null)
          expect(named.length).toBeGreaterThan(0)
          const dns = named.filter((n) => n === 'DNS').length
          expect(dns).toBeGreaterThan(0)
          expect((await store.query({ filter: parseFilter('app dns'), limit: 100_000 })).rows).toHaveLength(
            dns,
          )
        } finally {
          await l.close()
          await writer.close()
        }
      })

      it('probe → UDP → collector → store: every exported field comes back unchanged', async () => {
        const { store } = await b.create()
        const writer = new BatchWriter(store, NAMES, { maxRows: 200 })
        const col = new FlowCollector()
        let taken = 0
        const l = await listen({ protocol: 'udp', host: '127.0.0.1', port: 0 }, col, (o) => {
          taken += storeRecords(writer, o)
        })
        try {
          const run = await probeRecords([bundledCaptures()], {
            fields: ['all'],
            destinations: [{ kind: 'udp', host: '127.0.0.1', port: l.port }],
          })
          expect(run.records.length).toBeGreaterThan(100)
          await waitFor(() => taken >= run.records.length).catch((e: unknown) => {
            throw new Error(`${String(e)}: stored ${taken} of ${run.records.length}`)
          })
          await writer.flush()
          expect(await store.count()).toBe(run.records.length)
          const rows = (await store.query(all)).rows
          expect(rows.map((r) => canon(rowToJson(r))).sort()).toEqual(run.records.map(canon).sort())
          // The probe's elements land in their columns, not in extra.
          const filled = (name: string): number => rows.filter((r) => r[name] !== null).length
          expect(filled('http_status')).toBeGreaterThan(0)
          expect(filled('dns_qname')).toBeGreaterThan(0)
          expect(filled('npm_delay_avg')).toBeGreaterThan(0)
          expect(filled('flowtel_tcp_mss')).toBeGreaterThan(0)
          expect(rows.filter((r) => String(r.extra ?? '').includes('octetDeltaCount'))).toHaveLength(0)
        } finally {
          await l.close()
          await writer.close()
        }
      })
    },
  )
}
