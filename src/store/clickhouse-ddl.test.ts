// ClickHouse DDL and version detection as text: 18.16 gets only plain forms, modern servers the newer ones,
// and the cluster layout has the replicated local table and the Distributed table ON CLUSTER. The DDL runs
// on a real server (single table, and the cluster layout without replication) in test/store/clickhouse.test.ts.
import { describe, expect, it } from 'vitest'
import { COLUMNS, COMPUTED_COLUMNS } from '../schema/columns.js'
import {
  DEFAULT_SHARDING_KEY,
  addMissingColumns,
  addMissingIndexes,
  clusterDdl,
  columnType,
  createFlowsTable,
  indexNames,
} from './clickhouse-ddl.js'
import { generationFor, parseVersion, supportsSkipIndexes, tableGeneration } from './clickhouse-version.js'

describe('ClickHouse version', () => {
  it('reads versions and picks the generation', () => {
    expect(parseVersion('18.16.1')).toEqual({ text: '18.16.1', major: 18, minor: 16 })
    expect(generationFor(parseVersion('18.16.1'))).toBe('legacy')
    expect(generationFor(parseVersion('21.8.15.7'))).toBe('legacy')
    expect(generationFor(parseVersion('22.8.1'))).toBe('modern')
    expect(generationFor(parseVersion('24.8.4.13'))).toBe('modern')
    expect(() => parseVersion('banana')).toThrow(/cannot read the ClickHouse version/)
    expect(tableGeneration('UInt64')).toBe('legacy')
    expect(tableGeneration("DateTime64(6, 'UTC')")).toBe('modern')
  })

  it('takes data-skipping indexes from 20.1 on (18.16 has none, 19.x only as an experiment)', () => {
    expect(supportsSkipIndexes(parseVersion('18.16.1'))).toBe(false)
    expect(supportsSkipIndexes(parseVersion('19.17.6.36'))).toBe(false)
    expect(supportsSkipIndexes(parseVersion('20.1.2.4'))).toBe(true)
    expect(supportsSkipIndexes(parseVersion('21.8.15.7'))).toBe(true) // a legacy-generation server
    expect(supportsSkipIndexes(parseVersion('24.8.4.13'))).toBe(true)
  })
})

describe('ClickHouse DDL', () => {
  it('18.16: plain types, all Nullable but the sort key, day partitions, no TTL', () => {
    const plain = createFlowsTable({ generation: 'legacy', database: 'db', ttlSeconds: 3600 })
    expect(plain).toMatch(/^CREATE TABLE IF NOT EXISTS db\.flows \(/)
    expect(plain).toContain('  time_received UInt64,')
    expect(plain).toContain('  exporter String,')
    expect(plain).toContain('  src_ip_key Nullable(FixedString(16)),')
    expect(plain).toContain('  time_start Nullable(UInt64),')
    expect(plain).toContain('  flowtel_tcp_sack_permitted Nullable(UInt8),')
    expect(plain).not.toMatch(/LowCardinality|DateTime64|IPv6|CODEC|TTL|Bool\b/)
    expect(plain).toContain('ENGINE = MergeTree()')
    expect(plain).toContain('PARTITION BY toYYYYMMDD(toDateTime(intDiv(time_received, 1000000)))')
    expect(plain).toContain('ORDER BY (time_received, exporter)')
    expect(plain.match(/^ {2}\w+ /gm)).toHaveLength(COLUMNS.length + COMPUTED_COLUMNS.length)
    expect(plain).toContain('  src_ip4 UInt32 MATERIALIZED if(')
  })

  it('modern: IPv6, DateTime64, Bool, LowCardinality, codecs and TTL', () => {
    const modern = createFlowsTable({ generation: 'modern', database: 'db', ttlSeconds: 30 * 86400 })
    expect(modern).toContain('  src_ip_key Nullable(IPv6),')
    expect(modern).toContain('  time_received DateTime64(6) CODEC(DoubleDelta, LZ4),')
    expect(modern).toContain('  time_start Nullable(DateTime64(6)) CODEC(DoubleDelta, LZ4),')
    expect(modern).toContain('  exporter LowCardinality(String),')
    expect(modern).toContain('  application LowCardinality(Nullable(String)),')
    expect(modern).toContain('  src_addr Nullable(String) CODEC(ZSTD(1)),')
    expect(modern).toContain('  bytes Nullable(UInt64) CODEC(T64, LZ4),')
    expect(modern).toContain('  flowtel_tcp_sack_permitted Nullable(Bool),')
    expect(modern).toContain('  extra Nullable(String) CODEC(ZSTD(1))')
    expect(modern).toContain('PARTITION BY toYYYYMMDD(time_received)')
    expect(modern).toContain('TTL toDateTime(time_received) + INTERVAL 2592000 SECOND')
  })

  it('adds only the missing columns, in the table generation', () => {
    const have = new Set(COLUMNS.map((c) => c.name).filter((n) => n !== 'tls_sni' && n !== 'bytes'))
    have.add('src_ip4')
    expect(addMissingColumns(have, { generation: 'legacy', database: 'db' })).toEqual([
      'ALTER TABLE db.flows ADD COLUMN bytes Nullable(UInt64)',
      'ALTER TABLE db.flows ADD COLUMN tls_sni Nullable(String)',
      expect.stringMatching(
        /^ALTER TABLE db\.flows ADD COLUMN dst_ip4 UInt32 MATERIALIZED if\(substring\(assumeNotNull\(dst_ip_key\)/,
      ),
    ])
    // Modern tables group by their IPv6 key: no computed columns.
    expect(addMissingColumns(have, { generation: 'modern', database: 'db' })).toHaveLength(2)
    const tls = COLUMNS.find((c) => c.name === 'tls_sni')
    expect(tls !== undefined && columnType(tls, 'modern')).toBe('LowCardinality(Nullable(String))')
  })

  it('cluster layout: replicated local tables and a Distributed table, ON CLUSTER', () => {
    const ddl = clusterDdl({ cluster: 'prod', database: 'flowtel', generation: 'modern', ttlSeconds: 86400 })
    expect(ddl[0]).toBe('CREATE DATABASE IF NOT EXISTS flowtel ON CLUSTER prod')
    expect(ddl[1]).toMatch(/^CREATE TABLE IF NOT EXISTS flowtel\.flows_local ON CLUSTER prod \(/)
    expect(ddl[1]).toContain(
      "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/flowtel/flows_local', '{replica}')",
    )
    expect(ddl[1]).toContain('TTL toDateTime(time_received) + INTERVAL 86400 SECOND')
    expect(ddl[2]).toMatch(
      /^CREATE TABLE IF NOT EXISTS flowtel\.flows ON CLUSTER prod \(\n {2}time_received /,
    )
    expect(ddl[2]).toContain(`\nENGINE = Distributed(prod, flowtel, flows_local, ${DEFAULT_SHARDING_KEY})`)
    // Stored columns only: 18.16 would forward values for the local table's MATERIALIZED columns.
    expect(ddl[2]?.match(/^ {2}\w+ /gm)).toHaveLength(COLUMNS.length)
    expect(clusterDdl({ cluster: 'c', database: 'x', generation: 'legacy' })[1]).toContain(
      'src_ip4 UInt32 MATERIALIZED',
    )
    expect(clusterDdl({ cluster: 'c', database: 'x', generation: 'legacy' })[2]).not.toContain('src_ip4')
    expect(ddl[3]).toContain('flowtel.flowtel_migrations ON CLUSTER prod')
    expect(() => clusterDdl({ cluster: 'a;b', database: 'x', generation: 'legacy' })).toThrow(/identifier/)
    expect(() =>
      clusterDdl({ cluster: 'c', database: 'x', generation: 'legacy', shardingKey: "rand()'; DROP" }),
    ).toThrow(/sharding key/)
  })

  it('time pruning: minmax indexes on time_start and time_end where the server takes them', () => {
    const index = 'INDEX time_start_minmax time_start TYPE minmax GRANULARITY 1'
    const endIndex = 'INDEX time_end_minmax time_end TYPE minmax GRANULARITY 1'
    // Modern tables (22.8 and later) have them; a legacy table has them only when the server takes them.
    const modern = createFlowsTable({ generation: 'modern', database: 'db' })
    expect(modern).toContain(`  extra Nullable(String) CODEC(ZSTD(1)),\n  ${index},\n  ${endIndex}\n)`)
    expect(createFlowsTable({ generation: 'legacy', database: 'db' })).not.toContain('INDEX')
    const legacyOnNewer = createFlowsTable({ generation: 'legacy', database: 'db', skipIndexes: true })
    expect(legacyOnNewer).toContain(`  ${index},\n  ${endIndex}\n)`)
    expect(legacyOnNewer).toContain('  time_start Nullable(UInt64),')
    expect(createFlowsTable({ generation: 'modern', database: 'db', skipIndexes: false })).not.toContain(
      'INDEX',
    )
    // Existing tables: the indexes their CREATE statement lacks are added.
    expect(indexNames(modern)).toEqual(new Set(['time_start_minmax', 'time_end_minmax']))
    expect(addMissingIndexes(indexNames(modern), { generation: 'modern', database: 'db' })).toEqual([])
    const older = 'CREATE TABLE db.flows (`time_start` Nullable(UInt64), `index_x` String) ENGINE = MergeTree'
    expect(indexNames(older)).toEqual(new Set())
    expect(addMissingIndexes(indexNames(older), { generation: 'legacy', database: 'db' })).toEqual([
      'ALTER TABLE db.flows ADD INDEX time_start_minmax time_start TYPE minmax GRANULARITY 1',
      'ALTER TABLE db.flows ADD INDEX time_end_minmax time_end TYPE minmax GRANULARITY 1',
    ])
    const half =
      'CREATE TABLE db.flows (x UInt8, INDEX time_start_minmax time_start TYPE minmax GRANULARITY 1)'
    expect(
      addMissingIndexes(indexNames(half), { generation: 'modern', database: 'db', cluster: 'c' }),
    ).toEqual([
      'ALTER TABLE db.flows ON CLUSTER c ADD INDEX time_end_minmax time_end TYPE minmax GRANULARITY 1',
    ])
    // The cluster layout: on the local tables, never on the Distributed one.
    const ddl = clusterDdl({ cluster: 'prod', database: 'flowtel', generation: 'modern' })
    expect(ddl[1]).toContain(index)
    expect(ddl[2]).not.toContain('INDEX')
    expect(clusterDdl({ cluster: 'c', database: 'x', generation: 'legacy' })[1]).not.toContain('INDEX')
    expect(clusterDdl({ cluster: 'c', database: 'x', generation: 'legacy', skipIndexes: true })[1]).toContain(
      index,
    )
  })
})
