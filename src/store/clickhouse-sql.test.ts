// The ClickHouse literal writers (the one place values enter ClickHouse SQL) and the ClickHouse dialect of
// the query compiler: escapes checked by a reference reader of ClickHouse string literals (property test:
// every string comes back whole and the literal cannot end early), range checks, globs, and injection
// attempts through filter strings. The same literals run against a real server in test/store/clickhouse.test.ts.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FilterError, parseFilter } from '../query/filter.js'
import { compileFilter, compileQuery } from '../query/sql.js'
import { ClickHouseDialect, chBool, chHex, chIdent, chString, chUInt, globToRegex } from './clickhouse-sql.js'

/**
 * Reads one ClickHouse string literal at the start of `sql` as the server's lexer does (quote, backslash
 * escapes \\ \' \xHH and the C escapes, any other character as itself) → its value and where it ended.
 */
function readLiteral(sql: string): { value: string; end: number } {
  if (sql[0] !== "'") throw new Error('not a literal')
  let v = ''
  let i = 1
  while (i < sql.length) {
    const c = sql[i] ?? ''
    if (c === "'") return { value: v, end: i + 1 }
    if (c === '\\') {
      const n = sql[i + 1] ?? ''
      if (n === 'x') {
        v += String.fromCharCode(parseInt(sql.slice(i + 2, i + 4), 16))
        i += 4
        continue
      }
      v += { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '0': '\0' }[n] ?? n
      i += 2
      continue
    }
    v += c
    i++
  }
  throw new Error('unterminated literal')
}

describe('ClickHouse literals', () => {
  it.each([
    ['plain', "'plain'"],
    ["it's", "'it\\'s'"],
    ['back\\slash', "'back\\\\slash'"],
    ["\\'", "'\\\\\\''"],
    ['new\nline\ttab\0nul\x7f', "'new\\x0aline\\x09tab\\x00nul\\x7f'"],
    ['ünïcødé 🚀', "'ünïcødé 🚀'"],
  ])('chString(%j) = %s', (input, out) => {
    expect(chString(input)).toBe(out)
    expect(readLiteral(out)).toEqual({ value: input, end: out.length })
  })

  it('every string comes back whole, and the literal ends only at its last character', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (s) => {
        const lit = chString(s)
        const r = readLiteral(lit + " OR 1=1 --'")
        expect(r.end).toBe(lit.length)
        expect(r.value).toBe(s)
      }),
      { numRuns: 500 },
    )
  })

  it('writes numbers, keys and booleans only from values of their type and range', () => {
    expect(chUInt(0n)).toBe('0')
    expect(chUInt((1n << 64n) - 1n)).toBe('18446744073709551615')
    expect(chUInt(42)).toBe('42')
    expect(() => chUInt(-1n)).toThrow(RangeError)
    expect(() => chUInt(1n << 64n)).toThrow(RangeError)
    expect(() => chUInt(1.5)).toThrow(RangeError)
    expect(() => chUInt('1 OR 1=1' as unknown as bigint)).toThrow(RangeError)
    expect(chHex(0xffff0a000001n, 16)).toBe("unhex('00000000000000000000ffff0a000001')")
    expect(() => chHex(1n << 128n, 16)).toThrow(RangeError)
    expect(() => chHex(-1n, 16)).toThrow(RangeError)
    expect(chBool(true)).toBe('1')
    expect(() => chBool('true' as unknown as boolean)).toThrow(TypeError)
    expect(chIdent('flows_local')).toBe('flows_local')
    for (const bad of ['a b', 'x;drop', "a'", '1abc', '', 'db.flows'])
      expect(() => chIdent(bad)).toThrow(/identifier/)
  })

  it('turns globs into anchored patterns with everything else literal', () => {
    expect(globToRegex('*.example.com')).toBe('(?s)^.*\\.example\\.com$')
    expect(globToRegex('h?tp')).toBe('(?s)^h.tp$')
    expect(globToRegex('[!a-c]x')).toBe('(?s)^[^a-c]x$')
    expect(globToRegex('[gh]')).toBe('(?s)^[gh]$')
    expect(globToRegex('a[b')).toBe('(?s)^a\\[b$')
    expect(globToRegex("(x)+$|'")).toBe("(?s)^\\(x\\)\\+\\$\\|'$")
  })
})

describe('ClickHouse dialect', () => {
  const legacy = (f: string): string =>
    compileFilter(parseFilter(f), new ClickHouseDialect('db.flows', 'legacy')).sql
  const modern = (f: string): string =>
    compileFilter(parseFilter(f), new ClickHouseDialect('db.flows', 'modern')).sql

  it('writes each value as a literal of its column type', () => {
    expect(legacy('src ip 10.0.0.1 and dst port 443 and proto tcp and bytes > 1000')).toBe(
      "(((src_ip_key = unhex('00000000000000000000ffff0a000001') AND dst_port = 443) AND proto = 6) AND " +
        'total_bytes > 1000)',
    )
    expect(modern('dst net 10.0.0.0/8')).toBe(
      "dst_ip_key BETWEEN toIPv6('0:0:0:0:0:ffff:a00:0') AND toIPv6('0:0:0:0:0:ffff:aff:ffff')",
    )
    expect(legacy('not flags SA')).toBe(
      '(NOT coalesce(bitAnd(bitOr(coalesce(tcp_flags, 0), coalesce(rev_tcp_flags, 0)), 18) = 18, 0))',
    )
    expect(legacy('tls.sni ~ "*.example.com"')).toBe("match(tls_sni, '(?s)^.*\\\\.example\\\\.com$')")
    expect(legacy('flowtel_tcp_sack_permitted = true')).toBe('flowtel_tcp_sack_permitted = 1')
  })

  it('keeps injection attempts inside one literal', () => {
    expect(() => parseFilter("src ip 1.2.3.4' OR 1=1 --")).toThrow(FilterError)
    expect(() => parseFilter('src ip 1.2.3.4; DROP TABLE flows')).toThrow(FilterError)
    const sql = legacy(`app = "x' OR 1=1 --" or exporter "1\\\\' OR '1'='1" or app ~ "*' OR 1=1 --"`)
    expect(sql).toBe(
      "((lower(app_name) = lower('x\\' OR 1=1 --') OR exporter = '1\\\\\\' OR \\'1\\'=\\'1') OR " +
        "match(app_name, '(?s)^.*\\' OR 1=1 --$'))",
    )
    // Each literal read back is the user's text, and what follows it is our SQL.
    const at = sql.indexOf("'")
    const lit = readLiteral(sql.slice(at))
    expect(lit.value).toBe("x' OR 1=1 --")
    expect(sql.slice(at + lit.end)).toMatch(/^\) OR exporter = '/)
  })

  it('times and top-N: no alias shadows a column, and times follow the generation', () => {
    const q = compileQuery(
      { top: ['srcip'], by: 'bytes', since: 5n, filter: parseFilter('bytes > 1') },
      new ClickHouseDialect('db.flows', 'legacy'),
    )
    expect(q.params).toEqual([])
    expect(q.sql).toBe(
      // The address groups by its key; only the rows returned are formatted (src_addr__addr → text).
      'SELECT IPv6NumToString(src_ip_key) AS src_addr__addr, flows_n AS flows, packets_n AS packets, ' +
        'bytes_n AS bytes FROM (SELECT src_ip_key, count() AS flows_n, sum(total_packets) AS packets_n, ' +
        'sum(total_bytes) AS bytes_n FROM db.flows WHERE total_bytes > 1 AND time_start >= 5 ' +
        'GROUP BY src_ip_key) ORDER BY bytes DESC, src_ip_key LIMIT 10',
    )
    const m = compileQuery({ until: 7n }, new ClickHouseDialect('db.flows', 'modern'))
    expect(m.sql).toContain('WHERE time_start < fromUnixTimestamp64Micro(toInt64(7))')
    expect(m.sql).toContain('toUnixTimestamp64Micro(time_start) AS time_start__us')
  })
})

describe('ClickHouse top-N on a time column', () => {
  it('converts the group column in the outer query on modern servers', () => {
    const m = compileQuery({ top: ['time_start'], by: 'flows' }, new ClickHouseDialect('db.flows', 'modern'))
    expect(m.sql).toMatch(
      /^SELECT toUnixTimestamp64Micro\(time_start\) AS time_start__us, flows_n AS flows, /,
    )
    expect(m.sql).toContain('GROUP BY time_start) ORDER BY flows DESC, time_start LIMIT 10')
  })
})
