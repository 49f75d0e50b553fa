// `flowtel collect --listen ... --store duckdb:PATH` as its own process: records received over UDP sit in
// the batch (triggers far away) when SIGTERM arrives, and are in the store after the process exits.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { exportBundledCaptures } from '../../../test/helpers/probe-run.js'
import { DuckDbStore } from '../../store/duckdb.js'
import { FlowCollector } from '../../collector/decode-message.js'
import { splitRaw } from '../../collector/offline-reader.js'
import { createSocket } from 'node:dgram'

const root = resolve(fileURLToPath(import.meta.url), '../../../..')
const ENTRY =
  "import { main } from './src/cli/main.ts'; await main(['node', 'flowtel', ...process.argv.slice(1)])"

interface Summary {
  stored?: number
  accepted?: number
  store?: { thread?: Record<string, number> }
}

/**
 * Runs `collect --listen udp://127.0.0.1:0 --store duckdb:… <extra>` as its own process, sends it the bundled
 * captures' export gently, stops it with SIGTERM and returns the flow records sent, its summary, its
 * stderr and the rows in the store.
 */
async function collectAndStop(
  extra: readonly string[],
): Promise<{ expected: number; summary: Summary; stderr: string; rows: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'flowtel-sigterm-'))
  try {
    const ipfix = join(dir, 'flows.ipfix')
    await exportBundledCaptures(ipfix)
    const messages = splitRaw(readFileSync(ipfix), () => {})
    const check = new FlowCollector()
    let expected = 0
    for (const m of messages)
      expected += check
        .decode(m, {
          protocol: 'udp',
          exporterAddress: '127.0.0.1',
          exporterPort: 1,
          collectorAddress: '127.0.0.1',
          collectorPort: 2,
        })
        .records.filter((r) => !r.isOptions).length
    const db = join(dir, 'flows.duckdb')
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        ENTRY,
        '--',
        'collect',
        '--listen',
        'udp://127.0.0.1:0',
        '--store',
        `duckdb:${db}`,
        '--batch-rows',
        '1000000',
        '--batch-delay',
        '600000',
        ...extra,
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let stderr = ''
    const port = await new Promise<number>((res, rej) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString()
        const m = /listening on udp:\/\/127\.0\.0\.1:(\d+)/.exec(stderr)
        if (m !== null) res(Number(m[1]))
      })
      child.once('exit', () => rej(new Error(`collect exited early: ${stderr}`)))
    })
    const sock = createSocket('udp4')
    for (const m of messages) {
      await new Promise<void>((r) => sock.send(m, port, '127.0.0.1', () => r()))
      await new Promise((r) => setTimeout(r, 1)) // gentle: no loss in the socket buffer
    }
    sock.close()
    await new Promise((r) => setTimeout(r, 300))
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    const summary = JSON.parse(stderr.trim().split('\n').at(-1) ?? '{}') as Summary
    const store = await DuckDbStore.open(db)
    const rows = await store.count()
    await store.close()
    return { expected, summary, stderr, rows }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('flowtel collect --store', () => {
  it('stores everything received when stopped by SIGTERM', async () => {
    const { expected, summary, rows } = await collectAndStop([])
    expect(summary.stored).toBe(expected)
    expect(summary.accepted).toBe(expected)
    // Listening, the store ran in its own thread: everything queued was stored, nothing dropped.
    expect(summary.store?.thread).toMatchObject({
      queued: 0,
      queuedBytes: 0,
      stored: expected,
      dropped: 0,
      failed: 0,
      abandoned: 0,
      errors: 0,
    })
    expect(rows).toBe(expected)
  })

  it('abandons what is still queued at the --shutdown-timeout, and counts and says so', async () => {
    // A timeout of 0: the batch held at SIGTERM is handed to the store thread after the deadline passed.
    const { expected, summary, stderr, rows } = await collectAndStop(['--shutdown-timeout', '0'])
    expect(summary.accepted).toBe(expected)
    expect(summary.store?.thread).toMatchObject({ queued: 0, stored: 0, abandoned: expected, dropped: 0 })
    expect(summary.stored).toBe(0)
    expect(rows).toBe(0)
    expect(stderr).toContain(`${expected} of ${expected} flow records were not stored`)
    expect(stderr).toContain(`${expected} abandoned at the shutdown deadline`)
  })

  it('says how many rows a full store queue dropped, and stored counts only what the store holds', async () => {
    // A queue of 5 rows cannot take a batch of 50: those are dropped and counted.
    const { expected, summary, stderr, rows } = await collectAndStop([
      '--batch-rows',
      '50',
      '--store-queue-rows',
      '5',
    ])
    const dropped = summary.store?.thread?.['dropped'] ?? 0
    expect(dropped).toBeGreaterThan(0)
    expect(summary.accepted).toBe(expected)
    expect(summary.stored).toBe(rows)
    expect(rows + dropped).toBe(expected)
    expect(stderr).toContain(`${dropped} of ${expected} flow records were not stored (${dropped} dropped`)
  })
})
