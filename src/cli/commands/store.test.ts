// `flowtel store ddl --store duckdb:` prints what a new DuckDB file gets, and what it prints runs: the stored
// table with the core columns, and the `flows` view with every logical column in order.
import { DuckDBInstance } from '@duckdb/node-api'
import { describe, expect, it, vi } from 'vitest'
import { COLUMNS } from '../../schema/columns.js'
import { CORE_COLUMNS } from '../../schema/ddl.js'
import { storeCommand } from './store.js'

async function printed(args: string[]): Promise<string> {
  let out = ''
  const w = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s)
    return true
  })
  try {
    await storeCommand().parseAsync(args, { from: 'user' })
  } finally {
    w.mockRestore()
  }
  return out
}

describe('flowtel store ddl (DuckDB)', () => {
  it('prints the lazy layout, which DuckDB runs into a view of every column over the core columns', async () => {
    const ddl = await printed(['ddl', '--store', 'duckdb:'])
    const db = await DuckDBInstance.create(':memory:')
    const c = await db.connect()
    try {
      for (const statement of ddl
        .split(';\n')
        .map((x) => x.trim())
        .filter((x) => x !== ''))
        await c.run(statement)
      const names = async (table: string): Promise<string[]> =>
        (await c.runAndReadAll(`DESCRIBE ${table}`)).getRowObjects().map((r) => String(r['column_name']))
      expect(await names('flows')).toEqual(COLUMNS.map((x) => x.name))
      expect(await names('flows_stored')).toEqual(
        COLUMNS.filter((x) => CORE_COLUMNS.has(x.name)).map((x) => x.name),
      )
    } finally {
      c.closeSync()
      db.closeSync()
    }
  })

  it('refuses --cluster for a DuckDB store', async () => {
    await expect(printed(['ddl', '--store', 'duckdb:', '--cluster', 'c'])).rejects.toThrow(
      /--cluster is for ClickHouse/,
    )
  })
})
