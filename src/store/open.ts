/**
 * Store URLs and opening a store from one: `duckdb:PATH` (embedded, store/duckdb.ts) or
 * `clickhouse:http://HOST:PORT/DATABASE` (store/clickhouse.ts). Writers migrate (create or upgrade) the
 * schema; readers refuse a store that does not exist instead of creating an empty one.
 */
import { existsSync } from 'node:fs'
import { ClickHouseStore, parseClickHouseUrl, type ClickHouseTarget } from './clickhouse.js'
import { DuckDbStore, parseStoreUrl as parseDuckDbUrl } from './duckdb.js'
import type { FlowStore } from './store.js'

export type StoreSpec = ReturnType<typeof parseDuckDbUrl> | { kind: 'clickhouse'; target: ClickHouseTarget }

/** Parses a store URL; throws naming the accepted forms. */
export function parseStore(url: string): StoreSpec {
  const t = url.trim()
  if (t.startsWith('clickhouse:')) return { kind: 'clickhouse', target: parseClickHouseUrl(t.slice(11)) }
  return parseDuckDbUrl(t)
}

/** Opens a store for writing: created or upgraded to the current schema. */
export async function openStoreForWrite(url: string): Promise<FlowStore> {
  const spec = parseStore(url)
  const store =
    spec.kind === 'duckdb'
      ? await DuckDbStore.open(spec.path, spec.options)
      : await ClickHouseStore.open(spec.target)
  try {
    await store.migrate()
  } catch (e) {
    await store.close()
    throw e
  }
  return store
}

/** Opens an existing store for queries; throws when there is none at the URL. */
export async function openStoreForQuery(url: string): Promise<FlowStore> {
  const spec = parseStore(url)
  if (spec.kind === 'duckdb') {
    if (spec.path !== ':memory:' && !existsSync(spec.path))
      throw new Error(
        `no flow store at ${spec.path} (flowtel collect --store duckdb:${spec.path} creates it)`,
      )
    const s = await DuckDbStore.open(spec.path, spec.options)
    await s.migrate()
    return s
  }
  const s = await ClickHouseStore.open(spec.target)
  if (!s.exists) {
    await s.close()
    throw new Error(
      `no flow store at ${spec.target.url}/${spec.target.database}: table ${s.table} does not exist ` +
        '(flowtel collect --store clickhouse:URL creates it)',
    )
  }
  return s
}
