// The shared store suite (store-suite.ts) on ClickHouse: a private clickhouse-server (test/helpers) for this
// file, each store a new database in it (dropped at the end). Skipped, with the reason, without the binary.
import { afterAll, beforeAll } from 'vitest'
import { ClickHouseStore } from '../../src/store/clickhouse.js'
import { CLICKHOUSE_SKIP, startClickHouse, type ClickHouseServer } from '../helpers/clickhouse-server.js'
import { defineStoreSuite } from './store-suite.js'

let server: ClickHouseServer | undefined
const databases: string[] = []

beforeAll(async () => {
  if (CLICKHOUSE_SKIP === undefined) server = await startClickHouse()
})
afterAll(async () => {
  if (server === undefined) return
  const s = await ClickHouseStore.open(`${server.url}/default`)
  for (const db of databases) await s.command(`DROP DATABASE IF EXISTS ${db}`)
  await s.close()
  await server.stop()
})

async function open(db: string): Promise<ClickHouseStore> {
  if (server === undefined) throw new Error('no ClickHouse server')
  const s = await ClickHouseStore.open(`${server.url}/${db}`)
  await s.migrate()
  return s
}

defineStoreSuite({
  name: 'ClickHouse',
  skip: CLICKHOUSE_SKIP,
  create: async () => {
    const db = `suite_${databases.length + 1}`
    databases.push(db)
    return { store: await open(db), reopen: () => open(db) }
  },
})
