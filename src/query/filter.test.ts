// The filter language: good expressions parse to the expected AST and SQL (values always bound), bad ones
// fail with the position of the fault, and injection attempts never reach the SQL text; the compiled SQL
// runs on DuckDB against a few rows.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CollectedRecord } from '../collector/decode-message.js'
import type { DecodedField } from '../ipfix/decoder.js'
import { COLUMNS } from '../schema/columns.js'
import { DuckDbStore } from '../store/duckdb.js'
import { normalize } from '../store/normalize.js'
import { BatchWriter } from '../store/store.js'
import { FilterError, MAX_FILTER_DEPTH, MAX_FILTER_TERMS, parseFilter } from './filter.js'
import { compileFilter, compileQuery } from './sql.js'

const sql = (f: string): string => compileFilter(parseFilter(f)).sql

describe('filter parser and compiler', () => {
  it('compiles the nfdump-style example with every value bound', () => {
    const c = compileFilter(parseFilter('src ip 10.0.0.1 and dst port 443 and proto tcp and bytes > 1000'))
    expect(c.sql).toBe('(((src_ip_key = $1 AND dst_port = $2) AND proto = $3) AND total_bytes > $4)')
    expect(c.params).toEqual([
      { value: 0xffff0a000001n, type: 'UHUGEINT' },
      { value: 443n, type: 'UBIGINT' },
      { value: 6n, type: 'UBIGINT' },
      { value: 1000n, type: 'UBIGINT' },
    ])
  })

  it('handles precedence, not, parentheses, nets and directions', () => {
    expect(sql('proto udp or proto tcp and port 53')).toBe(
      '(proto = $1 OR (proto = $2 AND (src_port = $3 OR dst_port = $4)))',
    )
    expect(sql('(proto udp or proto tcp) and not port 53')).toBe(
      '((proto = $1 OR proto = $2) AND (NOT coalesce((src_port = $3 OR dst_port = $4), false)))',
    )
    expect(sql('net 10.0.0.0/8')).toBe('(src_ip_key BETWEEN $1 AND $2 OR dst_ip_key BETWEEN $3 AND $4)')
    expect(sql('dst net 2001:db8::/32')).toBe('dst_ip_key BETWEEN $1 AND $2')
    expect(sql('! host ::1 && flags SA || vlan 10')).toMatch(
      /^\(\(\(NOT .* AND .* & 18\) = 18\) OR vlan = \$\d\)$/,
    )
    expect(sql('npm_tcp_retransmission >= 2 and app ~ "*tube"')).toBe(
      '(npm_tcp_retransmission >= $1 AND app_name GLOB $2)',
    )
    expect(sql('bytes > 1k and packets < 5')).toContain('> $1')
    expect(compileFilter(parseFilter('bytes > 2M')).params[0]?.value).toBe(2_000_000n)
    expect(sql('in if 3 or out if != 4')).toBe('(in_if = $1 OR out_if != $2)')
    expect(sql('flowtel_tcp_sack_permitted = true')).toBe('flowtel_tcp_sack_permitted = $1')
    expect(
      sql('app youtube and tls.sni ~ "*.example.com" and http.status >= 500 and dns.qname = x.org'),
    ).toBe('(((lower(app_name) = lower($1) AND tls_sni GLOB $2) AND http_status >= $3) AND dns_qname = $4)')
  })

  it('compiles the terms on fields joined from options data', () => {
    expect(sql('in if eth0')).toBe('in_if_name = $1')
    expect(sql('out if "Gi0/0/1"')).toBe('out_if_name = $1')
    expect(sql('if ~ "ge-*"')).toBe('(in_if_name GLOB $1 OR out_if_name GLOB $2)')
    expect(sql('dst if != xe-1')).toBe('out_if_name != $1')
    expect(sql('if 3 and in if > 2')).toBe('((in_if = $1 OR out_if = $2) AND in_if > $3)')
    expect(sql('vrf blue')).toBe('(vrf_name = $1 OR out_vrf_name = $2)')
    expect(sql('sampling_rate >= 100 and app_category = Streaming')).toBe(
      '(sampling_rate >= $1 AND app_category = $2)',
    )
    expect(sql('app ~ "You*" or app != x')).toBe('(app_name GLOB $1 OR lower(app_name) != lower($2))')
  })

  it.each([
    ['', 'empty filter', 0],
    ['src ip', 'expected an IP address, found end of filter', 6],
    ['src ip 10.0.0.256', 'expected an IPv4 or IPv6 address', 7],
    ['dst port 70000', 'port number out of range', 9],
    ['proto tcp and', 'expected a filter term', 13],
    ['proto tcp port 80', 'expected "and", "or" or the end of the filter', 10],
    ['(proto tcp', 'expected ")"', 10],
    ['proto xyz', 'expected tcp, udp', 6],
    ['bytes 10', 'expected a comparison', 6],
    ['src proto tcp', 'expected ip, host, net, port or if after src/dst', 4],
    ['nosuchfield = 3', 'unknown filter term', 0],
    ['net 10.0.0.0/40', 'expected a prefix', 4],
    ['flags SX', 'expected TCP flags', 6],
    ['app = "abc', 'unterminated string', 6],
    ['src ip 1.2.3.4; drop table flows', 'unexpected character ";"', 14],
  ])('rejects %j: %s at %i', (input, reason, pos) => {
    let err: unknown
    try {
      parseFilter(input)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(FilterError)
    const fe = err as FilterError
    expect(fe.reason).toContain(reason)
    expect(fe.position).toBe(pos)
    expect(fe.message).toContain(`at position ${pos + 1}`)
  })

  it('never puts user text into SQL', () => {
    expect(() => parseFilter("src ip 1.2.3.4'; drop table flows; --")).toThrow(FilterError)
    const tricky = `app = "x'; DROP TABLE flows; --" or exporter "1' OR '1'='1"`
    const c = compileFilter(parseFilter(tricky))
    expect(c.sql).toBe('(lower(app_name) = lower($1) OR exporter = $2)')
    expect(c.params.map((p) => p.value)).toEqual(["x'; DROP TABLE flows; --", "1' OR '1'='1"])
  })

  it('refuses filters nested or chained past its bounds with a FilterError, not a stack overflow', () => {
    const deep = (n: number): string => '('.repeat(n) + 'proto tcp' + ')'.repeat(n)
    const chain = (n: number): string => Array.from({ length: n }, () => 'proto tcp').join(' and ')
    expect(sql(deep(MAX_FILTER_DEPTH))).toBe('proto = $1')
    expect(compileFilter(parseFilter(chain(MAX_FILTER_TERMS))).params).toHaveLength(MAX_FILTER_TERMS)
    expect(() => parseFilter(deep(MAX_FILTER_DEPTH + 1))).toThrow(
      /nested deeper than 256 levels at position 257/,
    )
    for (const f of [
      deep(100_000),
      'not '.repeat(100_000) + 'proto tcp',
      chain(20_000),
      chain(20_000).replaceAll('and', 'or'),
    ])
      expect(() => parseFilter(f)).toThrow(FilterError)
    expect(() => parseFilter(chain(MAX_FILTER_TERMS + 1))).toThrow(/more than 1024 terms/)
  })

  it('keeps the message of an error in a long filter short: the filter around the fault, a cut token', () => {
    const long = 'proto tcp and '.repeat(500) + 'bogus 1 and ' + 'port 80 and '.repeat(5000) + 'proto tcp'
    const err = (() => {
      try {
        parseFilter(long)
      } catch (e) {
        return e as FilterError
      }
      throw new Error('no error')
    })()
    expect(err.position).toBe(7000)
    expect(err.input).toBe(long)
    expect(err.message.length).toBeLessThan(400)
    const [first, shown, caret] = err.message.split('\n')
    expect(first).toBe('unknown filter term, found "bogus" at position 7001')
    expect(shown!.startsWith('  …') && shown!.endsWith('…')).toBe(true)
    // The caret stands under the fault.
    expect(shown!.slice(caret!.indexOf('^'))).toMatch(/^bogus 1 and port 80/)
    const word = 'x'.repeat(100_000)
    expect(() => parseFilter(`app = a ${word}`)).toThrow(
      /found "x{40}…" \(100000 characters\) at position 9$/m,
    )
  })

  it('compiles top-N and listing queries', () => {
    const q = compileQuery({ top: ['srcip', 'dst_port'], by: 'packets', limit: 5 })
    expect(q.sql).toMatch(
      /^SELECT src_ip_key AS src_addr, dst_port, count\(\*\) AS flows, sum\(total_packets::BIGINT\) AS packets, sum\(total_bytes::BIGINT\) AS bytes FROM flows GROUP BY src_ip_key, dst_port ORDER BY packets DESC, src_ip_key, dst_port LIMIT 5$/,
    )
    expect(q.addressColumns).toEqual(['src_addr'])
    expect(() => compileQuery({ top: ['nope'] })).toThrow(/unknown --top field "nope"/)
    expect(() => compileQuery({ top: ['extra'] })).toThrow(/unknown --top field/)
    expect(() => compileQuery({ top: ['srcip', 'dst_port', 'src_addr'] })).toThrow(
      '--top field "src_addr" repeats the column src_addr',
    )
    expect(() => compileQuery({ columns: [] })).toThrow(/--columns names no column/)
    const l = compileQuery({ since: 5n, until: 9n })
    expect(l.sql).toContain(
      'WHERE time_start >= make_timestamp($1::BIGINT) AND time_start < make_timestamp($2::BIGINT)',
    )
  })
})

describe('compiled filters on DuckDB', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtel-filter-'))
  let store: DuckDbStore
  const f = (name: string, type: DecodedField['type'], value: DecodedField['value']): DecodedField => ({
    pen: 0,
    id: 0,
    name,
    type,
    value,
  })
  const rec = (
    src: string,
    dst: string,
    dport: number,
    proto: number,
    bytes: bigint,
    ms: bigint,
  ): CollectedRecord => ({
    version: 10,
    exporter: '192.0.2.1',
    exportTime: 0,
    sequence: 0,
    deferred: false,
    odid: 0,
    templateId: 256,
    isOptions: false,
    scopeCount: 0,
    fields: [
      f('flowStartMilliseconds', 'dateTimeMilliseconds', ms),
      f(src.includes(':') ? 'sourceIPv6Address' : 'sourceIPv4Address', 'ipv4Address', src),
      f(dst.includes(':') ? 'destinationIPv6Address' : 'destinationIPv4Address', 'ipv4Address', dst),
      f('destinationTransportPort', 'unsigned16', dport),
      f('protocolIdentifier', 'unsigned8', proto),
      f('octetDeltaCount', 'unsigned64', bytes),
      f('applicationName', 'string', "it's"),
    ],
  })
  beforeAll(async () => {
    store = await DuckDbStore.open(join(dir, 'f.duckdb'))
    await store.migrate()
    const w = new BatchWriter(
      store,
      COLUMNS.map((c) => c.name),
    )
    w.add(normalize(rec('10.0.0.1', '192.0.2.80', 443, 6, 5000n, 1000n)))
    w.add(normalize(rec('10.0.0.2', '192.0.2.80', 80, 6, 500n, 2000n)))
    w.add(normalize(rec('172.16.0.1', '8.8.8.8', 53, 17, 100n, 3000n)))
    w.add(normalize(rec('2001:db8::1', '2001:db8::53', 53, 17, 200n, 4000n)))
    await w.flush()
  })
  afterAll(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const count = async (filter: string, extra: { since?: bigint; until?: bigint } = {}): Promise<number> =>
    (await store.query({ filter: parseFilter(filter), limit: 100, ...extra })).rows.length

  it('selects the right rows', async () => {
    expect(await count('src ip 10.0.0.1 and dst port 443 and proto tcp and bytes > 1000')).toBe(1)
    expect(await count('net 10.0.0.0/8')).toBe(2)
    expect(await count('not net 10.0.0.0/8')).toBe(2)
    expect(await count('net 2001:db8::/32 or dst ip 8.8.8.8')).toBe(2)
    expect(await count('proto udp and port 53')).toBe(2)
    expect(await count('flags S')).toBe(0)
    expect(await count('app = "it\'s"')).toBe(4)
    expect(await count('app ~ "it*"')).toBe(4)
    expect(await count('src ip 10.0.0.1', { since: 1_500_000n })).toBe(0)
    expect(await count('proto tcp', { since: 1_500_000n, until: 2_500_000n })).toBe(1)
  })

  it('leaves the table alone whatever the values', async () => {
    expect(await count(`app = "x'; DROP TABLE flows; --"`)).toBe(0)
    expect(await store.count()).toBe(4)
  })

  it('ranks top-N by bytes, packets or flows', async () => {
    const r = await store.query({ top: ['dst_addr'], by: 'bytes' })
    expect(r.rows.map((x) => [x.dst_addr, x.bytes])).toEqual([
      ['192.0.2.80', 5500n],
      ['2001:db8::53', 200n],
      ['8.8.8.8', 100n],
    ])
    const byFlows = await store.query({ top: ['proto'], by: 'flows', filter: parseFilter('bytes >= 200') })
    expect(byFlows.rows.map((x) => [x.proto, x.flows])).toEqual([
      [6, 2n],
      [17, 1n],
    ])
  })
})
