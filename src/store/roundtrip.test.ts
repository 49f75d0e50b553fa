// A collector restarted with its templates file decodes data whose templates it saw only before the restart.
// (Probe → UDP → collector → store, every exported field unchanged, is in test/store/store-suite.ts and
// runs for every backend.)
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { FlowCollector } from '../collector/decode-message.js'
import { splitRaw } from '../collector/offline-reader.js'
import { exportBundledCaptures } from '../../test/helpers/probe-run.js'
import { readFileSync } from 'node:fs'
import { DuckDbStore } from './duckdb.js'
import { storeRecords } from './ingest.js'
import { BatchWriter } from './store.js'
import { COLUMNS } from '../schema/columns.js'

const dir = mkdtempSync(join(tmpdir(), 'flowtel-store-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const names = COLUMNS.map((c) => c.name)

describe('collector restart → DuckDB', () => {
  it('decodes data after a restart with the templates learned before it', async () => {
    const ipfix = join(dir, 'all.ipfix')
    await exportBundledCaptures(ipfix, { fields: ['all'] })
    const messages = splitRaw(readFileSync(ipfix), () => {})
    const key = {
      protocol: 'udp' as const,
      exporterAddress: '192.0.2.9',
      exporterPort: 4739,
      collectorAddress: '127.0.0.1',
      collectorPort: 4739,
    }
    const setIds = (m: Uint8Array): number[] => {
      const v = new DataView(m.buffer, m.byteOffset, m.byteLength)
      const ids: number[] = []
      for (let p = 16; p + 4 <= m.byteLength; p += Math.max(4, v.getUint16(p + 2))) ids.push(v.getUint16(p))
      return ids
    }
    const hasTemplateSet = (m: Uint8Array): boolean => setIds(m).some((id) => id === 2 || id === 3)
    // Before the restart the collector sees every message that carries templates (and nothing else); after
    // it, only the messages without any, so each of their records needs a template from the saved file.
    const before = new FlowCollector()
    for (const m of messages.filter(hasTemplateSet)) before.decode(m, key)
    const dataOnly = messages.filter((m) => !hasTemplateSet(m))
    // What an uninterrupted collector decodes from those messages.
    const control = new FlowCollector()
    let expected = 0
    for (const m of messages) {
      const o = control.decode(m, key)
      if (!hasTemplateSet(m)) expected += o.records.filter((r) => !r.isOptions).length
    }
    expect(expected).toBeGreaterThan(0)
    const tplFile = join(dir, 'templates.json')
    before.templates.saveFile(tplFile)
    // After it: only data messages, no template ever resent.
    const after = new FlowCollector()
    after.templates.loadFile(tplFile)
    const store = await DuckDbStore.open(join(dir, 'restart.duckdb'))
    await store.migrate()
    const writer = new BatchWriter(store, names)
    let n = 0
    for (const m of dataOnly) n += storeRecords(writer, after.decode(m, key))
    expect(n).toBe(expected)
    expect(after.allCounters().no_template ?? 0).toBe(0)
    await writer.flush()
    expect(await store.count()).toBe(n)
    await writer.close()
  })
})
