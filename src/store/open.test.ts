// Store URLs: duckdb:PATH and clickhouse:http[s]://[user:password@]host:port[/database], and clear errors for
// anything else (checked before any connection is made).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { DuckDbStore } from './duckdb.js'
import { openStoreForQuery, openStoreForWrite, parseStore } from './open.js'

describe('store URLs', () => {
  it('reads DuckDB and ClickHouse URLs', () => {
    expect(parseStore('duckdb:/tmp/x.duckdb')).toEqual({ kind: 'duckdb', path: '/tmp/x.duckdb', options: {} })
    expect(parseStore('clickhouse:http://127.0.0.1:8123/flows')).toEqual({
      kind: 'clickhouse',
      target: { url: 'http://127.0.0.1:8123', database: 'flows' },
    })
    expect(parseStore('clickhouse:https://user:p%40ss@[::1]:8443')).toEqual({
      kind: 'clickhouse',
      target: { url: 'https://[::1]:8443', database: 'default', username: 'user', password: 'p@ss' },
    })
  })

  it.each([
    ['mysql://x', /unsupported store/],
    ['clickhouse:', /bad ClickHouse store URL/],
    ['clickhouse:ftp://h/db', /http or https/],
    ['clickhouse:http://h:8123/my-db', /bad ClickHouse database name "my-db"/],
    ["clickhouse:http://h:8123/db';DROP", /bad ClickHouse database name/],
    ['clickhouse:http://h:8123/a/b', /bad ClickHouse database name "a\/b"/],
    ['clickhouse:http://h:8123/db?x=1', /bad ClickHouse store URL/],
  ])('refuses %s', (url, err) => {
    expect(() => parseStore(url)).toThrow(err)
  })
})

describe('opening a DuckDB store', () => {
  it('gives DuckDB the settings of the URL (what the collector and its store thread open)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowtel-open-'))
    try {
      const s = await openStoreForWrite(`duckdb:${join(dir, 'x.duckdb')}?memory_limit=300MB&query_threads=1`)
      if (!(s instanceof DuckDbStore)) throw new Error('not a DuckDB store')
      const r = await s.sql("SELECT current_setting('memory_limit') AS m, current_setting('threads') AS t")
      await s.close()
      expect(r.rows).toEqual([{ m: '286.1 MiB', t: 1n }])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('opening a ClickHouse store', () => {
  it('fails with the server named when nothing listens there', async () => {
    await expect(openStoreForQuery('clickhouse:http://127.0.0.1:1/flows')).rejects.toThrow(
      /cannot use ClickHouse at http:\/\/127\.0\.0\.1:1: /,
    )
  })
})
