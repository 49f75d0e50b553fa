// The shared store suite (store-suite.ts) on DuckDB: each store is a new file in a temp dir.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll } from 'vitest'
import { DuckDbStore } from '../../src/store/duckdb.js'
import { defineStoreSuite } from './store-suite.js'

const dir = mkdtempSync(join(tmpdir(), 'flowtel-suite-duckdb-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let n = 0

async function open(path: string): Promise<DuckDbStore> {
  const s = await DuckDbStore.open(path)
  await s.migrate()
  return s
}

defineStoreSuite({
  name: 'DuckDB',
  skip: undefined,
  create: async () => {
    const path = join(dir, `s${++n}.duckdb`)
    return { store: await open(path), reopen: () => open(path) }
  },
})
