// The store test suite every backend runs (test/store/duckdb.test.ts, test/store/clickhouse.test.ts): the
// same data, the same calls through the FlowStore interface, the same expected results. It covers a round
// trip of every column type (IPv4/IPv6 addresses and their keys, 64-bit counters up to 2^64−1, booleans,
// text with quotes and control characters, times with microseconds), the map column (`extra`) for elements
// without a column, filters and top-N, retention by age and by size, the batch triggers and flush on close,
// and probe → UDP → collector → store: every field the probe exports comes back out unchanged.
import { describe, expect, it } from 'vitest'
import { bundledCaptures } from '../../src/cli/commands/demo.js'
import { FlowCollector } from '../../src/collector/decode-message.js'
import { listen } from '../../src/collector/listener.js'
import type { DecodedField } from '../../src/ipfix/decoder.js'
import { FilterError, parseFilter } from '../../src/query/filter.js'
import type { FlowQuery } from '../../src/query/sql.js'
import { COLUMNS, type Column } from '../../src/schema/columns.js'
import { storeRecords } from '../../src/store/ingest.js'
import { normalize, rowToJson, type FlowRow } from '../../src/store/normalize.js'
import { BatchWriter, type FlowStore, type RetentionPolicy } from '../../src/store/store.js'
import { field, record } from '../helpers/flow-records.js'
import { probeRecords } from '../helpers/probe-run.js'

export interface SuiteStore extends FlowStore {
  retain(policy: RetentionPolicy, nowMs?: number): Promise<number>
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
