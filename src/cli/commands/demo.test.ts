// `flowtel demo` (npm start): probe → IPFIX/UDP on loopback → collector → DuckDB → top flows from the store.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { DuckDbStore } from '../../store/duckdb.js'
import { demoCommand } from './demo.js'

describe('flowtel demo', () => {
  it('runs the whole pipeline and prints the top flows from the store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowtel-demo-test-'))
    let out = ''
    const w = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
      out += String(s)
      return true
    })
    const e = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
      const path = join(dir, 'demo.duckdb')
      await demoCommand().parseAsync(['--top', '5', '--store', `duckdb:${path}`], { from: 'user' })
      const m = /collector +\d+ messages, (\d+) records, (\d+) flow records stored \((\d+) rows/.exec(out)
      expect(m).not.toBeNull()
      const exported = /export +\d+ messages, ([\d,]+) records/.exec(out)
      expect(Number(exported?.[1]?.replace(/,/g, ''))).toBe(Number(m?.[1]))
      expect(Number(m?.[2])).toBeGreaterThan(100)
      expect(m?.[3]).toBe(m?.[2])
      const table = out.slice(out.indexOf('top 5 of'))
      expect(table.split('\n')[1]).toMatch(/^initiator +responder +proto +packets +bytes$/)
      expect(table.trim().split('\n')).toHaveLength(7)
      const store = await DuckDbStore.open(path)
      expect(await store.count()).toBe(Number(m?.[2]))
      await store.close()
    } finally {
      w.mockRestore()
      e.mockRestore()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
